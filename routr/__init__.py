"""routr: a SIP proxy, registrar and location server configured by resources, not scripts."""

__version__ = "0.1.0"
