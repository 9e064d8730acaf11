"""Benchmarks for ``nox -s bench``: parser micro-benchmarks and SIPp against the server."""
