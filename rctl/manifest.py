"""Manifests as written: one resource, a list, or ``---`` documents, YAML or JSON.

rctl does not validate resources itself: the server does, with the same models and the same
messages. It reads the YAML only as a tree of nodes, to learn each entry's kind, ref and
natural key, and sends each entry on as YAML text re-emitted from its own nodes.

Scalars are sent as written: ``secret: 0123`` is the string ``0123``, as the server's
manifest loader reads it, not the octal 83 of YAML 1.1. The nodes of number-looking scalars
are retagged as strings once, at parse time, so the re-emitted text quotes them; this also
keeps them whole where the server reads a body with plain ``yaml.safe_load`` (a PUT, today).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rctl.errors import RctlError
from rctl.kinds import Kind, kind_named

if TYPE_CHECKING:  # imported where used: `rctl --help` need not pay for PyYAML
    import yaml


@dataclass(frozen=True)
class Entry:
    """One resource of a manifest: its node, where it starts, and the kind it says it is."""

    node: yaml.Node
    line: int
    kind: Kind

    @property
    def ref(self) -> str | None:
        value = scalar(self.node, "metadata", "ref")
        return value or None

    def line_of(self, path: str) -> int:
        """The line of the deepest node of ``spec.domains[0]``-like ``path`` that exists."""
        import yaml

        node = self.node
        for part in re.findall(r"[^.\[\]]+", path):
            child: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode):
                child = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            elif isinstance(node, yaml.SequenceNode) and part.isdigit():
                child = node.value[int(part)] if int(part) < len(node.value) else None
            if child is None:
                break
            node = child
        return node.start_mark.line + 1

    def plain(self) -> dict[str, Any]:
        """The entry as plain data, for natural keys. What YAML cannot build (a ``!!python``
        tag) is left for the server to refuse."""
        import yaml

        try:
            data = yaml.SafeLoader("").construct_document(self.node)
        except yaml.YAMLError:
            return {}
        return data if isinstance(data, dict) else {}


def scalar(node: yaml.Node, *path: str) -> str:
    """The text of the scalar at ``path`` as written, or ``""``."""
    import yaml

    for key in path:
        if not isinstance(node, yaml.MappingNode):
            return ""
        found = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
        if found is None:
            return ""
        node = found
    return str(node.value) if isinstance(node, yaml.ScalarNode) else ""


def read_text(source: str) -> tuple[str, str]:
    """The text of ``-f`` (a path, or ``-`` for stdin) and the name to cite it by."""
    if source == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        return Path(source).read_text("utf-8"), source
    except FileNotFoundError:
        raise RctlError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise RctlError(f"{source}: is a folder; give a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RctlError(f"{source}: cannot read it: {exc}") from None


def parse(text: str, source: str) -> list[Entry]:
    """Every entry of a manifest, in order. Raises ``RctlError`` naming the line of a YAML
    error, of an entry that is not a mapping, or of a missing or unknown ``kind``."""
    import yaml

    try:
        documents = [d for d in yaml.compose_all(text, Loader=yaml.SafeLoader) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not YAML"
        raise RctlError(f"{source}{where}: not valid YAML: {problem}") from None
    entries: list[Entry] = []
    for document in documents:
        _as_written(document)
        nodes = document.value if isinstance(document, yaml.SequenceNode) else [document]
        for node in nodes:
            line = node.start_mark.line + 1
            if not isinstance(node, yaml.MappingNode):
                raise RctlError(f"{source}:{line}: expected a resource (a mapping)")
            kind = scalar(node, "kind")
            if not kind:
                raise RctlError(f"{source}:{line}: the resource has no kind")
            try:
                entries.append(Entry(node, line, kind_named(kind)))
            except RctlError as exc:
                raise RctlError(f"{source}:{line}: {exc.message}") from None
    if not entries:
        raise RctlError(f"{source}: no resources in it")
    return entries


_STR = "tag:yaml.org,2002:str"
_NUMBERS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_BOOLS = frozenset(("true", "True", "TRUE", "false", "False", "FALSE"))


def _as_written(node: yaml.Node) -> None:
    """Retag the plain scalars the server keeps as text (numbers; booleans other than
    true/false such as ``yes``) as strings, in place."""
    import yaml

    if isinstance(node, yaml.ScalarNode):
        if node.style is None and (
            node.tag in _NUMBERS
            or (node.tag == "tag:yaml.org,2002:bool" and node.value not in _BOOLS)
        ):
            node.tag = _STR
    elif isinstance(node, yaml.SequenceNode):
        for child in node.value:
            _as_written(child)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            _as_written(key)
            _as_written(value)


def load(source: str) -> list[Entry]:
    return parse(*read_text(source))


def to_text(entries: list[Entry]) -> str:
    """A YAML list of ``entries``, from their own nodes."""
    import yaml

    node = yaml.SequenceNode("tag:yaml.org,2002:seq", [e.node for e in entries])
    return yaml.serialize(node, Dumper=yaml.SafeDumper, allow_unicode=True)


def single_text(entry: Entry) -> str:
    """One entry as a YAML mapping (a PUT takes one resource, not a list)."""
    import yaml

    return yaml.serialize(entry.node, Dumper=yaml.SafeDumper, allow_unicode=True)
