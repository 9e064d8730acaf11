"""API users' secrets at rest: argon2id hashes when routr writes them.

Agents, Peers and Gateways keep their secrets as written: SIP digest needs the plain
password (or an HA1 per realm) to check an answer. Users only log in to the REST API, so
their secret is stored as an argon2id hash. Hand-written YAML may still hold a plain
secret; it is accepted and replaced by a hash the next time routr writes that User.
"""

from __future__ import annotations

import hmac

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from routr.models import Resource, User

_HASHER = PasswordHasher()
_PREFIX = "$argon2"


def is_hashed(secret: str) -> bool:
    return secret.startswith(_PREFIX)


def hash_secret(secret: str) -> str:
    """An argon2id hash of ``secret``; a value that is already a hash is kept."""
    return secret if is_hashed(secret) else _HASHER.hash(secret)


def verify_secret(stored: str, given: str) -> bool:
    """Whether ``given`` is the secret ``stored`` holds (a hash, or a hand-written plain
    secret compared in constant time)."""
    if not is_hashed(stored):
        return hmac.compare_digest(stored.encode(), given.encode())
    try:
        return _HASHER.verify(stored, given)
    except (VerificationError, InvalidHashError):
        return False


def with_hashed_secret(resource: Resource) -> Resource:
    """``resource`` ready to be stored: a User's plain secret becomes its hash."""
    if not isinstance(resource, User):
        return resource
    credentials = resource.spec.credentials
    if is_hashed(credentials.secret):
        return resource
    hashed = credentials.model_copy(update={"secret": hash_secret(credentials.secret)})
    spec = resource.spec.model_copy(update={"credentials": hashed})
    return resource.model_copy(update={"spec": spec})
