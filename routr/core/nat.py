"""Where a message really came from, and where replies go (RFC 3261 §18.2, RFC 3581)."""

from __future__ import annotations

import functools
import ipaddress

from routr.models.fields import is_ip
from routr.sip.address import parse_address
from routr.sip.message import Message, Request, Response
from routr.sip.uri import SipURI


def stamp_via(request: Request, ip: str, port: int) -> None:
    """Add ``received`` when the Via host is not the source IP, and fill a bare ``rport``."""
    via = request.via
    params = via.params
    changed = False
    if via.host_key != ip:
        params["received"] = ip
        changed = True
    if "rport" in params and params["rport"] is None:
        params["rport"] = str(port)
        changed = True
    if changed:
        request.write_top_via()


def reply_address(request: Request, source_ip: str, source_port: int) -> tuple[str, int]:
    """Where an unreliable-transport reply goes: the source IP, and rport or the Via port.

    The IP is always the packet's source: a reply never goes to a host a Via merely
    names (which may be anywhere), and ``maddr`` is not honoured for the same reason.
    """
    via = request.via
    if "rport" in via.params:
        return source_ip, source_port
    return source_ip, via.port or 5060


def fix_contact(message: Message, protocol: str, ip: str, port: int) -> None:
    """Point the Contact at the flow the message came over when the sender cannot be
    reached at the Contact it wrote, so in-dialog requests find their way back:

    - WebSocket clients and ``.invalid`` hosts (RFC 7118 §5): always;
    - a request whose top Via is not its source (a client behind NAT: we stamped
      ``received``, or ``rport`` differs from the Via port);
    - a response (not a redirect) whose Contact names a private or loopback address and
      port other than its source.
    """
    values = message.get_all("contact")
    if len(values) != 1 or values[0] == "*":
        return
    address = parse_address(values[0])
    uri = address.uri
    if not isinstance(uri, SipURI) or not _unreachable(message, uri, protocol, ip, port):
        return
    fixed = uri.copy()
    fixed.host = f"[{ip}]" if ":" in ip else ip
    fixed.port = port
    if protocol != "udp":
        fixed.params["transport"] = protocol
    else:
        fixed.params.pop("transport", None)
    address.uri = fixed
    message.set("contact", str(address))


def _unreachable(message: Message, uri: SipURI, protocol: str, ip: str, port: int) -> bool:
    if protocol in ("ws", "wss") or uri.host_key.endswith(".invalid"):
        return True
    if isinstance(message, Request):
        via = message.via
        return via.received is not None or (
            via.rport is not None and via.rport != (via.port or 5060)
        )
    if not isinstance(message, Response) or 300 <= message.status < 400:
        return False  # a redirect's Contacts are targets, not the sender
    # Only a private or loopback Contact that is not the source is a NAT sign: a public
    # one from elsewhere is a proxy or SBC relaying its callee's answer.
    if not _private_or_loopback(uri.host_key):
        return False
    return uri.host_key != ip or (uri.port or 5060) != port


@functools.lru_cache(maxsize=4096)
def _private_or_loopback(host: str) -> bool:
    # Asked of every response's Contact, whose hosts repeat: an address object per
    # message showed in profiles, a cached answer per distinct host does not.
    if not is_ip(host):
        return False
    address = ipaddress.ip_address(host)
    return address.is_private or address.is_loopback
