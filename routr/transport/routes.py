"""This host's own addresses: which local address the kernel uses to reach a destination
(for a wildcard bind), and the names and addresses the host answers to."""

from __future__ import annotations

import asyncio
import socket
from functools import lru_cache


@lru_cache(maxsize=4096)
def local_ip_for(dest_ip: str) -> str:
    """The source address the routing table picks for ``dest_ip`` (no packet is sent:
    connecting a UDP socket only asks the kernel for a route)."""
    family = socket.AF_INET6 if ":" in dest_ip else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((dest_ip, 9))
            return str(sock.getsockname()[0])
    except OSError:
        return "::1" if family == socket.AF_INET6 else "127.0.0.1"


async def host_addresses() -> set[str]:
    """The host name and its addresses, resolved off the event loop; nothing when the
    name does not resolve."""
    name = socket.gethostname()
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(name, None)
    except OSError:
        return {name}
    return {name, *(str(info[4][0]) for info in infos)}
