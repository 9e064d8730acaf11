"""open_provider: config.yml's dataSource to a provider."""

from __future__ import annotations

from pathlib import Path

import pytest

from routr.data import FilesProvider, open_provider, parse_parameters
from routr.data.http_provider import HttpProvider
from routr.data.redis_provider import RedisProvider


def test_parse_parameters() -> None:
    assert parse_parameters("host=localhost, port=6379,secret=a=b") == {
        "host": "localhost",
        "port": "6379",
        "secret": "a=b",
    }
    assert parse_parameters({"port": 6379, "tls": True}) == {"port": "6379", "tls": "True"}
    assert parse_parameters(None) == {} and parse_parameters("") == {}
    with pytest.raises(ValueError, match="not key=value"):
        parse_parameters("hostonly")


async def test_open_each_provider(tmp_path: Path) -> None:
    files = open_provider("files_data_provider", f"path={tmp_path}")
    assert isinstance(files, FilesProvider) and files.path == tmp_path
    redis = open_provider("redis_data_provider", "host=127.0.0.1,port=6379,db=9,tls=false")
    assert isinstance(redis, RedisProvider) and redis.where == "redis://127.0.0.1:6379/9"
    await redis.close()
    http = open_provider(
        "http_data_provider", {"baseUrl": "http://127.0.0.1:1/v1", "username": "u", "secret": "s"}
    )
    assert isinstance(http, HttpProvider) and http.base_url == "http://127.0.0.1:1/v1"
    await http.close()
    assert isinstance(open_provider("files"), FilesProvider)


@pytest.mark.parametrize(
    ("name", "parameters", "message"),
    [
        ("mongo_data_provider", None, "unknown provider"),
        ("redis_data_provider", "hots=x", "has no 'hots'"),
        ("redis_data_provider", "port=abc", "dataSource.parameters.port"),
        ("redis_data_provider", "tls=maybe", "not true or false"),
        ("http_data_provider", "username=u", "needs baseUrl"),
    ],
)
def test_bad_data_source(name: str, parameters: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_provider(name, parameters)
