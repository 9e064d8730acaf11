"""Constrained string types shared by the resource models (Routr v1 lengths and formats)."""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

_HOST_RE = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$"
)
_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
_TEL_RE = re.compile(r"^tel:\+?[0-9][0-9().\- ]*$", re.IGNORECASE)
_AOR_RE = re.compile(r"^sips?:[^\s@]+@[^\s@]+$", re.IGNORECASE)
_USER_BAD = re.compile(r"[\s@:;<>\"]")
_TEL_SEPARATORS = str.maketrans("", "", "().- ")
# What ipaddress.IPv4Address accepts: four decimal octets, no leading zeros.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_RE = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def is_ip(text: str) -> bool:
    """True for an IPv4 or IPv6 address, as ``ipaddress.ip_address`` would read it.

    The SIP path asks this of every message's hosts: building an address object each time
    cost more than a tenth of routr's CPU under call load.
    """
    if ":" not in text:  # IPv6 always has a colon
        return _IPV4_RE.fullmatch(text) is not None
    return _is_ipv6(text)


@functools.lru_cache(maxsize=4096)
def _is_ipv6(text: str) -> bool:
    # Rare enough on the hot path, and hosts repeat: parse once per distinct text.
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _check_host(value: str) -> str:
    if is_ip(value) or _HOST_RE.match(value):
        return value
    raise ValueError(f"not a host name or IP address: {value!r}")


def split_hostport(value: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address -> (host, port)."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        if rest and not rest.startswith(":"):
            raise ValueError(f"not host[:port]: {value!r}")
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
    else:
        host, port_text = value, ""
    _check_host(host)
    if not port_text:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"not a port number: {port_text!r}")
    return host, int(port_text)


def _check_hostport(value: str) -> str:
    split_hostport(value)
    return value


def _check_ref(value: str) -> str:
    if not _REF_RE.match(value):
        raise ValueError("letters, digits and . _ : - only, at most 100 characters")
    return value


def _check_username(value: str) -> str:
    if _USER_BAD.search(value):
        raise ValueError('must not contain spaces or any of @ : ; < > "')
    return value


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


def _check_network(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"not an IP address, CIDR or IP/mask: {value!r}") from None
    return value


def _check_tel(value: str) -> str:
    if not _TEL_RE.match(value):
        raise ValueError("must look like tel:+17066041487")
    return value


def _check_aor(value: str) -> str:
    if not _AOR_RE.match(value):
        raise ValueError("must look like sip:user@domain")
    return value


def tel_digits(value: str) -> str:
    """The dialable digits of a tel URL or user part: no ``tel:``, ``+`` or separators."""
    if value[:4].lower() == "tel:":
        value = value[4:]
    return value.translate(_TEL_SEPARATORS).lstrip("+")


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=100)]
Username = Annotated[
    str, StringConstraints(min_length=3, max_length=100), AfterValidator(_check_username)
]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Ref = Annotated[str, AfterValidator(_check_ref)]
Host = Annotated[str, AfterValidator(_check_host)]
HostPort = Annotated[str, AfterValidator(_check_hostport)]
Regex = Annotated[
    str, StringConstraints(min_length=1, max_length=1000), AfterValidator(_check_regex)
]
Network = Annotated[str, AfterValidator(_check_network)]
TelUrl = Annotated[str, AfterValidator(_check_tel)]
AorLink = Annotated[str, AfterValidator(_check_aor)]
