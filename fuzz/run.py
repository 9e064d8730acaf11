"""Run the atheris targets one after the other for a fixed budget each.

``python fuzz/run.py [--minutes M] [TARGET ...]`` (what ``nox -s fuzz -- ...`` runs). Each
target keeps a growing corpus in ``fuzz/corpus/TARGET`` and is seeded, in a folder of its
own, from the RFC 4475/5118 torture corpora (skipped when absent) and the SIPp scenarios
of ``tests/sipp``. A crash is written to ``fuzz/artifacts/``; the run then fails.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import harness

from routr.sip.digest import NonceIssuer, build_challenge, make_credentials
from routr.sip.errors import ParseError
from routr.sip.message import Message, parse_message

HERE = Path(__file__).resolve().parent
TARGETS = ("message", "uri", "digest", "framing")
# Longest input per target: enough for the seeds, small enough for many runs a second.
MAX_LEN = {"message": 8192, "uri": 1024, "digest": 2048, "framing": 8192}
_EXECS = re.compile(r"stat::number_of_executed_units:\s*(\d+)")
_HEADER_VALUES = ("via", "from", "to", "contact", "route", "record-route", "cseq")


def _parsed(messages: list[bytes]) -> list[Message]:
    out: list[Message] = []
    for data in messages:
        try:
            out.append(parse_message(data, datagram=False))
        except ParseError as exc:
            if exc.message is not None:
                out.append(exc.message)
    return out


def uri_seeds(messages: list[bytes]) -> list[bytes]:
    """Request-URIs and the address, Via and CSeq values of the seed messages."""
    found: list[str] = []
    for message in _parsed(messages):
        found.append(getattr(message, "uri_text", ""))  # requests only
        for key, _, value in message.headers:
            if key in _HEADER_VALUES:
                found.append(value)
    return [text.encode("utf-8", "surrogateescape") for text in dict.fromkeys(found) if text]


def digest_seeds(messages: list[bytes]) -> list[bytes]:
    """The credentials and challenges of the seed messages, and well-formed ones of every
    algorithm and qop we know."""
    found: list[str] = []
    for message in _parsed(messages):
        for key, _, value in message.headers:
            if key.endswith(("authorization", "authenticate")):
                found.append(value)
    issuer = NonceIssuer(b"seed key")
    for algorithm in ("MD5", "MD5-sess", "SHA-256", "SHA-256-sess"):
        for qop in ((), ("auth",), ("auth-int",), ("auth", "auth-int")):
            challenge = build_challenge("sip.local", issuer.issue(1000.0), algorithm, qop, "op")
            found.append(challenge)
            found.append(make_credentials(challenge, "REGISTER", "sip:sip.local", "1001",
                                          "pw", "c0ffee"))  # fmt: skip
    return [text.encode("utf-8", "surrogateescape") for text in dict.fromkeys(found)]


def framing_seeds(messages: list[bytes]) -> list[bytes]:
    """Each message after 8 chunk-size bytes, alone and followed by a ping and another."""
    out = []
    for i, data in enumerate(messages):
        sizes = bytes((i * 7 + k * 13) % 256 for k in range(8))
        out.append(sizes + data)
        out.append(sizes + data + b"\r\n\r\n" + messages[(i + 1) % len(messages)])
    return out


SEEDS: dict[str, Callable[[list[bytes]], list[bytes]]] = {
    "message": lambda messages: messages,
    "uri": uri_seeds,
    "digest": digest_seeds,
    "framing": framing_seeds,
}


def fuzz(target: str, seconds: int, messages: list[bytes]) -> tuple[int, int]:
    """Run one target for ``seconds``; (exit status, executions)."""
    corpus = HERE / "corpus" / target
    corpus.mkdir(parents=True, exist_ok=True)
    seeds = HERE / "seeds" / target
    count = harness.write_seeds(seeds, SEEDS[target](messages))
    artifacts = HERE / "artifacts"
    artifacts.mkdir(exist_ok=True)
    cmd = [sys.executable, str(HERE / f"fuzz_{target}.py"), str(corpus), str(seeds),
           f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=2048",
           f"-max_len={MAX_LEN[target]}", f"-artifact_prefix={artifacts}/{target}-",
           "-print_final_stats=1"]  # fmt: skip
    print(f"fuzz {target}: {seconds} s, {count} seeds, corpus {corpus}", flush=True)
    started = time.monotonic()
    done = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, errors="replace")
    sys.stderr.write(done.stderr[-20000:])
    execs = sum(int(n) for n in _EXECS.findall(done.stderr))
    took = time.monotonic() - started
    print(f"fuzz {target}: exit {done.returncode}, {execs} executions in {took:.0f} s",
          flush=True)  # fmt: skip
    return done.returncode, execs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=8.0, help="budget of each target")
    parser.add_argument("targets", nargs="*", help=f"some of {', '.join(TARGETS)} (all)")
    args = parser.parse_args()
    unknown = set(args.targets) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; there are {', '.join(TARGETS)}")
    messages = harness.seed_messages()
    if not any(True for _ in harness.corpus_messages()):
        print(f"no torture corpus under {harness.shared_dir()}: seeding from SIPp only")
    failed = [t for t in args.targets or TARGETS if fuzz(t, int(args.minutes * 60), messages)[0]]
    if failed:
        print(f"crashes in {', '.join(failed)}: see {HERE / 'artifacts'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
