"""The server configuration: Routr v1's ``config.yml`` (extended), env overrides, defaults.

Read once at start into typed models. Env variables beat the file; the file beats the
embedded defaults. Any problem becomes a :class:`ConfigError` whose text is one line
naming the file, the key and the problem.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from routr.models.errors import describe
from routr.models.resources import AccessControlList

Protocol = Literal["udp", "tcp", "tls", "ws", "wss"]
DigestAlgorithm = Literal["MD5", "SHA-256"]
_ALGORITHM_NAMES = {"MD5": "MD5", "SHA-256": "SHA-256", "SHA256": "SHA-256"}
SECURE_PROTOCOLS = frozenset({"tls", "wss"})
DEFAULT_CONFIG_PATH = Path("config/config.yml")


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


class RestService(_Model):
    bind_addr: str = Field(default="127.0.0.1", alias="bindAddr")
    port: int = Field(default=4567, ge=0, le=65535)
    unsecured: bool = False
    cert_file: str | None = Field(default=None, alias="certFile")
    key_file: str | None = Field(default=None, alias="keyFile")

    @property
    def plain_http(self) -> bool:
        """HTTP is allowed when asked for or when only loopback can reach the API."""
        if self.unsecured:
            return True
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
            raise ValueError(f"parameters: {part.strip()!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


class DataSource(_Model):
    provider: str = "files_data_provider"
    parameters: str | dict[str, Any] = "path=config"

    @property
    def params(self) -> dict[str, str]:
        """``parameters`` as a mapping, whichever form it was written in."""
        return parse_parameters(self.parameters)


class Location(_Model):
    provider: Literal["memory", "redis"] | None = None
    parameters: str | dict[str, Any] | None = None


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


class AuthFailureBan(_Model):
    failures: int = Field(default=10, ge=1)
    seconds: float = Field(default=600, gt=0)
    ban_seconds: float = Field(default=900, ge=0, alias="banSeconds")


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


class Nats(_Model):
    url: str = "nats://127.0.0.1:4222"
    subject: str = "routr"


class Events(_Model):
    nats: Nats | None = None


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
    """Read and validate the configuration; ``path=None`` means the embedded defaults."""
    env = os.environ if env is None else env
    source = str(path) if path is not None else "embedded defaults"
    data: Any = {}
    if path is not None:
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
    try:
        data = apply_env(data, env)
    except (AttributeError, TypeError):
        raise ConfigError(f"{source}: spec must be a mapping") from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe(exc)}") from None
