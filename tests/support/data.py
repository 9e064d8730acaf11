"""Resource folders for the files data provider, written the way users write them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def domain(
    uri: str,
    *,
    egress: list[tuple[str, str]] | None = None,
    acl: dict[str, list[str]] | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {"domainUri": uri}
    if egress:
        context["egressPolicies"] = [{"rule": r, "numberRef": n} for r, n in egress]
    if acl:
        context["accessControlList"] = acl
    return {
        "apiVersion": "v1beta1",
        "kind": "Domain",
        "metadata": {"name": name or f"Domain {uri}"},
        "spec": {"context": context},
    }


def agent(username: str, secret: str, domains: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1beta1",
        "kind": "Agent",
        "metadata": {"name": f"Agent {username}"},
        "spec": {
            "credentials": {"username": username, "secret": secret},
            "domains": domains,
            **spec,
        },
    }


def peer(username: str, secret: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1beta1",
        "kind": "Peer",
        "metadata": {"name": f"Peer {username}"},
        "spec": {"credentials": {"username": username, "secret": secret}, **spec},
    }


def gateway(ref: str, host: str, port: int | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"host": host, "sendRegister": False, **spec}
    if port is not None:
        body["port"] = port
    return {
        "apiVersion": "v1beta1",
        "kind": "Gateway",
        "metadata": {"name": f"Gateway {ref}", "ref": ref},
        "spec": body,
    }


def number(ref: str, tel: str, gw_ref: str, aor: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1beta1",
        "kind": "Number",
        "metadata": {"ref": ref, "gwRef": gw_ref},
        "spec": {"location": {"telUrl": tel, "aorLink": aor}},
    }


_FILES = {
    "Domain": "domains.yml",
    "Agent": "agents.yml",
    "Peer": "peers.yml",
    "Gateway": "gateways.yml",
    "Number": "numbers.yml",
    "User": "users.yml",
}


def write_resources(folder: Path, *resources: dict[str, Any]) -> Path:
    """Write resources into the six YAML files of ``folder`` (created); return it."""
    folder.mkdir(parents=True, exist_ok=True)
    by_file: dict[str, list[dict[str, Any]]] = {}
    for resource in resources:
        by_file.setdefault(_FILES[resource["kind"]], []).append(resource)
    for name, items in by_file.items():
        (folder / name).write_text(yaml.safe_dump(items, sort_keys=False))
    return folder
