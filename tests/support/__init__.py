"""Test support: run the real server, talk SIP to it over real sockets."""
