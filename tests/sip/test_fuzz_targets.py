"""The atheris targets of ``fuzz/``, driven by hypothesis inside the suite (bounded).

Each target's ``test_one`` is the definition of a crash (anything but the parser's own
errors, or a broken property); here it gets mutations of the seed messages (byte flips,
cuts, duplicated lines, huge values) and plain random bytes, a few hundred inputs each.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"


def _load(name: str) -> ModuleType:
    if str(FUZZ) not in sys.path:
        sys.path.insert(0, str(FUZZ))  # the targets import their harness by name
    spec = importlib.util.spec_from_file_location(f"routr_fuzz_{name}", FUZZ / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


HARNESS = _load("harness")
RUN = _load("run")
SEEDS = HARNESS.seed_messages()
TARGETS: dict[str, Callable[[bytes], None]] = {
    name: _load(f"fuzz_{name}").test_one for name in ("message", "uri", "digest", "framing")
}
TARGET_SEEDS = {name: RUN.SEEDS[name](SEEDS) for name in TARGETS}

_GRAMMAR = [bytes([c]) for c in b' \t\r\n:;,<>"\\@[]=/%?&*0SIP2.'] + [b"\xff", b"\x00"]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with a few edits: a byte flipped, a cut, a line repeated, a huge value."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "repeat", "huge"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(max_size=4) | st.sampled_from(_GRAMMAR))
        elif kind == "repeat":
            start = data.rfind(b"\n", 0, pos) + 1
            end = data.find(b"\n", pos)
            line = bytes(data[start : end + 1]) if end >= 0 else b""
            data[start:start] = line * draw(st.integers(1, 30))
        elif kind == "huge":
            data[pos:pos] = draw(st.sampled_from([b"a", b"9", b";x", b",", b"%"])) * 4000
    return bytes(data)


@pytest.mark.parametrize("name", sorted(TARGETS))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_target_survives_mutated_seeds(name: str, data: st.DataObject) -> None:
    TARGETS[name](data.draw(mutated(TARGET_SEEDS[name])))


@pytest.mark.parametrize("name", sorted(TARGETS))
@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=400))
def test_target_survives_random_bytes(name: str, raw: bytes) -> None:
    TARGETS[name](raw)


def test_seeds_come_from_the_sipp_scenarios_at_least() -> None:
    sipp = list(HARNESS.sipp_messages())
    assert sipp and all(b"[" not in m.split(b"\r\n", 1)[0] for m in sipp)
    assert all(TARGET_SEEDS.values())
