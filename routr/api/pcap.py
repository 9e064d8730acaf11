"""Traces as pcap files (Ethernet, IPv4/IPv6, UDP), for Wireshark, tshark and sngrep.

Every message becomes one UDP datagram between the addresses it travelled between, also
when it went over TCP, TLS or WebSocket: the SIP is what a reader of a trace wants, not
the stream's segments.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable

from routr.core.trace import Record, redact

_MAGIC = 0xA1B2C3D4
_LINKTYPE_ETHERNET = 1
_SNAPLEN = 262_144
_MAX_PAYLOAD = 65_000
_MACS = b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02"


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:  # a name (an advertised externAddr): the address is not known here
        return ipaddress.IPv4Address("0.0.0.0")


def _frame(record: Record) -> bytes:
    src, dst = _address(record.origin[0]), _address(record.destination[0])
    # one datagram carries at most this much; a bigger message (TCP) is cut in the file
    payload = redact(record.data)[:_MAX_PAYLOAD]
    udp = struct.pack("!HHHH", record.origin[1], record.destination[1], 8 + len(payload), 0)
    if src.version == 4 and dst.version == 4:
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp) + len(payload), 0, 0x4000,
                             64, 17, 0, src.packed, dst.packed)  # fmt: skip
        header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
        return _MACS + b"\x08\x00" + header + udp + payload
    src6 = src if src.version == 6 else ipaddress.IPv6Address(f"::ffff:{src}")
    dst6 = dst if dst.version == 6 else ipaddress.IPv6Address(f"::ffff:{dst}")
    header = struct.pack("!IHBB16s16s", 6 << 28, len(udp) + len(payload), 17, 64,
                         src6.packed, dst6.packed)  # fmt: skip
    return _MACS + b"\x86\xdd" + header + udp + payload


def pcap(records: Iterable[Record]) -> bytes:
    out = [struct.pack("<IHHiIII", _MAGIC, 2, 4, 0, 0, _SNAPLEN, _LINKTYPE_ETHERNET)]
    for record in records:
        frame = _frame(record)
        seconds = int(record.time)
        micros = int((record.time - seconds) * 1_000_000)
        out.append(struct.pack("<IIII", seconds, micros, len(frame), len(frame)) + frame)
    return b"".join(out)
