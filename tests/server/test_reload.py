"""Resource files at start and on hot reload, through the real server: bad entries are left
out one by one (the valid ones stay in service), and every reload says what it loaded."""

from __future__ import annotations

import os
import time
from pathlib import Path

from e2e.registrar_kit import Registration, hostport
from support.data import agent, domain, write_resources
from support.server import RoutrProcess
from support.sip import UdpClient

AGENT_1001 = """\
- apiVersion: v1beta1
  kind: Agent
  metadata: {name: John Doe}
  spec:
    credentials: {username: '1001', secret: '1234'}
    domains: [sip.local]
"""
NO_USERNAME = """\
- apiVersion: v1beta1
  kind: Agent
  metadata: {name: John}
  spec:
    credentials: {secret: '1003'}
    domains: [sip.local]
"""
SAME_USERNAME = """\
- apiVersion: v1beta1
  kind: Agent
  metadata: {name: Jane Doe}
  spec:
    credentials: {username: '1001', secret: other}
    domains: [sip.local]
"""
AGENT_1004 = AGENT_1001.replace("1001", "1004").replace("John Doe", "Agent 1004")


def replace(path: Path, text: str) -> None:
    """A hand edit as editors save: a new file renamed over the old one."""
    tmp = path.with_name(f".{path.name}.edit")
    tmp.write_text(text)
    os.replace(tmp, path)


def registers(proc: RoutrProcess, user: str, password: str) -> int:
    """The final status of a REGISTER of ``user`` answering the digest challenge."""
    with UdpClient((proc.host, proc.ports["udp"])) as client:
        contact = f"<sip:{user}@{hostport(*client.local)}>"
        return Registration(client, user, password).send([contact]).status


def answers(proc: RoutrProcess, user: str, password: str, status: int, timeout: float = 5) -> None:
    """A REGISTER of ``user`` ends in ``status`` within ``timeout``: a reload is logged when
    the file is read, the index that REGISTERs see follows a moment later."""
    deadline = time.monotonic() + timeout
    while (got := registers(proc, user, password)) != status:
        assert time.monotonic() < deadline, f"REGISTER {user}: {got}, not {status}"
        time.sleep(0.05)  # the poll interval of this loop


def start(tmp_path: Path, data: Path) -> RoutrProcess:
    # the poller every 0.1 s: hand edits are seen at once
    source = {"provider": "files_data_provider", "parameters": {"path": str(data),
              "pollInterval": "0.1"}}  # fmt: skip
    return RoutrProcess(tmp_path, ("udp",), {"dataSource": source}).start()


def test_bad_entries_at_start_leave_the_valid_agent_in_service(tmp_path):
    data = write_resources(tmp_path / "data", domain("sip.local"))
    agents = data / "agents.yml"
    agents.write_text(AGENT_1001 + NO_USERNAME + SAME_USERNAME)
    proc = start(tmp_path, data)
    try:
        proc.wait_for(f"{agents}:11: Agent 'John': spec.credentials.username: required; not loaded")
        proc.wait_for(
            f"{agents}:13: Agent 'Jane Doe': username 1001@sip.local is already defined at "
            "line 1; not loaded"
        )
        proc.wait_for(f"{agents} loaded: 1 agent; 2 not loaded")
        assert registers(proc, "1001", "1234") == 200
        assert registers(proc, "1001", "other") == 401  # the duplicate is not in force
    finally:
        assert proc.stop() == 0
    proc.assert_no_tracebacks()


def test_reloads_are_logged_with_what_they_loaded(tmp_path):
    data = write_resources(
        tmp_path / "data",
        domain("sip.local"),
        *(agent(user, "1234", ["sip.local"]) for user in ("1001", "1002", "1003")),
    )
    agents = data / "agents.yml"
    proc = start(tmp_path, data)
    try:
        proc.wait_for(f"{agents} loaded: 3 agents")
        replace(agents, AGENT_1001 + AGENT_1004)
        proc.wait_for(f"{agents} reloaded: 2 agents (was 3)")
        answers(proc, "1004", "1234", 200)

        replace(agents, AGENT_1001 + NO_USERNAME)
        proc.wait_for(f"{agents}:11: Agent 'John': spec.credentials.username: required")
        proc.wait_for(f"{agents} reloaded: 1 agent (was 2); 1 not loaded")

        replace(agents, "- kind: Agent\n  metadata: {name: x\n")
        proc.wait_for("the last good version stays in force")
        assert registers(proc, "1001", "1234") == 200

        replace(agents, AGENT_1001 + AGENT_1004)
        proc.wait_for(f"{agents} loaded again: 2 agents (was 1)")

        agents.unlink()
        proc.wait_for(f"{agents} removed: 0 agents (was 2)")
        answers(proc, "1001", "1234", 401)
    finally:
        assert proc.stop() == 0
    proc.assert_no_tracebacks()
