"""Helpers of the registrar and security end-to-end tests: SIP requests built by hand (so a
test controls Via, Contact, nonce and nonce count), a digest-answering registration client,
and a user agent that answers what the proxy sends it."""

from __future__ import annotations

import base64
import itertools
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from support.data import agent, domain, write_resources
from support.server import RoutrProcess
from support.sip import Client, StreamClient, UdpClient, WsClient

from routr.sip.digest import Challenge, make_credentials, parse_challenge
from routr.sip.message import Message, Request, Response

_seq = itertools.count(1)

DOMAIN = "sip.local"


def branch() -> str:
    return f"z9hG4bK-e2e-{uuid.uuid4().hex[:12]}"


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def build(
    method: str,
    ruri: str,
    *,
    via: str,
    from_uri: str,
    to_uri: str,
    call_id: str | None = None,
    cseq: int | None = None,
    contacts: list[str] | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: str = "",
    to_tag: str | None = None,
) -> bytes:
    """A request; ``via`` is the whole Via value without the branch (``SIP/2.0/UDP h:p``)."""
    lines = [
        f"{method} {ruri} SIP/2.0",
        f"Via: {via};branch={branch()};rport",
        "Max-Forwards: 70",
        f"From: <{from_uri}>;tag=f{next(_seq)}",
        f"To: <{to_uri}>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id or uuid.uuid4().hex + '@e2e'}",
        f"CSeq: {cseq or next(_seq)} {method}",
    ]
    lines += [f"Contact: {c}" for c in contacts or []]
    lines += [f"{k}: {v}" for k, v in headers or []]
    if body:
        lines.append("Content-Type: text/plain")
    lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def challenges(response: Response, header: str = "www-authenticate") -> list[Challenge]:
    # Read raw: a challenge holds commas, so the comma-splitting get_all cannot be used.
    return [parse_challenge(v) for k, _, v in response.headers if k == header]


def nonce_issued_at(nonce: str) -> float:
    """The server's nonce starts with its issue time in ms (see NonceIssuer.issue)."""
    raw = base64.urlsafe_b64decode(nonce + "=")
    return int.from_bytes(raw[:8], "big") / 1000


class Registration:
    """One REGISTER dialog (Call-ID, rising CSeq) of ``user@domain`` over ``client``, which
    answers digest challenges like a phone: keeps the nonce and counts nc up."""

    def __init__(
        self,
        client: Client,
        user: str,
        password: str,
        domain: str = DOMAIN,
        *,
        transport: str = "UDP",
        via_host: tuple[str, int] | None = None,
        algorithm: str = "MD5",
        auth_user: str | None = None,
    ) -> None:
        self.client = client
        self.user = user
        self.password = password
        self.domain = domain
        self.transport = transport
        self.via_host = via_host or (str(client.local[0]), int(client.local[1]))
        self.algorithm = algorithm
        self.auth_user = auth_user or user
        self.call_id = f"{uuid.uuid4().hex}@e2e"
        self.cseq = 0
        self.challenge: Challenge | None = None
        self.nc = 0
        self.last_401: Response | None = None

    def request(
        self,
        contacts: list[str] | None = None,
        *,
        expires: int | None = None,
        authorization: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> bytes:
        self.cseq += 1
        extra = list(headers or [])
        if expires is not None:
            extra.append(("Expires", str(expires)))
        if authorization is not None:
            extra.append(("Authorization", authorization))
        host, port = self.via_host
        sent_by = hostport(host, port) if port else host
        return build(
            "REGISTER",
            f"sip:{self.domain}",
            via=f"SIP/2.0/{self.transport} {sent_by}",
            from_uri=f"sip:{self.user}@{self.domain}",
            to_uri=f"sip:{self.user}@{self.domain}",
            call_id=self.call_id,
            cseq=self.cseq,
            contacts=contacts,
            headers=extra,
        )

    def credentials(self, nc: int | None = None) -> str:
        assert self.challenge is not None
        if nc is None:
            self.nc += 1
            nc = self.nc
        return make_credentials(self.challenge, "REGISTER", f"sip:{self.domain}",
                                self.auth_user, self.password, "c0ffee", nc=nc)  # fmt: skip

    def take_challenge(self, response: Response) -> None:
        self.last_401 = response
        offered = {c.algorithm.upper(): c for c in challenges(response)}
        self.challenge = offered[self.algorithm.upper()]
        self.nc = 0

    def send(
        self,
        contacts: list[str] | None = None,
        *,
        expires: int | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> Response:
        """REGISTER, answering a 401 once (with the nonce kept from an earlier one if any)."""
        auth = self.credentials() if self.challenge is not None else None
        response = self.client.request(
            self.request(contacts, expires=expires, authorization=auth, headers=headers)
        )
        if response.status != 401:
            return response
        self.take_challenge(response)
        return self.client.request(
            self.request(
                contacts, expires=expires, authorization=self.credentials(), headers=headers
            )
        )


def bound(response: Response) -> dict[str, int]:
    """Contact URI -> expires, from a registrar's 200."""
    out: dict[str, int] = {}
    for value in response.get_all("contact"):
        uri, _, params = value.partition(">")
        expires = dict(p.strip().split("=", 1) for p in params.split(";") if "=" in p).get(
            "expires"
        )
        out[uri.lstrip("<").strip()] = int(expires) if expires is not None else -1
    return out


def answer(client: Client, request: Message, status: int = 200, **kw: Any) -> None:
    """Reply to a request the proxy delivered; the reply goes back the way it came."""
    assert isinstance(request, Request), request
    data = request.response(status, **kw).to_bytes()
    if isinstance(client, UdpClient):
        # Over UDP a response goes to the top Via's sent-by (RFC 3261 §18.2.2), which is
        # the server that forwarded the request, not necessarily the one we registered with.
        via = request.via
        client.sock.sendto(data, (via.host_key.strip("[]"), via.port or 5060))
    else:
        client.send(data)


def expect_request(client: Client, method: str, timeout: float = 5.0) -> Request:
    """The next request ``method`` arriving at ``client`` (responses and others skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        msg = client.recv(max(0.01, deadline - time.monotonic()))
        if isinstance(msg, Request) and msg.method == method:
            return msg


def message_from_outside(server: tuple[str, int], ruri: str, text: str = "hi") -> UdpClient:
    """Send a MESSAGE from a stranger's domain to ``ruri`` (inbound to a local AOR: no
    challenge); return the sending client, whose final response the test reads."""
    sender = UdpClient(server)
    sender.send(
        build(
            "MESSAGE",
            ruri,
            via=f"SIP/2.0/UDP {hostport(*sender.local)}",
            from_uri="sip:stranger@outside.example",
            to_uri=ruri,
            body=text,
        )
    )
    return sender


def final(client: Client, timeout: float = 5.0) -> Response:
    deadline = time.monotonic() + timeout
    while True:
        msg = client.recv(max(0.01, deadline - time.monotonic()))
        if isinstance(msg, Response) and msg.status >= 200:
            return msg


STANDARD_AGENTS = (
    ("1001", "1234", {"ex_maxContact": 5}),
    ("1002", "s3cret", {}),
    ("1003", "pw1003", {"ex_maxContact": 2}),
)


def standard_data(folder: Path, *extra: dict[str, Any], domain_acl: Any = None) -> Path:
    return write_resources(
        folder,
        domain(DOMAIN, acl=domain_acl),
        *(agent(u, p, [DOMAIN], **spec) for u, p, spec in STANDARD_AGENTS),
        *extra,
    )


@contextmanager
def running(
    tmp: Path,
    protocols: tuple[str, ...] = ("udp", "tcp"),
    spec: dict[str, Any] | None = None,
    *,
    data: Path | None = None,
    host: str = "127.0.0.1",
    env: dict[str, str] | None = None,
) -> Iterator[RoutrProcess]:
    tmp.mkdir(parents=True, exist_ok=True)
    proc = RoutrProcess(
        tmp, protocols, spec, host=host, env=env, data=data or standard_data(tmp / "data")
    ).start()
    try:
        yield proc
    finally:
        proc.stop()
    proc.assert_no_tracebacks()


__all__ = ["StreamClient", "UdpClient", "WsClient"]
