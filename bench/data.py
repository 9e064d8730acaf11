"""The resources a benchmark's server starts with, written as the files provider reads them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def write(folder: Path, agents: dict[str, Iterable[tuple[str, str]]]) -> Path:
    """A data folder with one Domain per key of ``agents`` and its (user, password) Agents."""
    folder.mkdir(parents=True, exist_ok=True)
    domains, lines = [], []
    for n, (uri, users) in enumerate(agents.items()):
        domains.append(
            f"- apiVersion: v1beta1\n  kind: Domain\n  metadata: {{name: Bench {n}}}\n"
            f"  spec: {{context: {{domainUri: {uri}}}}}\n"
        )
        lines.extend(
            f"- apiVersion: v1beta1\n  kind: Agent\n  metadata: {{name: Agent {user}}}\n"
            f"  spec: {{credentials: {{username: '{user}', secret: '{secret}'}}, "
            f"domains: [{uri}]}}\n"
            for user, secret in users
        )
    (folder / "domains.yml").write_text("".join(domains))
    (folder / "agents.yml").write_text("".join(lines))
    return folder
