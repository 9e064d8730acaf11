"""The six resource kinds in Routr v1's envelope: ``apiVersion/kind/metadata/spec``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from routr.models.fields import (
    AorLink,
    Host,
    HostPort,
    Name,
    Network,
    Ref,
    Regex,
    Secret,
    TelUrl,
    Username,
    tel_digits,
)
from routr.models.xxh32 import xxh32

ApiVersion = Literal["v1beta1", "v1", "v1.0"]
Transport = Literal["udp", "tcp", "tls", "ws", "wss"]
HIDE_SECRETS = "hide_secrets"


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class Strict(BaseModel):
    """Base of every resource part: unknown keys are errors, models are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class Credentials(Strict):
    """``secret`` is write-only: dumps with context ``{hide_secrets: True}`` leave it out."""

    username: Username
    secret: Secret

    @model_serializer(mode="wrap")
    def _serialize(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if isinstance(info.context, dict) and info.context.get(HIDE_SECRETS):
            data.pop("secret", None)
        return data


class Metadata(Strict):
    name: Name
    ref: Ref | None = None
    createdOn: datetime | None = None
    modifiedOn: datetime | None = None


class GeoInfo(Strict):
    city: str | None = None
    country: str | None = None
    countryISOCode: str | None = None


class NumberMetadata(Metadata):
    name: Name | None = None  # type: ignore[assignment]
    gwRef: Ref
    geoInfo: GeoInfo | None = None


class Resource(Strict):
    """Common envelope. ``metadata.ref`` is always set after validation."""

    PREFIX: ClassVar[str] = ""
    apiVersion: ApiVersion = "v1beta1"
    kind: str
    metadata: Metadata
    spec: Any

    @property
    def ref(self) -> str:
        assert self.metadata.ref is not None  # filled by _fill_ref
        return self.metadata.ref

    def natural_keys(self) -> tuple[str, ...]:
        """Keys that must be unique among resources of this kind."""
        raise NotImplementedError

    def ref_key(self) -> str:
        """What Routr v1 hashed into a missing ref (so v1 files keep their refs)."""
        raise NotImplementedError

    @model_validator(mode="after")
    def _fill_ref(self) -> Self:
        if self.metadata.ref is None:
            # Frozen model: set in place once, during validation, so the ref is stable.
            object.__setattr__(self.metadata, "ref", make_ref(self.kind, self.ref_key()))
            self.metadata.__pydantic_fields_set__.add("ref")
        return self


def make_ref(kind: str, key: str) -> str:
    """Ref of a resource written without one, as Routr v1 made it: the kind's prefix and
    XXH32(key, seed 0xABCD) in hex (no zero padding, like v1: usually 8 digits, sometimes
    fewer). Same key, same ref: loading a file twice gives the same refs."""
    return KIND_CLASSES[kind].PREFIX + format(xxh32(key.encode(), 0xABCD), "x")


# --- Domain ---------------------------------------------------------------------------------


class EgressPolicy(Strict):
    rule: Regex
    numberRef: Ref = Field(validation_alias=AliasChoices("numberRef", "didRef"))


class AccessControlList(Strict):
    allow: list[Network] = []
    deny: list[Network] = []


class DomainContext(Strict):
    domainUri: Host
    egressPolicy: EgressPolicy | None = None
    egressPolicies: list[EgressPolicy] | None = None
    accessControlList: AccessControlList | None = None

    @model_validator(mode="after")
    def _one_policy_style(self) -> Self:
        if self.egressPolicy is not None and self.egressPolicies is not None:
            raise ValueError("use egressPolicy or egressPolicies, not both")
        return self

    @property
    def policies(self) -> list[EgressPolicy]:
        """Egress policies in matching order, whichever style was written."""
        if self.egressPolicies is not None:
            return self.egressPolicies
        return [self.egressPolicy] if self.egressPolicy is not None else []


class DomainSpec(Strict):
    context: DomainContext


class Domain(Resource):
    PREFIX: ClassVar[str] = "dm"
    kind: Literal["Domain"] = "Domain"
    spec: DomainSpec

    @property
    def uri(self) -> str:
        return self.spec.context.domainUri.lower()

    def natural_keys(self) -> tuple[str, ...]:
        return (self.uri,)

    def ref_key(self) -> str:
        return self.spec.context.domainUri


# --- Agent ----------------------------------------------------------------------------------


class AgentSpec(Strict):
    credentials: Credentials
    domains: list[Host] = Field(min_length=1)
    privacy: Literal["None", "Private"] = "None"
    ex_maxContact: int = Field(default=1, ge=1)

    @field_validator("domains")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len({d.lower() for d in value}) != len(value):
            raise ValueError("domains must not repeat")
        return value


class Agent(Resource):
    PREFIX: ClassVar[str] = "ag"
    kind: Literal["Agent"] = "Agent"
    spec: AgentSpec

    def natural_keys(self) -> tuple[str, ...]:
        user = self.spec.credentials.username
        return tuple(f"{user}@{d.lower()}" for d in self.spec.domains)

    def ref_key(self) -> str:
        return self.spec.credentials.username + self.spec.domains[0]


# --- Peer -----------------------------------------------------------------------------------


class LoadBalancing(Strict):
    algorithm: Literal["round-robin", "least-sessions"] = "round-robin"


class PeerSpec(Strict):
    credentials: Credentials
    device: Host | None = None
    contactAddr: HostPort | None = None
    ex_maxContact: int = Field(default=1, ge=1)
    loadBalancing: LoadBalancing = LoadBalancing()


class Peer(Resource):
    PREFIX: ClassVar[str] = "pr"
    kind: Literal["Peer"] = "Peer"
    spec: PeerSpec

    def natural_keys(self) -> tuple[str, ...]:
        return (self.spec.credentials.username,)

    def ref_key(self) -> str:
        return self.spec.credentials.username


# --- Gateway --------------------------------------------------------------------------------


class GatewaySpec(Strict):
    host: Host
    port: int | None = Field(default=None, ge=1, le=65535)
    transport: Annotated[Transport, BeforeValidator(_lower)] = "udp"
    sendRegister: bool = True
    expires: int = Field(default=3600, ge=1)
    credentials: Credentials | None = None
    registries: list[HostPort] = []


class Gateway(Resource):
    PREFIX: ClassVar[str] = "gw"
    kind: Literal["Gateway"] = "Gateway"
    spec: GatewaySpec

    @property
    def registers(self) -> bool:
        """Outbound registration is on (v1 registered every gateway with credentials)."""
        return self.spec.sendRegister and self.spec.credentials is not None

    def natural_keys(self) -> tuple[str, ...]:
        host = self.spec.host.lower()
        return (f"{host}:{self.spec.port}" if self.spec.port else host,)

    def ref_key(self) -> str:
        return self.spec.host


# --- Number ---------------------------------------------------------------------------------


class NumberLocation(Strict):
    telUrl: TelUrl
    aorLink: AorLink


class NumberSpec(Strict):
    location: NumberLocation


class Number(Resource):
    PREFIX: ClassVar[str] = "dd"
    kind: Literal["Number"] = "Number"
    metadata: NumberMetadata
    spec: NumberSpec

    @property
    def digits(self) -> str:
        return tel_digits(self.spec.location.telUrl)

    def natural_keys(self) -> tuple[str, ...]:
        return (self.digits,)

    def ref_key(self) -> str:
        return self.spec.location.telUrl


# --- User -----------------------------------------------------------------------------------


class UserSpec(Strict):
    credentials: Credentials


class User(Resource):
    PREFIX: ClassVar[str] = "ur"
    kind: Literal["User"] = "User"
    spec: UserSpec

    def natural_keys(self) -> tuple[str, ...]:
        return (self.spec.credentials.username,)

    def ref_key(self) -> str:
        return self.spec.credentials.username


KIND_CLASSES: dict[str, type[Resource]] = {
    "Agent": Agent,
    "Domain": Domain,
    "Peer": Peer,
    "Gateway": Gateway,
    "Number": Number,
    "User": User,
}
KINDS: tuple[str, ...] = tuple(KIND_CLASSES)
# v1 plural collection names (files, Redis sets, REST paths) and the names rctl accepts.
PLURALS: dict[str, str] = {k: k.lower() + "s" for k in KINDS}
_KIND_NAMES: dict[str, str] = {
    **{k.lower(): k for k in KINDS},
    **{p: k for k, p in PLURALS.items()},
    **{cls.PREFIX: k for k, cls in KIND_CLASSES.items()},
    "did": "Number",  # Routr v1 release candidates called Numbers DIDs
    "dids": "Number",
}


def kind_of(name: str) -> str:
    """Canonical kind for ``agent``, ``agents``, ``ag``, ``Agent``, ``DID``...; KeyError if none."""
    try:
        return _KIND_NAMES[name.lower()]
    except KeyError:
        raise KeyError(f"unknown kind {name!r}; one of {', '.join(KINDS)}") from None


def normalize_key(kind: str, key: str) -> str:
    """A natural key as typed by a person, in the form ``natural_keys`` produces."""
    if kind == "Number":
        return tel_digits(key)
    if kind == "Domain":
        return key.lower()
    if kind in ("Agent", "Gateway"):
        # the user part of an Agent key stays case-sensitive, the host does not
        head, sep, tail = key.rpartition("@") if kind == "Agent" else ("", "", key)
        return f"{head}{sep}{tail.lower()}"
    return key
