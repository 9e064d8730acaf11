"""The sans-IO SIP core: bytes and the current time in, messages and events out.

Nothing in this package opens a socket, reads a clock or imports asyncio.
"""

from routr.sip.errors import ParseError, SipError
from routr.sip.message import Message, Request, Response, parse_message

__all__ = ["Message", "ParseError", "Request", "Response", "SipError", "parse_message"]
