"""The REST API's envelope, shared by the server and its clients (rctl, the console).

Every answer is ``{"status": 200, "message": "Successful request", "data": ..., "meta": ...}``
with Routr v1's statuses and messages, so scripts written for v1 keep reading it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

API_VERSION = "v1beta1"
BASE_PATH = f"/api/{API_VERSION}"

#: Routr v1's message for each status; a 409 has three, chosen by its cause.
MESSAGES: dict[int, str] = {
    200: "Successful request",
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Entity already exist",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
UNFULFILLED_DEPENDENCIES = "Unfulfilled dependencies"
DEPENDENT_OBJECTS = "Found dependent objects"
ALREADY_EXISTS = MESSAGES[409]


class Meta(BaseModel):
    """Where a page of a list sits in the whole."""

    page: int
    itemsPerPage: int
    total: int


class Problem(BaseModel):
    """One invalid field of a request (422) or of a filter (400)."""

    path: str
    problem: str


class Envelope(BaseModel):
    status: int = Field(description="the HTTP status, repeated")
    message: str = Field(description="Routr v1's words for the status")
    data: Any = None
    meta: Meta | None = None
    reason: str | None = Field(None, description="errors only: what went wrong, in words")


def message_for(status: int) -> str:
    return MESSAGES.get(status, "Error" if status >= 400 else "Successful request")
