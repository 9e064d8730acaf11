"""Printing: kubectl's borderless tables, JSON, YAML, names; and live (watched) tables.

Plain tables are written by hand rather than with rich: a script piping ``rctl get`` wants
every column whole whatever the terminal width, and rich's import is not free.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import Any, TextIO

from rctl.errors import RctlError
from rctl.views import Item, View

GAP = "   "


class Format(StrEnum):
    table = "table"
    wide = "wide"
    json = "json"
    yaml = "yaml"
    name = "name"


def colour(stream: TextIO | None = None) -> bool:
    """Colour only for a person: not with ``NO_COLOR`` (https://no-color.org), not in a pipe."""
    stream = stream or sys.stdout
    return not os.environ.get("NO_COLOR") and stream.isatty()


def table_lines(headers: list[str], rows: Iterable[list[str]], bold: bool = False) -> list[str]:
    rows = list(rows)
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: list[str]) -> str:
        return GAP.join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    head = line(headers)
    return [f"\x1b[1m{head}\x1b[0m" if bold else head, *(line(r) for r in rows)]


def to_yaml(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False)


def render(view: View, items: list[Item], fmt: Format, *, single: bool = False) -> str:
    """``items`` in ``fmt``; ``single``: one item asked for by ref, printed bare (not a list)
    in JSON and YAML, so it goes back into ``apply -f`` as the one resource it is."""
    if fmt is Format.json:
        return to_json(items[0] if single else items)
    if fmt is Format.yaml:
        return to_yaml(items[0] if single else items).rstrip("\n")
    if fmt is Format.name:
        return "\n".join(view.name(i) for i in items)
    if not items:
        return ""
    wide = fmt is Format.wide
    rows = [view.row(i, wide) for i in items]
    return "\n".join(table_lines(view.headers(wide), rows, bold=colour()))


def emit(text: str) -> None:
    if text:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def nothing_found(what: str) -> None:
    """kubectl's "No resources found", on stderr so a pipe gets an empty list."""
    sys.stderr.write(f"No {what} found.\n")


# -- watching ---------------------------------------------------------------------------------


def watch(view: View, events: Iterator[dict[str, Any]], fmt: Format) -> None:
    """Follow a watch stream: a table redrawn in place on a terminal, else one line per
    event (the event's type first), until the stream ends or Ctrl-C."""
    if fmt in (Format.table, Format.wide) and sys.stdout.isatty():
        _live(view, events, fmt is Format.wide)
        return
    header_done = False
    wide = fmt is Format.wide
    for event in events:
        kind, obj = str(event.get("type")), event.get("object") or {}
        if kind == "ERROR":
            sys.stderr.write(f"watch: {obj.get('reason', obj)}\n")
            continue
        if fmt is Format.json:
            emit(json.dumps(event, ensure_ascii=False))
        elif fmt is Format.yaml:
            emit("---\n" + to_yaml(event).rstrip("\n"))
        elif fmt is Format.name:
            emit(f"{kind} {view.name(obj)}")
        else:
            if not header_done:
                emit(GAP.join(["EVENT", *view.headers(wide)]))
                header_done = True
            emit(GAP.join([kind.ljust(8), *view.row(obj, wide)]))


def _live(view: View, events: Iterator[dict[str, Any]], wide: bool) -> None:
    import threading

    from rich.console import Console
    from rich.live import Live
    from rich.table import Table
    from rich.text import Text

    rows: dict[str, Item] = {}
    lock = threading.Lock()
    problem: list[str] = []

    def table() -> Table:
        out = Table(box=None, pad_edge=False, padding=(0, 3, 0, 0), header_style="bold")
        for header in view.headers(wide):
            out.add_column(header, no_wrap=True)
        with lock:
            items = list(rows.values())
        for item in items:
            out.add_row(*(Text(c) for c in view.row(item, wide)))
        return out

    def follow() -> None:
        try:
            for event in events:
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    problem.append(f"watch: {obj.get('reason', obj)}")
                    return
                with lock:
                    if event.get("type") == "DELETED":
                        rows.pop(view.key(obj), None)
                    elif event.get("type") in ("ADDED", "MODIFIED"):
                        rows[view.key(obj)] = obj
        except Exception as exc:  # shown after the table closes: one line, no traceback
            problem.append(getattr(exc, "message", str(exc)))

    console = Console(no_color=not colour(), highlight=False)
    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    # The table is redrawn every second even without events: expiries count down.
    with Live(table(), console=console, refresh_per_second=4, auto_refresh=False) as live:
        while reader.is_alive():
            reader.join(1.0)
            live.update(table(), refresh=True)
    if problem:
        raise RctlError(problem[0])
