"""``open_provider``: the ``dataSource`` of config.yml to a provider instance."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from routr.models.config import parse_parameters

from .provider import DataProvider

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _bool(value: str) -> bool:
    if value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise ValueError(f"not true or false: {value!r}")


# provider -> v1 parameter name -> (keyword argument, converter)
_PARAMETERS: dict[str, dict[str, tuple[str, Callable[[str], Any]]]] = {
    "files_data_provider": {"path": ("path", str), "pollInterval": ("poll_interval", float)},
    "redis_data_provider": {
        "host": ("host", str),
        "port": ("port", int),
        "secret": ("secret", str),
        "username": ("username", str),
        "db": ("db", int),
        "tls": ("tls", _bool),
    },
    "http_data_provider": {
        "baseUrl": ("base_url", str),
        "username": ("username", str),
        "secret": ("secret", str),
        "ttl": ("ttl", float),
        "timeout": ("timeout", float),
    },
}
_ALIASES = {
    "files": "files_data_provider",
    "redis": "redis_data_provider",
    "http": "http_data_provider",
    "restful_data_provider": "http_data_provider",
}


def open_provider(
    provider_name: str, parameters: str | Mapping[str, Any] | None = None
) -> DataProvider:
    """A provider, not started yet: ``await provider.start()`` loads it and fails loudly."""
    name = _ALIASES.get(provider_name, provider_name)
    if name not in _PARAMETERS:
        known = ", ".join(_PARAMETERS)
        raise ValueError(f"dataSource.provider: unknown provider {provider_name!r} ({known})")
    kwargs: dict[str, Any] = {}
    for key, value in parse_parameters(parameters).items():
        if key not in _PARAMETERS[name]:
            known = ", ".join(_PARAMETERS[name])
            raise ValueError(f"dataSource.parameters: {name} has no {key!r} (known: {known})")
        argument, convert = _PARAMETERS[name][key]
        try:
            kwargs[argument] = convert(value)
        except ValueError as exc:
            raise ValueError(f"dataSource.parameters.{key}: {exc}") from None
    if name == "files_data_provider":
        from .files_provider import FilesProvider

        return FilesProvider(**kwargs)
    if name == "redis_data_provider":
        from .redis_provider import RedisProvider

        return RedisProvider(**kwargs)
    if "base_url" not in kwargs:
        raise ValueError("dataSource.parameters: http_data_provider needs baseUrl")
    from .http_provider import HttpProvider

    return HttpProvider(**kwargs)
