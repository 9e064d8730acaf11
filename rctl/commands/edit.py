"""edit: a resource in $EDITOR, sent back when it changed; refused edits are offered again
with the server's reasons on top, as kubectl does."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

import typer

from rctl.app import command_set
from rctl.commands.resources import KIND, REF, fetch, put
from rctl.errors import RctlError
from rctl.kinds import Kind, kind_named
from rctl.manifest import parse, single_text
from rctl.output import emit, to_yaml
from rctl.session import client

commands = command_set()

_HEADER = (
    "# Edit the resource below; it is sent back when you save and quit.\n"
    "# Leave it unchanged (or empty) to cancel. Secrets left out keep their stored value.\n"
)


def _body(text: str) -> str:
    """The text without comment lines: what the user changed, if anything."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def _run_editor(text: str) -> str:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    fd, name = tempfile.mkstemp(prefix="rctl-edit-", suffix=".yaml")
    path = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        try:
            code = subprocess.call([*shlex.split(editor), str(path)])
        except OSError as exc:
            raise RctlError(f"cannot run the editor {editor!r}: {exc.strerror}") from None
        if code != 0:
            raise RctlError(f"the editor {editor!r} exited with {code}; nothing changed")
        return path.read_text("utf-8")
    finally:
        path.unlink(missing_ok=True)


def _send(ctx: typer.Context, kind: Kind, ref: str, text: str) -> None:
    entries = parse(text, "the edited resource")
    if len(entries) != 1 or entries[0].kind != kind:
        raise RctlError(f"keep exactly one {kind.name} in the file")
    put(client(ctx), kind, ref, single_text(entries[0]))


@commands.command()
def edit(
    ctx: typer.Context,
    kind_name: str = KIND,
    ref: str = REF,
) -> None:
    """Edit a resource in $EDITOR; on a refusal the reasons are shown and the edit offered
    again (save it unchanged to give up)."""
    kind = kind_named(kind_name)
    item = fetch(client(ctx), kind, ref)
    ref = str(item["metadata"]["ref"])  # REF may have been a natural key
    original = to_yaml(item)
    text = _HEADER + original
    while True:
        edited = _run_editor(text)
        if not _body(edited).strip() or _body(edited) == _body(original):
            emit("edit cancelled, no changes made")
            return
        try:
            _send(ctx, kind, ref, edited)
        except RctlError as exc:
            if _body(edited) == _body(text) and text != _HEADER + original:
                raise RctlError(f"edit abandoned: {exc.message}") from None
            reasons = "".join(f"# error: {line}\n" for line in exc.message.splitlines())
            text = _HEADER + reasons + _body(edited) + "\n"
            continue
        emit(f"{kind.lower}/{ref} edited")
        return
