"""What addresses and ports are this server: the test for "is this request for me"."""

from __future__ import annotations

from routr.sip.uri import URI, SipURI

_DEFAULT_PORTS = {"sip": 5060, "sips": 5061}


class Identity:
    """The hosts and ports this server answers to."""

    __slots__ = ("hosts", "ports")

    def __init__(self, hosts: set[str], ports: set[int]) -> None:
        self.hosts = {h.lower().strip("[]") for h in hosts}
        self.ports = ports

    @classmethod
    def of(cls, bind_addrs: set[str], ports: set[int], extra: set[str]) -> Identity:
        """Listening addresses, loopback and ``extra`` (the advertised address, the host's
        names and addresses, which the I/O layer looks up)."""
        hosts = {"127.0.0.1", "::1", "localhost", *extra}
        hosts.update(a for a in bind_addrs if a not in ("0.0.0.0", "::"))
        return cls(hosts, ports)

    def is_self(self, uri: URI) -> bool:
        """A SIP URI naming one of our addresses and ports."""
        if not isinstance(uri, SipURI):
            return False
        if uri.host_key not in self.hosts:
            return False
        port = uri.port or _DEFAULT_PORTS.get(uri.scheme, 5060)
        return port in self.ports
