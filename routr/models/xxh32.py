"""XXH32, the hash Routr v1 derived missing refs from (``xxhashjs.h32(key, 0xABCD)``)."""

from __future__ import annotations

_P1, _P2, _P3, _P4, _P5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
_MASK = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _MASK


def _round(acc: int, lane: int) -> int:
    return _rotl((acc + lane * _P2) & _MASK, 13) * _P1 & _MASK


def xxh32(data: bytes, seed: int = 0) -> int:
    """The 32-bit xxHash of ``data`` (per the published XXH32 specification)."""
    n, i = len(data), 0
    if n >= 16:
        acc = [(seed + _P1 + _P2) & _MASK, (seed + _P2) & _MASK, seed & _MASK, (seed - _P1) & _MASK]
        while i + 16 <= n:
            for lane in range(4):
                start = i + 4 * lane
                acc[lane] = _round(acc[lane], int.from_bytes(data[start : start + 4], "little"))
            i += 16
        h = (_rotl(acc[0], 1) + _rotl(acc[1], 7) + _rotl(acc[2], 12) + _rotl(acc[3], 18)) & _MASK
    else:
        h = (seed + _P5) & _MASK
    h = (h + n) & _MASK
    while i + 4 <= n:
        word = int.from_bytes(data[i : i + 4], "little")
        h = _rotl((h + word * _P3) & _MASK, 17) * _P4 & _MASK
        i += 4
    while i < n:
        h = _rotl((h + data[i] * _P5) & _MASK, 11) * _P1 & _MASK
        i += 1
    h ^= h >> 15
    h = h * _P2 & _MASK
    h ^= h >> 13
    h = h * _P3 & _MASK
    return h ^ (h >> 16)
