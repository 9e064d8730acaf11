"""Request bodies: JSON, YAML or a multipart ``file``; one resource or a list of them."""

from __future__ import annotations

import json
from typing import Any

import yaml
from fastapi import Request
from pydantic import ValidationError

from routr.models import ManifestError, Resource, load_manifest, parse_resource
from routr.models.manifest import load_yaml

from .errors import ApiError, BadRequest, Unprocessable, UnsupportedMedia, validation_problems

MAX_BODY = 16 * 1024 * 1024
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


class TooLarge(ApiError):
    status = 413


def _media(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def capped(request: Request, limit: int = MAX_BODY) -> bytes:
    """The body, refused (413) as soon as it is over ``limit``: never buffered whole."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the body is over {limit // 1024} KiB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body is over {limit // 1024} KiB")
        chunks.append(chunk)
    return b"".join(chunks)


async def _text(request: Request) -> tuple[str, bool]:
    """The body as text, and whether it is YAML (else JSON)."""
    media = _media(request)
    if media == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=10)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise BadRequest("a multipart body needs its manifest in a part named 'file'")
        raw = await upload.read(MAX_BODY + 1)
        yaml_body = True
    else:
        if media not in ("", "application/json", *YAML_TYPES) and not media.endswith("+json"):
            raise UnsupportedMedia(f"{media}: send application/json or application/yaml")
        raw = await capped(request)
        yaml_body = media in YAML_TYPES
    if len(raw) > MAX_BODY:
        raise TooLarge(f"the body is over {MAX_BODY // (1024 * 1024)} MiB")
    if not raw.strip():
        raise BadRequest("the body is empty: send a resource")
    try:
        return raw.decode("utf-8"), yaml_body
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8 text") from None


def _check_yaml(text: str) -> None:
    try:
        for _ in yaml.safe_load_all(text):
            pass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not YAML"
        raise BadRequest(f"the body is not valid YAML{where}: {problem}") from None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


async def resources(request: Request, kind: str | None) -> tuple[list[Resource], bool]:
    """The resources a POST carries (checked against ``kind``), and whether it was a list."""
    text, is_yaml = await _text(request)
    if is_yaml:
        _check_yaml(text)
        try:
            found = load_manifest(text, "body", kind)
        except ManifestError as exc:
            where = f"line {exc.line}: " if exc.line is not None else ""
            reason = where + "; ".join(str(p) for p in exc.problems)
            raise Unprocessable(reason, [p.as_dict() for p in exc.problems]) from None
        if not found:
            raise BadRequest("the manifest is empty: send at least one resource")
        listed = len(found) != 1 or text.lstrip().startswith("-")
        return found, listed
    data = _json(text)
    items = data if isinstance(data, list) else [data]
    out: list[Resource] = []
    found_problems: list[Any] = []
    for position, item in enumerate(items):
        try:
            out.append(parse_resource(item, kind))
        except ValidationError as exc:
            prefix: tuple[int | str, ...] = (position,) if isinstance(data, list) else ()
            found_problems.extend(validation_problems(exc, prefix))
    if found_problems:
        reason = "; ".join(f"{p['path']}: {p['problem']}" for p in found_problems)
        raise Unprocessable(reason, found_problems)
    if not out:
        raise BadRequest("the list is empty: send at least one resource")
    return out, isinstance(data, list)


async def mapping(request: Request) -> dict[str, Any]:
    """The one resource mapping a PUT carries, not yet validated."""
    text, is_yaml = await _text(request)
    if is_yaml:
        _check_yaml(text)
        data = load_yaml(text)  # as POST reads it: `secret: 0123` stays "0123"
    else:
        data = _json(text)
    if not isinstance(data, dict):
        raise Unprocessable(
            "expected a mapping (one resource)",
            [{"path": "", "problem": "expected a mapping (one resource)"}],
        )
    return data
