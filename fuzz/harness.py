"""What every fuzz target shares: the errors that are not crashes, the seed corpus, and
a sans-IO routr service to feed datagrams to.

A target is run either under atheris (``python fuzz/fuzz_message.py CORPUS ...``, as
``nox -s fuzz`` does) or on given files only (``--replay FILE...``), which needs no
atheris and is how a crash found is checked again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

from routr.sip.errors import SipError

ROOT = Path(__file__).resolve().parents[1]
SIPP = ROOT / "tests" / "sipp"

#: The parser's documented failures (``ParseError`` and its subclasses, ``FramingError``,
#: ``DigestError``): anything else escaping a target is a crash.
EXPECTED: tuple[type[BaseException], ...] = (SipError,)


def shared_dir() -> Path:
    """The shared folder that holds ``conformance/`` (``$ROUTR_SHARED`` or beside the repo)."""
    env = os.environ.get("ROUTR_SHARED")
    return Path(env) if env else ROOT.parent / "shared"


def corpus_messages() -> Iterator[bytes]:
    """The RFC 4475/5118 torture messages, exact bytes; nothing when the corpus is absent."""
    for corpus in ("rfc4475", "rfc5118"):
        folder = shared_dir() / "conformance" / corpus
        if folder.is_dir():
            for path in sorted(folder.glob("*.sip")):
                yield path.read_bytes()


_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.S)
# SIPp keywords, with values a real run would put in.
_KEYWORDS = {
    "remote_ip": "127.0.0.1",
    "remote_port": "5060",
    "local_ip": "127.0.0.1",
    "local_port": "5070",
    "transport": "UDP",
    "branch": "z9hG4bK-1-0",
    "call_id": "1-4242@127.0.0.1",
    "call_number": "1",
    "pid": "4242",
    "cseq": "1",
    "len": "0",
    "service": "1002",
    "field0": "1001",
    "field1": 'Digest username="1001", realm="sip.local", nonce="abc", '
    'uri="sip:sip.local", response="00000000000000000000000000000000", algorithm=MD5',
}
_KEYWORD = re.compile(r"\[([a-z_0-9]+)(?: [^\]]*)?\]")


def sipp_messages() -> Iterator[bytes]:
    """The requests of the SIPp scenarios in ``tests/sipp``, keywords filled in."""
    for path in sorted(SIPP.glob("*.xml")):
        for block in _CDATA.findall(path.read_text(encoding="utf-8", errors="replace")):
            lines = [line.strip() for line in block.strip().splitlines()]
            text = "\r\n".join(lines)
            text = _KEYWORD.sub(lambda m: _KEYWORDS.get(m.group(1), "x"), text)
            if "\r\n\r\n" not in text:
                text += "\r\n\r\n"
            yield text.encode("utf-8")


def seed_messages() -> list[bytes]:
    """Every seed message: the torture corpora, then the SIPp scenarios."""
    return [*corpus_messages(), *sipp_messages()]


def write_seeds(folder: Path, items: list[bytes]) -> int:
    """Write ``items`` as seed files in ``folder`` (kept apart from the growing corpus)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, item in enumerate(items):
        (folder / f"seed-{i:04d}").write_bytes(item)
    return len(items)


def run(test_one: Callable[[bytes], None]) -> None:
    """Run ``test_one`` under atheris with argv, or on ``--replay`` files."""
    if len(sys.argv) > 1 and sys.argv[1] == "--replay":
        for name in sys.argv[2:]:
            test_one(Path(name).read_bytes())
            print(f"{name}: no crash")
        return
    import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

    # Coverage of everything loaded (routr and the stdlib it calls) guides the mutations.
    atheris.instrument_all()
    atheris.Setup(sys.argv, test_one)
    atheris.Fuzz()


# --------------------------------------------------------------------------- the service
class _Source:
    """Where a datagram came from, shaped like ``routr.transport.base.Source``."""

    __slots__ = ("conn", "ip", "local", "port", "protocol")

    def __init__(self, ip: str, port: int, protocol: str) -> None:
        self.ip = ip
        self.port = port
        self.protocol = protocol
        self.conn = None
        self.local = ("127.0.0.1", 5060)


class _Timer:
    __slots__ = ()

    def cancel(self) -> None:
        """Timers never fire here: each input is one moment."""


class _IO:
    """The service's I/O, keeping nothing but the async work it is handed."""

    def __init__(self) -> None:
        self.work: list[Coroutine[Any, Any, None]] = []

    def call_at(self, when: float, callback: Callable[[], None]) -> _Timer:
        return _Timer()

    def send(self, message: Any, hop: Any, on_error: Callable[[], None]) -> None:
        message.to_bytes()  # what the transport would do with it

    def send_back(self, data: bytes, source: Any, dest: tuple[str, int] | None) -> None:
        pass

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self.work.append(work)

    def via_for(self, hop: Any) -> tuple[str, str, int]:
        return ("udp", "127.0.0.1", 5060)

    def inbound_via(self, source: Any) -> tuple[str, str, int]:
        return ("udp", "127.0.0.1", 5060)


class _Failures(logging.Handler):
    """Keeps what routr logs as an error: its handlers catch what they raise, so an
    exception inside the service shows only as a logged traceback."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class Service:
    """A whole routr SIP service (one domain, two agents) behind a fake I/O, rebuilt every
    ``fresh_every`` inputs so transactions that never end do not pile up. An error it logs
    (a caught exception) is raised from :meth:`feed` as a crash."""

    # An untrusted source, with bans far away: every input reaches the parser.
    SPEC: dict[str, Any] = {
        "security": {
            "trusted": [],
            "floodBan": {"requests": 1_000_000_000, "seconds": 1},
            "authFailureBan": {"failures": 1_000_000_000},
        }
    }

    def __init__(self, fresh_every: int = 2000) -> None:
        self.fresh_every = fresh_every
        self.loop = asyncio.new_event_loop()
        self._left = 0
        self._t = 1_000.0
        self._failures = _Failures()
        self._build()

    def _build(self) -> None:
        from routr.core.identity import Identity
        from routr.core.service import SipService
        from routr.data.index import Index
        from routr.data.secrets import Secrets
        from routr.data.snapshot import Snapshot
        from routr.location import MemoryStore
        from routr.models import parse_resource
        from routr.models.config import Config

        resources = [
            {"apiVersion": "v1beta1", "kind": "Domain", "metadata": {"name": "Local"},
             "spec": {"context": {"domainUri": "sip.local"}}},
            *({"apiVersion": "v1beta1", "kind": "Agent", "metadata": {"name": f"Agent {u}"},
               "spec": {"credentials": {"username": u, "secret": "fuzz-secret"},
                        "domains": ["sip.local"]}} for u in ("1001", "1002")),
        ]  # fmt: skip
        index = Index(Snapshot.of([parse_resource(r) for r in resources]))
        self.io = _IO()
        self.sip = SipService(
            Config.model_validate({"spec": self.SPEC}),
            self.io,
            clock=lambda: self._t,
            emit=lambda event: None,
            secrets=Secrets.derive(b"fuzz master key", "fuzz"),
            index=lambda: index,
            location=MemoryStore(clock=lambda: self._t),
            identity=Identity.of({"127.0.0.1"}, {5060}, set()),
        )
        self._left = self.fresh_every

    def feed(self, data: bytes, protocol: str = "udp") -> None:
        """One message in, as the transport hands it over, and the work it started run."""
        if self._left <= 0:
            self._build()
        self._left -= 1
        self._t += 0.001
        # Listening only meanwhile: inside the test suite, other tests log errors on purpose.
        log = logging.getLogger("routr")
        log.addHandler(self._failures)
        try:
            self.sip.on_data(data, _Source("10.0.0.5", 5070, protocol))
            while self.io.work:
                self.loop.run_until_complete(self.io.work.pop(0))
        finally:
            log.removeHandler(self._failures)
        if self._failures.records:
            record = self._failures.records[0]
            self._failures.records.clear()
            text = logging.Formatter().format(record)
            raise AssertionError(f"routr logged an error for this input:\n{text}")
