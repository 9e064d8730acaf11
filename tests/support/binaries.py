"""Real SIP clients installed from Debian packages: found on PATH, or the test is skipped
(with ``CI=true`` it fails instead: CI installs them, so a missing one is a broken setup)."""

from __future__ import annotations

import os
import shutil
import socket

import pytest


def missing(reason: str) -> None:
    """Skip the test with ``reason``, or fail it under ``CI=true``."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the real clients must run)")
    pytest.skip(reason)


def need_binary(name: str, package: str) -> str:
    """The path of ``name``; skip (or, under CI, fail) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not installed (apt-get install {package})")
        raise AssertionError("unreachable")  # missing() raises
    return path


def _bindable(port: int, kinds: tuple[int, ...], host: str = "127.0.0.1") -> bool:
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def free_port(span: int = 1, host: str = "127.0.0.1") -> int:
    """A port P that is free on UDP and TCP, with P+1..P+span-1 free on TCP too (baresip
    listens for TLS on its SIP port + 1). Free when asked: the caller binds it soon."""
    udp_tcp = (socket.SOCK_DGRAM, socket.SOCK_STREAM)
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port + span > 65535:
            continue
        if _bindable(port, udp_tcp, host) and all(
            _bindable(port + i, (socket.SOCK_STREAM,), host) for i in range(1, span)
        ):
            return port
    raise RuntimeError("no free port pair found")
