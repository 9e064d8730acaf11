"""The JsonPath predicate subset of list filters."""

from __future__ import annotations

from typing import Any

import pytest

from routr.data import InvalidFilter, compile_filter

DOC: dict[str, Any] = {
    "kind": "Agent",
    "metadata": {"name": "John Doe", "ref": "ag-1"},
    "spec": {
        "credentials": {"username": "1001"},
        "domains": ["sip.local", "sip.other"],
        "ex_maxContact": 3,
        "privacy": "None",
    },
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, True),
        ("*", True),
        ("@.spec.credentials.username == '1001'", True),
        ("@.spec.credentials.username==1001", True),
        ('@.spec.credentials.username == "1002"', False),
        ("@.metadata.name != 'Jane'", True),
        ("@.metadata.name =~ /john.*/i", True),
        ("@.metadata.name =~ /John/", False),  # the whole value must match
        ("@.metadata.name =~ 'John.*'", True),
        ("@.spec.domains[1] == 'sip.other'", True),
        ("@.spec.ex_maxContact > 2 && @.spec.ex_maxContact <= 3", True),
        ("@.spec.privacy in ['Private', 'None']", True),
        ("@.spec.privacy nin ['Private', 'None']", False),
        ("(@.kind == 'Peer' || @.kind == 'Agent') && @.metadata.ref == 'ag-1'", True),
        ("@.kind == 'Peer' || @.kind == 'Agent' && @.metadata.ref == 'x'", False),
        ("@.spec.missing == 'x'", False),
        ("@.spec.missing != 'x'", False),
        ("@.spec.credentials", True),
        ("*.[?(@.metadata.name == 'John Doe')]", True),
        ("[?(@.metadata.name == 'Jane Doe')]", False),
    ],
)
def test_filters(text: str | None, expected: bool) -> None:
    assert compile_filter(text)(DOC) is expected


@pytest.mark.parametrize("text", ["@.a ==", "@.a == 'x' &&", "@.a =~ 5", "@.a =~ /(/", "#", "(@.a"])
def test_bad_filters(text: str) -> None:
    with pytest.raises(InvalidFilter):
        compile_filter(text)
