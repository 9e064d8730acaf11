"""Fuzz target: Digest credentials and challenges, parsed and verified, and the answer to
a parsed challenge verified back."""

from __future__ import annotations

import harness
from harness import EXPECTED

from routr.sip.digest import (
    NonceIssuer,
    compute_ha1,
    make_credentials,
    parse_challenge,
    parse_credentials,
    pick_challenge,
)

NOW = 1_000.0
ISSUER = NonceIssuer(b"fuzz nonce key", algorithms=("SHA-256", "MD5"))


def _verify(value: str) -> None:
    creds = parse_credentials(value)
    repr(creds)
    _ = creds.username, creds.realm, creds.uri, creds.response, creds.opaque
    ISSUER.check(creds.nonce, NOW)
    ISSUER.verify(creds, "REGISTER", now=NOW, password="secret")
    ISSUER.verify(creds, "REGISTER", now=NOW)  # an unknown user
    ha1 = compute_ha1(creds.algorithm, creds.username, creds.realm, "secret")
    ISSUER.verify(creds, "INVITE", now=NOW, ha1=ha1, realm="sip.local", uri=creds.uri)


def _answer(value: str) -> None:
    """Answer the fuzzed challenge with our own nonce in it: our answer must verify."""
    challenge = parse_challenge(value)
    challenge.nonce = ISSUER.issue(NOW)
    pick_challenge([value, challenge.to_header()])
    header = make_credentials(challenge, "REGISTER", "sip:sip.local", "1001", "pw", "cn")
    creds = parse_credentials(header)
    result = ISSUER.verify(creds, "REGISTER", now=NOW, password="pw")
    assert result in ("ok", "bad"), result  # bad: a qop we do not accept, or no qop
    if challenge.qop and "auth" in challenge.qop:
        assert result == "ok", f"our own answer to {value!r} does not verify: {header!r}"


def test_one(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    for step in (_verify, _answer):
        try:
            step(text)
        except EXPECTED:
            pass


if __name__ == "__main__":
    harness.run(test_one)
