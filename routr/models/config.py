"""The server configuration: Routr v1's ``config.yml`` (extended), env overrides, defaults.

Read once at start into typed models. Env variables beat the file; the file beats the
embedded defaults. Any problem becomes a :class:`ConfigError` whose text is one line
naming the file, the key and the problem.
"""

from __future__ import annotations

import difflib
import ipaddress
import logging
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from routr.models.errors import describe
from routr.models.resources import AccessControlList

Protocol = Literal["udp", "tcp", "tls", "ws", "wss"]
DigestAlgorithm = Literal["MD5", "SHA-256"]
_ALGORITHM_NAMES = {"MD5": "MD5", "SHA-256": "SHA-256", "SHA256": "SHA-256"}
SECURE_PROTOCOLS = frozenset({"tls", "wss"})
DEFAULT_CONFIG_PATH = Path("config/config.yml")
_log = logging.getLogger(__name__)


class _Model(BaseModel):
    # v1 files carry keys we do not use (ex_rtpEngine...): ignore them rather than refuse.
    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)


class Transport(_Model):
    protocol: Protocol
    port: int = Field(ge=0, le=65535)
    bind_addr: str | None = Field(default=None, alias="bindAddr")

    @field_validator("protocol", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class ClientAuth(_Model):
    auth_type: Literal["Disabled", "Required", "Optional", "DisabledAll", "Wanted", "Needed"] = (
        Field(default="Disabled", alias="authType")
    )
    protocols: list[str] = Field(default_factory=lambda: ["TLSv1.2", "TLSv1.3"])


class SecurityContext(_Model):
    cert_file: str | None = Field(default=None, alias="certFile")
    key_file: str | None = Field(default=None, alias="keyFile")
    ca_file: str | None = Field(default=None, alias="caFile")
    key_store: str | None = Field(default=None, alias="keyStore")
    key_store_password: str | None = Field(default=None, alias="keyStorePassword")
    key_store_type: str | None = Field(default=None, alias="keyStoreType")
    client: ClientAuth = Field(default_factory=ClientAuth)

    @model_validator(mode="after")
    def _keystore(self) -> SecurityContext:
        kind = (self.key_store_type or "").lower()
        if kind == "jks":
            raise ValueError(
                "Java keystores (jks) are not supported; convert to PEM with: keytool "
                "-importkeystore -srckeystore FILE.jks -destkeystore FILE.p12 -deststoretype "
                "pkcs12, then use keyStoreType: pkcs12 (or openssl pkcs12 -in FILE.p12 -nodes "
                "for certFile/keyFile)"
            )
        if kind and kind not in ("pkcs12", "p12"):
            raise ValueError(f"keyStoreType {self.key_store_type!r}: use pkcs12 or PEM files")
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError("certFile and keyFile go together")
        return self

    @property
    def has_certificate(self) -> bool:
        return bool(self.cert_file and self.key_file) or bool(self.key_store)


class LoginLimit(_Model):
    """Failed logins tolerated per client address before it must wait."""

    failures: int = Field(default=10, ge=1)
    seconds: float = Field(default=60, gt=0)


class RestService(_Model):
    bind_addr: str = Field(default="127.0.0.1", alias="bindAddr")
    port: int = Field(default=4567, ge=0, le=65535)
    unsecured: bool = False
    cert_file: str | None = Field(default=None, alias="certFile")
    key_file: str | None = Field(default=None, alias="keyFile")
    # seconds a token from /token stays valid
    token_lifetime: float = Field(default=3600, gt=0, le=31 * 86400, alias="tokenLifetime")
    login_limit: LoginLimit = Field(default_factory=LoginLimit, alias="loginLimit")
    # /metrics is open like Prometheus endpoints usually are; true asks a token of it too
    metrics_auth: bool = Field(default=False, alias="metricsAuth")
    log_records: int = Field(default=1000, ge=10, le=100_000, alias="logRecords")
    # Users whose token may read secrets (?secrets=true): another routr replicating this
    # one's resources with http_data_provider. Nobody by default: secrets are write-only.
    secret_readers: list[str] = Field(default_factory=list, alias="secretReaders")

    @property
    def plain_http(self) -> bool:
        """HTTP when asked for, or when only loopback can reach the API and no certificate
        is given (one given is meant to be used)."""
        if self.unsecured:
            return True
        if self.cert_file and self.key_file:
            return False
        try:
            return ipaddress.ip_address(self.bind_addr).is_loopback
        except ValueError:
            return self.bind_addr == "localhost"


def parse_parameters(parameters: str | Mapping[str, Any] | None) -> dict[str, str]:
    """v1's ``'k=v,k=v'`` string (values may hold ``=``) or a mapping, as strings."""
    if parameters is None:
        return {}
    if isinstance(parameters, Mapping):
        return {str(k): "" if v is None else str(v) for k, v in parameters.items()}
    out: dict[str, str] = {}
    for part in parameters.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"{part.strip()!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


def _parsable(value: str | dict[str, Any]) -> str | dict[str, Any]:
    parse_parameters(value)  # a broken v1 string is a config error, not a crash at start
    return value


Parameters = Annotated[str | dict[str, Any], AfterValidator(_parsable)]


class DataSource(_Model):
    provider: str = "files_data_provider"
    parameters: Parameters = "path=config"

    @property
    def params(self) -> dict[str, str]:
        """``parameters`` as a mapping, whichever form it was written in."""
        return parse_parameters(self.parameters)


class Location(_Model):
    provider: Literal["memory", "redis"] | None = None
    parameters: Parameters | None = None


class Registrar(_Model):
    min_expires: int = Field(default=60, ge=0, alias="minExpires")
    max_expires: int = Field(default=3600, ge=1, alias="maxExpires")
    default_expires: int = Field(default=3600, ge=1, alias="defaultExpires")

    @model_validator(mode="after")
    def _order(self) -> Registrar:
        if not self.min_expires <= self.default_expires <= self.max_expires:
            raise ValueError("need minExpires <= defaultExpires <= maxExpires")
        return self


class FloodBan(_Model):
    requests: int = Field(default=200, ge=1)
    seconds: float = Field(default=2, gt=0)
    ban_seconds: float = Field(default=300, ge=0, alias="banSeconds")


class PerAorLimit(_Model):
    """Failed authentications against one AOR from any addresses: ``failures`` within
    ``seconds`` lock it for ``lockSeconds`` (0: never) to all but its known addresses."""

    failures: int = Field(default=20, ge=1)
    seconds: float = Field(default=600, gt=0)
    lock_seconds: float = Field(default=900, ge=0, alias="lockSeconds")


class AuthFailureBan(_Model):
    failures: int = Field(default=10, ge=1)
    seconds: float = Field(default=600, gt=0)
    ban_seconds: float = Field(default=900, ge=0, alias="banSeconds")
    per_aor: PerAorLimit = Field(default_factory=PerAorLimit, alias="perAor")


class Limits(_Model):
    """Bounds on what one message or one source may make routr hold (docs/limits.md)."""

    max_headers: int = Field(default=256, ge=16, le=10_000, alias="maxHeaders")
    max_vias: int = Field(default=70, ge=1, le=10_000, alias="maxVias")
    max_routes: int = Field(default=70, ge=1, le=10_000, alias="maxRoutes")
    max_contacts: int = Field(default=32, ge=1, le=10_000, alias="maxContacts")
    max_transactions_per_source: int = Field(default=1000, ge=1, alias="maxTransactionsPerSource")
    max_ws_frame_size: int = Field(default=65535, ge=1024, le=1 << 20, alias="maxWsFrameSize")
    handshake_timeout: float = Field(default=10, gt=0, le=300, alias="handshakeTimeout")
    message_timeout: float = Field(default=20, gt=0, le=3600, alias="messageTimeout")
    max_pending_lookups: int = Field(default=100, ge=1, alias="maxPendingLookups")


def _md5_only() -> list[DigestAlgorithm]:
    return ["MD5"]


class Security(_Model):
    authenticate_requests: bool = Field(default=True, alias="authenticateRequests")
    max_message_size: int = Field(default=65535, ge=1024, le=1 << 20, alias="maxMessageSize")
    trusted: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    flood_ban: FloodBan = Field(default_factory=FloodBan, alias="floodBan")
    block_scanners: bool = Field(default=True, alias="blockScanners")
    auth_failure_ban: AuthFailureBan = Field(default_factory=AuthFailureBan, alias="authFailureBan")
    max_connections_per_source: int = Field(default=256, ge=1, alias="maxConnectionsPerSource")
    # Above the default maxExpires: a client registered over TCP/TLS/WS may stay quiet
    # until its refresh, and its connection is the only way to reach it.
    idle_timeout: float = Field(default=3900, gt=0, alias="idleTimeout")
    limits: Limits = Field(default_factory=Limits)
    # MD5 alone by default: clients built on libre 1.x (baresip), sipsak 0.9 and SIPp 3.6
    # give up on a challenge as soon as any WWW-Authenticate names SHA-256, even when an MD5
    # one is offered too. Deployments whose phones all do RFC 8760 list SHA-256 first.
    digest_algorithms: list[DigestAlgorithm] = Field(
        default_factory=_md5_only, min_length=1, alias="digestAlgorithms"
    )
    nonce_lifetime: float = Field(default=300, gt=0, le=86400, alias="nonceLifetime")
    # Master of the nonce and Record-Route keys; by default kept in the data source.
    secret: str | None = Field(default=None, min_length=16, max_length=1024)

    @field_validator("digest_algorithms", mode="before")
    @classmethod
    def _algorithm_names(cls, value: object) -> object:
        if isinstance(value, list):
            return [_ALGORITHM_NAMES.get(str(v).upper(), v) for v in value]
        return value

    @field_validator("digest_algorithms")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("an algorithm is listed twice")
        return value

    @field_validator("trusted")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value


class Proxy(_Model):
    # RFC 3261 §16.6 asks more than 3 minutes; 180 s is what Kamailio's fr_inv_timer uses.
    timer_c: float = Field(default=180, gt=0, alias="timerC")


class Trace(_Model):
    """Call traces (``GET /calls/{id}/trace``): every call, a sample, or none."""

    mode: Literal["off", "sampled", "on"] = "on"
    calls: int = Field(default=200, ge=1, le=100_000)  # traces kept, the oldest go first
    messages: int = Field(default=100, ge=1, le=10_000)  # messages kept per call
    sample: float = Field(default=0.1, gt=0, le=1)  # share of calls traced when sampled
    # bytes of messages kept in all traces; past it the oldest traces go
    max_bytes: int = Field(default=16 * 1024 * 1024, ge=65_536, alias="maxBytes")

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_words(cls, value: object) -> object:
        # YAML 1.1 reads a bare on/off as a boolean
        return {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value


class Nats(_Model):
    url: str | list[str] = "nats://127.0.0.1:4222"  # several: the client fails over
    subject: str = Field(default="routr", pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
    # JetStream stream name: events are kept for replay (the stream is made if missing)
    stream: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]+$")
    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds_file: str | None = Field(default=None, alias="credsFile")
    ca_file: str | None = Field(default=None, alias="caFile")
    cert_file: str | None = Field(default=None, alias="certFile")
    key_file: str | None = Field(default=None, alias="keyFile")
    # events kept while NATS is away; more are dropped and counted
    queue_size: int = Field(default=10_000, ge=10, le=1_000_000, alias="queueSize")


class Events(_Model):
    nats: Nats | None = None
    # ended calls kept for GET /calls and rctl calls (in memory, per process)
    call_history: int = Field(default=200, ge=0, le=100_000, alias="callHistory")


def _default_transports() -> list[Transport]:
    return [
        Transport(protocol="udp", port=5060),
        Transport(protocol="tcp", port=5060),
        Transport(protocol="ws", port=5062),
    ]


class Spec(_Model):
    bind_addr: str = Field(default="0.0.0.0", alias="bindAddr")
    extern_addr: str | None = Field(default=None, alias="externAddr")
    localnets: list[str] = Field(default_factory=list)
    record_route: bool = Field(default=False, alias="recordRoute")
    use_to_as_aor: bool = Field(default=False, alias="useToAsAOR")
    registrar_intf: Literal["External", "Internal"] = Field(
        default="External", alias="registrarIntf"
    )
    access_control_list: AccessControlList | None = Field(default=None, alias="accessControlList")
    transport: list[Transport] = Field(default_factory=_default_transports)
    security_context: SecurityContext = Field(
        default_factory=SecurityContext, alias="securityContext"
    )
    rest_service: RestService = Field(default_factory=RestService, alias="restService")
    data_source: DataSource = Field(default_factory=DataSource, alias="dataSource")
    location: Location = Field(default_factory=Location)
    registrar: Registrar = Field(default_factory=Registrar)
    security: Security = Field(default_factory=Security)
    proxy: Proxy = Field(default_factory=Proxy)
    trace: Trace = Field(default_factory=Trace)
    events: Events = Field(default_factory=Events)

    @field_validator("bind_addr")
    @classmethod
    def _address(cls, value: str) -> str:
        ipaddress.ip_address(value)
        return value

    @field_validator("localnets")
    @classmethod
    def _localnets(cls, value: list[str]) -> list[str]:
        for item in value:
            ipaddress.ip_network(item, strict=False)
        return value

    @model_validator(mode="after")
    def _secure_transports(self) -> Spec:
        seen: set[tuple[str, str, int]] = set()
        for i, item in enumerate(self.transport):
            if item.protocol in SECURE_PROTOCOLS and not self.security_context.has_certificate:
                raise ValueError(
                    f"transport[{i}] ({item.protocol}) needs securityContext.certFile and "
                    "keyFile (or keyStore); routr does not skip it silently"
                )
            family = "stream" if item.protocol != "udp" else "udp"
            key = (family, item.bind_addr or self.bind_addr, item.port)
            if item.port and key in seen:
                raise ValueError(f"transport[{i}]: port {item.port} is already used")
            seen.add(key)
        return self


class Metadata(_Model):
    user_agent: str = Field(default="routr", alias="userAgent")


class Config(_Model):
    """The whole configuration file."""

    api_version: str = Field(default="v1beta1", alias="apiVersion")
    kind: str | None = None
    metadata: Metadata = Field(default_factory=Metadata)
    spec: Spec = Field(default_factory=Spec)

    @property
    def user_agent(self) -> str:
        return self.metadata.user_agent


class ConfigError(Exception):
    """A configuration that cannot be used; ``str()`` is the one line to print."""


def _boolean(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


# env name -> (path in the file, conversion)
ENV_OVERRIDES: dict[str, tuple[tuple[str, ...], Any]] = {
    "BIND_ADDR": (("spec", "bindAddr"), str),
    "EXTERN_ADDR": (("spec", "externAddr"), str),
    "LOCALNETS": (
        ("spec", "localnets"),
        lambda s: [p.strip() for p in s.split(",") if p.strip()],
    ),
    "RECORD_ROUTE": (("spec", "recordRoute"), _boolean),
    "USE_TO_AS_AOR": (("spec", "useToAsAOR"), _boolean),
    "REGISTRAR_INTF": (("spec", "registrarIntf"), str),
    "DATA_SOURCE_PROVIDER": (("spec", "dataSource", "provider"), str),
    "DATA_SOURCE_PARAMETERS": (("spec", "dataSource", "parameters"), str),
    "REST_SERVICE_BIND_ADDR": (("spec", "restService", "bindAddr"), str),
    "REST_SERVICE_PORT": (("spec", "restService", "port"), str),
    "REST_SERVICE_UNSECURED": (("spec", "restService", "unsecured"), _boolean),
    "USER_AGENT": (("metadata", "userAgent"), str),
    "ROUTR_SECRET": (("spec", "security", "secret"), str),
}


def apply_env(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """Return ``data`` with the env overrides of :data:`ENV_OVERRIDES` applied."""
    for name, (path, convert) in ENV_OVERRIDES.items():
        if name not in env:
            continue
        node = data
        for key in path[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            node = child
        node[path[-1]] = convert(env[name])
    return data


def config_path(cli_path: str | None, env: Mapping[str, str]) -> Path | None:
    """``--config``, else ``CONFIG_FILE``, else ``config/config.yml`` when it exists."""
    if cli_path:
        return Path(cli_path)
    if env.get("CONFIG_FILE"):
        return Path(env["CONFIG_FILE"])
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None


def load_config(path: Path | None, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the configuration; ``path=None`` means the embedded defaults.

    Relative file names in the file are made relative to the file's folder (env values stay
    relative to the current directory). Keys the models do not know are logged once each.
    """
    env = os.environ if env is None else env
    source = str(path) if path is not None else "embedded defaults"
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_file(path, source)
        resolve_paths(data, path.absolute().parent)
    try:
        data = apply_env(data, env)
    except (AttributeError, TypeError):
        raise ConfigError(f"{source}: spec must be a mapping") from None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe(exc)}") from None
    for level, text in key_notices(data, source):
        _log.log(level, "%s", text)
    return config


def _read_file(path: Path, source: str) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{source}:{where} {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with apiVersion/spec at the top")
    return data


# --- file names ------------------------------------------------------------------------

# Keys naming a file. A config file is written next to its certificates and data, not for
# the directory the server happens to be started from.
FILE_KEYS: tuple[tuple[str, ...], ...] = (
    ("spec", "securityContext", "certFile"),
    ("spec", "securityContext", "keyFile"),
    ("spec", "securityContext", "keyStore"),
    ("spec", "securityContext", "caFile"),
    ("spec", "restService", "certFile"),
    ("spec", "restService", "keyFile"),
)


def _mapping_at(data: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = data
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def resolve_paths(data: dict[str, Any], folder: Path) -> None:
    """Make the relative file names of a config file's ``data`` relative to ``folder``:
    the :data:`FILE_KEYS` and the files provider's ``dataSource.parameters`` ``path``."""
    for key_path in FILE_KEYS:
        parent = _mapping_at(data, key_path[:-1])
        value = parent.get(key_path[-1]) if parent is not None else None
        if parent is not None and isinstance(value, str) and value:
            parent[key_path[-1]] = str(folder / value)  # an absolute value stays as it is
    source = _mapping_at(data, ("spec", "dataSource"))
    if source is None or not isinstance(source.get("parameters"), str | dict):
        return
    try:
        parameters = parse_parameters(source["parameters"])
    except ValueError:
        return  # validation reports it, with the key
    if parameters.get("path"):
        parameters["path"] = _data_path(parameters["path"], folder)
        # keep v1's string form when it was written so: the start line shows it
        written = source["parameters"]
        source["parameters"] = (
            ",".join(f"{k}={v}" for k, v in parameters.items())
            if isinstance(written, str)
            else {**written, "path": parameters["path"]}
        )


def _data_path(written: str, folder: Path) -> str:
    """The data folder a config file names. Routr v1 read ``path=config`` from the current
    directory, with the file itself inside ``config/``: when only that reading names an
    existing folder, it is kept (with a warning), so a v1 layout keeps working."""
    beside = folder / written
    if beside.exists() or Path(written).is_absolute() or not Path(written).is_dir():
        return str(beside)
    _log.warning(
        "dataSource path=%s: no such folder beside the config file (%s); using %s in the "
        "current folder as Routr v1 did (write the path relative to the config file's folder)",
        written,
        beside,
        Path(written).absolute(),
    )
    return written


# --- keys the models do not know -------------------------------------------------------

# Routr v1 keys routr does not read: not typos, so no "did you mean".
V1_KEYS: dict[str, str] = {
    "spec.ex_rtpEngine": "routr relays no media",
    "spec.ex_convertTelToE164": "",
    "spec.ex_uniqueGatewayPerHostPort": "Gateways are always unique by host and port",
    "spec.ex_kafka": "",
    "spec.grpcService": "",
    "spec.securityContext.debugging": "",
    "spec.securityContext.trustStore": "use securityContext.caFile (PEM)",
    "spec.securityContext.trustStorePassword": "use securityContext.caFile (PEM)",
    "spec.restService.keyStore": "use restService.certFile and keyFile (PEM)",
    "spec.restService.keyStorePassword": "use restService.certFile and keyFile (PEM)",
    "spec.restService.trustStore": "",
    "spec.restService.trustStorePassword": "",
    "spec.restService.minThreads": "",
    "spec.restService.maxThreads": "",
    "spec.restService.timeoutMillis": "",
}
# Keys of the product's config.yml (SPEC.md §2) that are not built yet.
NOT_BUILT: frozenset[str] = frozenset({"spec.keepAlive"})


def _held_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model a field holds (itself, optional, or as list items), and whether in a list."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = get_origin(annotation)
    if origin is list:
        model, _ = _held_model(get_args(annotation)[0])
        return model, True
    if origin in (Union, UnionType):
        for arg in get_args(annotation):
            model, many = _held_model(arg)
            if model is not None:
                return model, many
    return None, False


def _unknown_keys(
    data: Mapping[Any, Any], model: type[BaseModel], prefix: str
) -> Iterator[tuple[str, str, list[str]]]:
    """Each key of ``data`` (and below) that ``model`` does not know: its path, the path of
    its level, and the names known there (spelled as in files: aliases)."""
    fields: dict[str, FieldInfo] = {}
    for name, field in model.model_fields.items():
        fields[name] = field
        if field.alias:
            fields[field.alias] = field
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        info: FieldInfo | None = fields.get(str(key))
        if info is None:
            yield path, prefix, [f.alias or n for n, f in model.model_fields.items()]
            continue
        nested, many = _held_model(info.annotation)
        if nested is None:
            continue
        if many and isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    yield from _unknown_keys(item, nested, f"{path}[{i}]")
        elif isinstance(value, Mapping):
            yield from _unknown_keys(value, nested, path)


def key_notices(data: Mapping[str, Any], source: str) -> list[tuple[int, str]]:
    """A log level and line for each key the models ignore: a typo is lost silently
    otherwise (``extra="ignore"`` keeps v1 files loading)."""
    notices: list[tuple[int, str]] = []
    for path, level, known in _unknown_keys(data, Config, ""):
        bare = re.sub(r"\[\d+\]", "", path)
        last = path.rsplit(".", 1)[-1]
        if bare in V1_KEYS:
            hint = V1_KEYS[bare]
            text = f"{source}: {path} is a Routr v1 key routr does not use; ignored"
            notices.append((logging.INFO, text + (f": {hint}" if hint else "")))
        elif bare in NOT_BUILT:
            notices.append((logging.WARNING, f"{source}: {path} is not supported yet; ignored"))
        elif last.startswith("ex_"):
            notices.append((logging.INFO, f"{source}: unknown extension key {path}; ignored"))
        else:
            close = difflib.get_close_matches(last, known, n=1)
            at = f"{level}." if level else ""
            hint = f" (did you mean {at}{close[0]}?)" if close else "; ignored"
            notices.append((logging.WARNING, f"{source}: unknown key {path}{hint}"))
    return notices
