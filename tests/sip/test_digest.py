"""Digest authentication: parsing, RFC vectors, nonces, verification, hostile input."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routr.sip.digest import (
    MAX_HEADER_LEN,
    Challenge,
    Credentials,
    DigestError,
    NonceIssuer,
    build_challenge,
    compute_ha1,
    compute_response,
    make_credentials,
    parse_challenge,
    parse_credentials,
    pick_challenge,
)
from routr.sip.errors import SipError

SECRET = b"0123456789abcdef0123456789abcdef"
T0 = 1_700_000_000.0
REALM = "sip.local"


def issuer(**kwargs: object) -> NonceIssuer:
    return NonceIssuer(SECRET, 300, **kwargs)  # type: ignore[arg-type]


def answer(
    iss: NonceIssuer,
    now: float,
    *,
    password: str = "1234",
    algorithm: str = "SHA-256",
    nc: int = 1,
    realm: str = REALM,
    method: str = "REGISTER",
) -> tuple[str, Credentials]:
    """Challenge with ``iss`` and answer as a client; returns (nonce, parsed credentials)."""
    values = iss.challenges(realm, now)
    ch = next(parse_challenge(v) for v in values if parse_challenge(v).algorithm == algorithm)
    header = make_credentials(ch, method, f"sip:{realm}", "1001", password, "c0ffee", nc)
    return ch.nonce, parse_credentials(header)


# ------------------------------------------------------------------------------ parsing
def test_parse_rfc2617_authorization() -> None:
    value = (
        'Digest username="Mufasa",\r\n realm="testrealm@host.com",'
        ' nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth,'
        ' nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1",'
        ' opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    c = parse_credentials(value)
    assert c.is_digest and c.scheme == "Digest"
    assert c.username == "Mufasa"
    assert c.realm == "testrealm@host.com"
    assert c.uri == "/dir/index.html"
    assert (c.qop, c.nc, c.cnonce) == ("auth", "00000001", "0a4f113b")
    assert c.opaque == "5ccc069c403ebaf9f0171e9517f40e41"
    assert c.algorithm == "MD5"  # the default when absent
    assert "response" not in repr(c)


def test_parse_whitespace_case_and_escapes() -> None:
    value = (
        'digest  USERNAME = "a\\"b\\\\c" ,REALM= "r" , nonce ="n",uri="sip:x@y",'
        ' response="00",algorithm = SHA-256 ,,'
    )
    c = parse_credentials(value)
    assert c.username == 'a"b\\c'
    assert c.realm == "r" and c.nonce == "n" and c.algorithm == "SHA-256"
    assert set(c.params) == {"username", "realm", "nonce", "uri", "response", "algorithm"}


def test_escaped_quote_then_more_text() -> None:
    c = parse_credentials(
        'Digest username="x\\"y\\"z", realm="a\\b", nonce="n", uri="u", response="r"'
    )
    assert c.username == 'x"y"z'
    assert c.realm == "ab"


def test_unknown_scheme_parses() -> None:
    c = parse_credentials("NoOneKnowsThisScheme opaque-data=here")
    assert c.scheme == "NoOneKnowsThisScheme" and not c.is_digest
    assert c.params == {"opaque-data": "here"}
    basic = parse_credentials("Basic dXNlcjpwYXNz")
    assert basic.scheme == "Basic" and basic.params == {}


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "Digest",
        'Digest username="unterminated, realm="r"',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x',
        'Digest username="a" realm="r", nonce="n", uri="u", response="x"',
        'Digest username="a", realm="r", nonce="n", uri="u"',  # no response
        'Digest username="a", username="b", realm="r", nonce="n", uri="u", response="x"',
        'Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth',
        'Digest username=, realm="r"',
        'Digest ="a"',
        'Digest username="a\\',
        '"Digest" username="a"',
        "Digest," + "a" * MAX_HEADER_LEN,
        'Digest username="' + "\\" * 5000 + '"',
    ],
)
def test_malformed_credentials_raise_digest_error(value: str) -> None:
    with pytest.raises(DigestError):
        parse_credentials(value)


def test_digest_error_is_value_error_and_sip_error() -> None:
    assert issubclass(DigestError, ValueError)
    assert issubclass(DigestError, SipError)


_FUZZ_ISSUER = NonceIssuer(SECRET)


def _parses_or_digest_error(value: str) -> None:
    """Parsing either succeeds or raises DigestError; verifying what parsed never raises."""
    with contextlib.suppress(DigestError):
        parse_challenge(value)
    try:
        creds = parse_credentials(value)
    except DigestError:
        return
    assert _FUZZ_ISSUER.verify(creds, "REGISTER", now=T0, password="p") == "bad"


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_any_text_parses_or_raises_digest_error(value: str) -> None:
    _parses_or_digest_error(value)


_piece = st.sampled_from(
    ["Digest", " ", ",", "=", '"', "\\", "username", "realm", "nonce", "uri", "response",
     "qop", "nc", "cnonce", "auth", "x", "\t", "\r\n"]
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(_piece, max_size=40).map("".join))
def test_structured_garbage_parses_or_raises_digest_error(value: str) -> None:
    _parses_or_digest_error(value)


@settings(max_examples=200, deadline=None)
@given(
    st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=40),
    st.text(max_size=40),
)
def test_quoting_round_trips(username: str, realm: str) -> None:
    ch = Challenge(realm=realm, nonce="abc")
    assert parse_challenge(ch.to_header()).realm == realm
    c = parse_credentials(make_credentials(ch, "REGISTER", "sip:x", username, "pw", "cn"))
    assert (c.username, c.realm) == (username, realm)


def test_parse_challenge() -> None:
    ch = parse_challenge(
        'Digest realm="sip.provider.net", nonce="abc", qop="auth, auth-int",'
        ' algorithm=SHA-256, opaque="op", stale=TRUE'
    )
    assert (ch.realm, ch.nonce, ch.algorithm, ch.opaque) == (
        "sip.provider.net",
        "abc",
        "SHA-256",
        "op",
    )
    assert ch.qop == ("auth", "auth-int")
    assert ch.stale is True
    legacy = parse_challenge('Digest realm="r", nonce="n"')
    assert legacy.qop == () and legacy.algorithm == "MD5" and not legacy.stale


@pytest.mark.parametrize(
    "value",
    ['Basic realm="x"', 'Digest realm="x"', 'Digest nonce="n"', 'Digest realm="x'],
)
def test_bad_challenges(value: str) -> None:
    with pytest.raises(DigestError):
        parse_challenge(value)


def test_build_challenge_round_trip() -> None:
    value = build_challenge('r"e', "n", "SHA-256", ("auth",), opaque="o", stale=True)
    assert (
        value
        == 'Digest realm="r\\"e", nonce="n", algorithm=SHA-256, qop="auth", opaque="o", stale=true'
    )
    ch = parse_challenge(value)
    assert (ch.realm, ch.algorithm, ch.qop, ch.opaque, ch.stale) == (
        'r"e',
        "SHA-256",
        ("auth",),
        "o",
        True,
    )


def test_pick_challenge_prefers_sha256() -> None:
    md5 = 'Digest realm="r", nonce="n1", algorithm=MD5, qop="auth"'
    sha = 'Digest realm="r", nonce="n2", algorithm=SHA-256, qop="auth"'
    odd = 'Digest realm="r", nonce="n3", algorithm=SHA-512-256, qop="auth"'
    picked = pick_challenge([md5, 'Basic realm="r"', odd, sha])
    assert picked is not None and picked.nonce == "n2"
    assert pick_challenge(['Basic realm="r"', odd]) is None


# ------------------------------------------------------------------------------ RFC vectors
RFC2617 = Challenge(
    realm="testrealm@host.com",
    nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
    qop=("auth", "auth-int"),
    opaque="5ccc069c403ebaf9f0171e9517f40e41",
)


def test_rfc2617_vector() -> None:
    ha1 = compute_ha1("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life")
    resp = compute_response(
        "MD5", ha1, "GET", "/dir/index.html", RFC2617.nonce, "auth", "00000001", "0a4f113b"
    )
    assert resp == "6629fae49393a05397450978507c4ef1"
    header = make_credentials(
        RFC2617, "GET", "/dir/index.html", "Mufasa", "Circle Of Life", "0a4f113b"
    )
    c = parse_credentials(header)
    assert c.response == "6629fae49393a05397450978507c4ef1"
    assert (c.qop, c.nc, c.cnonce, c.opaque) == ("auth", "00000001", "0a4f113b", RFC2617.opaque)


# RFC 7616 §3.9.1 (note the lower-case "of" in the password there).
RFC7616 = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={alg},'
    ' nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",'
    ' opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)


@pytest.mark.parametrize(
    ("alg", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_vectors(alg: str, expected: str) -> None:
    header = make_credentials(
        RFC7616.format(alg=alg),
        "GET",
        "/dir/index.html",
        "Mufasa",
        "Circle of Life",
        "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    )
    c = parse_credentials(header)
    assert c.response == expected
    assert c.algorithm == alg


def test_sha256_by_hand() -> None:
    def h(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    ha1 = h("bob:sip.local:s3cret")
    ha2 = h("INVITE:sip:alice@sip.local")
    expected = h(f"{ha1}:nonce:0000000a:cn:auth:{ha2}")
    assert compute_ha1("sha-256", "bob", "sip.local", "s3cret") == ha1
    got = compute_response(
        "SHA-256", ha1, "INVITE", "sip:alice@sip.local", "nonce", "auth", "0000000a", "cn"
    )
    assert got == expected


def test_sess_and_auth_int_and_rfc2069_by_hand() -> None:
    def h(text: str) -> str:
        return hashlib.md5(text.encode()).hexdigest()

    ha1 = h("u:r:p")
    sess = h(f"{ha1}:n:cn")
    assert compute_response("MD5-sess", ha1, "M", "U", "n", "auth", "00000001", "cn") == h(
        f"{sess}:n:00000001:cn:auth:{h('M:U')}"
    )
    body_hash = hashlib.md5(b"body").hexdigest()
    assert compute_response("MD5", ha1, "M", "U", "n", "auth-int", "1", "cn", b"body") == h(
        f"{ha1}:n:1:cn:auth-int:{h(f'M:U:{body_hash}')}"
    )
    assert compute_response("MD5", ha1, "M", "U", "n") == h(f"{ha1}:n:{h('M:U')}")


def test_make_credentials_rfc2069_and_errors() -> None:
    c = parse_credentials(make_credentials('Digest realm="r", nonce="n"', "M", "U", "u", "p", "cn"))
    assert c.qop is None and c.nc is None and c.cnonce is None
    with pytest.raises(DigestError):
        make_credentials(
            'Digest realm="r", nonce="n", algorithm=SHA-512-256', "M", "U", "u", "p", "c"
        )
    with pytest.raises(DigestError):
        make_credentials('Digest realm="r", nonce="n", qop="auth-conf"', "M", "U", "u", "p", "c")
    with pytest.raises(DigestError):
        make_credentials('Digest realm="r", nonce="n"', "M", "U", "u", "p", "c", nc=0)


# ------------------------------------------------------------------------------ nonces
def test_nonce_ok_stale_invalid() -> None:
    iss = issuer()
    nonce = iss.issue(T0)
    assert len(nonce) == 43 and nonce.isascii()
    assert iss.check(nonce, T0) == "ok"
    assert iss.check(nonce, T0 + 299) == "ok"
    assert iss.check(nonce, T0 + 301) == "stale"
    assert iss.check(nonce, T0 - 3600) == "invalid"  # from the far future
    assert iss.issue(T0) != nonce  # two nonces of the same instant differ


def test_nonce_from_another_worker_with_same_secret() -> None:
    assert issuer().check(issuer().issue(T0), T0) == "ok"
    assert NonceIssuer(b"other secret").check(issuer().issue(T0), T0) == "invalid"


@pytest.mark.parametrize("mutate", range(43))
def test_forged_nonce_invalid(mutate: int) -> None:
    iss = issuer()
    nonce = iss.issue(T0)
    flipped = "A" if nonce[mutate] != "A" else "B"
    forged = nonce[:mutate] + flipped + nonce[mutate + 1 :]
    assert iss.check(forged, T0) == "invalid"


@pytest.mark.parametrize(
    "nonce", ["", "x", "é" * 43, "=" * 43, "dcd98b7102dd2f0e8b11d0f600bfb0c093"]
)
def test_garbage_nonce_invalid(nonce: str) -> None:
    assert issuer().check(nonce, T0) == "invalid"


def test_challenges_sha256_first_then_md5() -> None:
    iss = NonceIssuer(SECRET, opaque="op")
    values = iss.challenges(REALM, T0)
    parsed = [parse_challenge(v) for v in values]
    assert [p.algorithm for p in parsed] == ["SHA-256", "MD5"]
    assert all(p.qop == ("auth",) and p.realm == REALM and p.opaque == "op" for p in parsed)
    assert all(not p.stale for p in parsed)
    assert all(iss.check(p.nonce, T0) == "ok" for p in parsed)
    assert all(parse_challenge(v).stale for v in iss.challenges(REALM, T0, stale=True))


# ------------------------------------------------------------------------------ verify
@pytest.mark.parametrize("alg", ["SHA-256", "MD5"])
def test_good_password(alg: str) -> None:
    iss = issuer()
    _, c = answer(iss, T0, algorithm=alg)
    assert iss.verify(c, "REGISTER", now=T0 + 1, password="1234", realm=REALM) == "ok"


@pytest.mark.parametrize("alg", ["SHA-256", "MD5"])
def test_wrong_password(alg: str) -> None:
    iss = issuer()
    _, c = answer(iss, T0, algorithm=alg, password="4321")
    assert iss.verify(c, "REGISTER", now=T0 + 1, password="1234", realm=REALM) == "bad"


def test_stored_ha1() -> None:
    iss = issuer()
    _, c = answer(iss, T0)
    ha1 = compute_ha1("SHA-256", "1001", REALM, "1234")
    assert iss.verify(c, "REGISTER", now=T0, ha1=ha1.upper()) == "ok"
    _, c2 = answer(iss, T0)
    wrong = compute_ha1("SHA-256", "1001", REALM, "nope")
    assert iss.verify(c2, "REGISTER", now=T0, ha1=wrong) == "bad"


def test_unknown_user_is_bad() -> None:
    iss = issuer()
    _, c = answer(iss, T0)
    assert iss.verify(c, "REGISTER", now=T0) == "bad"


def test_password_and_ha1_together_is_a_programming_error() -> None:
    iss = issuer()
    _, c = answer(iss, T0)
    with pytest.raises(ValueError):
        iss.verify(c, "REGISTER", now=T0, password="1234", ha1="00")


def test_wrong_realm() -> None:
    iss = issuer()
    _, c = answer(iss, T0, realm="other.local")
    assert iss.verify(c, "REGISTER", now=T0, password="1234", realm=REALM) == "bad"


def test_wrong_method_or_uri() -> None:
    iss = issuer()
    _, c = answer(iss, T0)
    assert iss.verify(c, "INVITE", now=T0, password="1234") == "bad"
    _, c = answer(iss, T0)
    assert iss.verify(c, "REGISTER", now=T0, password="1234", uri="sip:elsewhere") == "bad"
    assert iss.verify(c, "REGISTER", now=T0, password="1234", uri=f"sip:{REALM}") == "ok"


def test_stale_nonce_after_lifetime() -> None:
    iss = issuer()
    _, c = answer(iss, T0)
    assert iss.verify(c, "REGISTER", now=T0 + 301, password="1234") == "stale"
    # stale is only said for a correct response (RFC 7616 §3.3)
    _, c = answer(iss, T0, password="wrong")
    assert iss.verify(c, "REGISTER", now=T0 + 301, password="1234") == "bad"


def test_forged_nonce_in_credentials() -> None:
    iss = issuer()
    forged = Challenge(realm=REALM, nonce="A" * 43, algorithm="SHA-256")
    c = parse_credentials(make_credentials(forged, "REGISTER", "sip:x", "1001", "1234", "cn"))
    assert iss.verify(c, "REGISTER", now=T0, password="1234") == "bad"
    foreign = Challenge(realm=REALM, nonce=NonceIssuer(b"k").issue(T0), algorithm="SHA-256")
    c = parse_credentials(make_credentials(foreign, "REGISTER", "sip:x", "1001", "1234", "cn"))
    assert iss.verify(c, "REGISTER", now=T0, password="1234") == "bad"


def test_nc_replay_refused_and_increasing_accepted() -> None:
    iss = issuer()
    nonce, c1 = answer(iss, T0, nc=1)
    assert iss.verify(c1, "REGISTER", now=T0, password="1234") == "ok"
    assert iss.verify(c1, "REGISTER", now=T0 + 1, password="1234") == "replay"
    ch = Challenge(realm=REALM, nonce=nonce, algorithm="SHA-256")

    def creds(nc: int) -> Credentials:
        header = make_credentials(ch, "REGISTER", f"sip:{REALM}", "1001", "1234", "c0ffee", nc)
        return parse_credentials(header)

    assert iss.verify(creds(2), "REGISTER", now=T0 + 2, password="1234") == "ok"
    assert iss.verify(creds(5), "REGISTER", now=T0 + 3, password="1234") == "ok"
    assert iss.verify(creds(4), "REGISTER", now=T0 + 4, password="1234") == "replay"
    assert iss.verify(creds(5), "REGISTER", now=T0 + 4, password="1234") == "replay"
    assert iss.verify(creds(6), "REGISTER", now=T0 + 5, password="1234") == "ok"


def test_failed_attempts_do_not_consume_nc() -> None:
    iss = issuer()
    _, c = answer(iss, T0, password="wrong")
    assert iss.verify(c, "REGISTER", now=T0, password="1234") == "bad"
    assert iss.tracked == 0


def test_bad_nc_values() -> None:
    iss = issuer()
    nonce = iss.issue(T0)
    for nc in ("00000000", "xyz", "123456789", ""):
        ha1 = compute_ha1("MD5", "u", REALM, "p")
        resp = compute_response("MD5", ha1, "REGISTER", "sip:x", nonce, "auth", nc, "cn")
        c = parse_credentials(
            f'Digest username="u", realm="{REALM}", nonce="{nonce}", uri="sip:x",'
            f' response="{resp}", qop=auth, nc="{nc}", cnonce="cn"'
        )
        assert iss.verify(c, "REGISTER", now=T0, password="p") == "bad", nc


def test_rfc2069_fallback_md5_only() -> None:
    # Off by default: without qop there is no nonce count, so a sniffed answer replays.
    iss = issuer(allow_rfc2069=True)
    for alg, expected in (("MD5", "ok"), ("SHA-256", "bad")):
        ch = Challenge(realm=REALM, nonce=iss.issue(T0), algorithm=alg, qop=())
        c = parse_credentials(make_credentials(ch, "REGISTER", "sip:x", "u", "p", "cn"))
        assert c.qop is None
        assert iss.verify(c, "REGISTER", now=T0, password="p") == expected
    strict = issuer()
    ch = Challenge(realm=REALM, nonce=strict.issue(T0), qop=())
    c = parse_credentials(make_credentials(ch, "REGISTER", "sip:x", "u", "p", "cn"))
    assert strict.verify(c, "REGISTER", now=T0, password="p") == "bad"


@pytest.mark.parametrize("alg", ["MD5-sess", "SHA-256-sess"])
def test_sess_variants_verify(alg: str) -> None:
    iss = issuer()
    ch = Challenge(realm=REALM, nonce=iss.issue(T0), algorithm=alg)
    c = parse_credentials(make_credentials(ch, "REGISTER", "sip:x", "u", "p", "cn"))
    assert iss.verify(c, "REGISTER", now=T0, password="p") == "ok"


def test_unsupported_algorithm_qop_or_scheme_is_bad() -> None:
    iss = issuer()
    nonce = iss.issue(T0)
    base = f'username="u", realm="r", nonce="{nonce}", uri="sip:x", response="00"'
    for value in (
        f"Digest {base}, algorithm=SHA-512-256",
        f'Digest {base}, qop=auth-int, nc=00000001, cnonce="c"',
        f"Other {base}",
    ):
        assert iss.verify(parse_credentials(value), "REGISTER", now=T0, password="p") == "bad"
    hostile = parse_credentials(
        f'Digest username="u", realm="r", nonce="{nonce}", uri="x", response="\u00e9\ud800"'
    )
    assert iss.verify(hostile, "REGISTER", now=T0, password="p") == "bad"


def test_nc_table_is_bounded_and_expires() -> None:
    iss = issuer(max_tracked=100)
    accepted = []
    for i in range(250):
        now = T0 + i * 0.01
        nonce, c = answer(iss, now, algorithm="MD5")
        assert iss.verify(c, "REGISTER", now=now, password="1234") == "ok"
        accepted.append((nonce, c))
        assert iss.tracked <= 100
    # An evicted but still-live nonce must not be replayable: it is answered stale.
    for _nonce, c in accepted[:50]:
        assert iss.verify(c, "REGISTER", now=T0 + 3, password="1234") in ("stale", "replay")
    # A recent one is still remembered.
    assert iss.verify(accepted[-1][1], "REGISTER", now=T0 + 3, password="1234") == "replay"
    # Once everything has expired, the table empties on the next use.
    later = T0 + 1000
    _, c = answer(iss, later)
    assert iss.verify(c, "REGISTER", now=later, password="1234") == "ok"
    assert iss.tracked == 1


def test_issuer_arguments() -> None:
    with pytest.raises(ValueError):
        NonceIssuer(b"")
    with pytest.raises(ValueError):
        NonceIssuer(SECRET, lifetime=0)


_NAMES = st.sampled_from(
    ["username", "realm", "nonce", "uri", "response", "algorithm", "qop", "nc", "cnonce", "opaque"]
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_NAMES, st.text(max_size=30), min_size=1), st.booleans())
def test_quoted_params_round_trip_and_verify_never_raises(
    params: dict[str, str], stale_nonce: bool
) -> None:
    iss = issuer()
    params.setdefault("nonce", iss.issue(T0 - (400 if stale_nonce else 0)))
    for name in ("username", "realm", "uri", "response"):
        params.setdefault(name, "x")
    if "qop" in params:
        params.setdefault("nc", "00000001")
        params.setdefault("cnonce", "c")
    value = "Digest " + ", ".join(
        f'{k}="' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for k, v in params.items()
    )
    c = parse_credentials(value)
    assert c.params == params
    assert iss.verify(c, "REGISTER", now=T0, password="p") in ("bad", "stale", "ok", "replay")
