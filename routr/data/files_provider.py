"""``files_data_provider``: the six Routr v1 YAML files in a folder, writable, hot-reloaded."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from routr.models import KINDS, PLURALS, FieldProblem, ManifestError, Resource
from routr.models import dump_manifest as _dump
from routr.models.errors import RejectedEntry
from routr.models.manifest import Entries, read_entries

from . import integrity
from .errors import BrokenSource
from .provider import DataProvider, Plan
from .secrets import folder_secret
from .snapshot import Change, Snapshot

log = logging.getLogger(__name__)

_FileStamp = tuple[int, int, int] | None  # (mtime_ns, size, inode); None: no file
_LOCK_NAME = ".routr-data.lock"


def _stamp(path: Path) -> _FileStamp:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def read_kind(path: Path, kind: str) -> Entries:
    """The entries of one file; a missing file is an empty one. Raises ``ManifestError``
    when the file cannot be read as YAML at all."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Entries([], [])
    except OSError as exc:
        raise _unreadable(path, exc.strerror or str(exc)) from None
    except UnicodeDecodeError:
        raise _unreadable(path, "not UTF-8 text") from None
    return read_entries(text, str(path), kind)


def _unreadable(path: Path, why: str) -> ManifestError:
    return ManifestError(str(path), [FieldProblem("", f"cannot read: {why}")])


def _count(n: int, kind: str) -> str:
    return f"{n} {kind.lower() if n == 1 else PLURALS[kind]}"


def _write_refusal(path: Path, rejected: list[RejectedEntry]) -> str:
    """Why a write to a file with rejected entries is refused: rewriting the file from what
    is in force would drop those entries without a word."""
    lines = ", ".join(str(r.line) for r in rejected)
    if len(rejected) == 1:
        return f"{path}: the entry at line {lines} is not loaded and a write would drop it"
    return f"{path}: the entries at lines {lines} are not loaded and a write would drop them"


def write_atomically(path: Path, text: str) -> None:
    """Temp file + fsync + rename, keeping the previous version as ``<name>.bak``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if path.exists():
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
            shutil.copy2(path, path.with_name(path.name + ".bak"))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive ``flock`` shared with other processes writing the same folder."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class FilesProvider(DataProvider):
    """YAML files ``agents.yml`` ... ``users.yml`` under ``path``.

    Hand edits are picked up by polling file stamps every ``poll_interval`` seconds. Each
    file's valid entries are in force; each bad entry is logged with file, line and problem
    and left out. A file that is not YAML at all keeps its last good version in force.
    Writes to a file with problems are refused: rewriting it would drop what was left out.
    """

    name: ClassVar[str] = "files_data_provider"

    def __init__(self, path: str | os.PathLike[str] = "config", poll_interval: float = 1.0):
        super().__init__()
        self.path = Path(path)
        self.poll_interval = poll_interval
        self._stamps: dict[str, _FileStamp | bool] = {k: False for k in KINDS}  # False: unread
        self._good: dict[str, list[Resource]] = {k: [] for k in KINDS}
        # kind -> why its file is not wholly in force (and a write to it is refused)
        self.problems: dict[str, str] = {}
        self._unparsed: set[str] = set()  # kinds whose file was not YAML at the last read
        self._lock = asyncio.Lock()

    def file_of(self, kind: str) -> Path:
        return self.path / f"{PLURALS[kind]}.yml"

    async def start(self) -> None:
        await super().start()
        self._every(self.poll_interval, self.refresh, "reload of changed files")

    def _cache_is_fresh(self) -> bool:
        # without the poller, look at the files on every read
        return bool(self._tasks)

    def _reread_changed(self) -> bool:
        """Reread files whose stamp moved; True when any was read. Runs in a thread."""
        changed = False
        for kind in KINDS:
            stamp = _stamp(self.file_of(kind))
            previous = self._stamps[kind]
            if stamp == previous:
                continue
            self._stamps[kind], changed = stamp, True
            self._reread(kind, first=previous is False, gone=stamp is None)
        return changed

    def _reread(self, kind: str, *, first: bool, gone: bool) -> None:
        """Load one file: its valid entries replace the kind, its bad ones are logged one by
        one; a file that is not YAML at all leaves the last good version in force."""
        path = self.file_of(kind)
        try:
            entries = read_kind(path, kind)
        except ManifestError as exc:
            self.problems[kind] = str(exc)
            self._unparsed.add(kind)
            outcome = "not loaded" if first else "the last good version stays in force"
            log.error("%s; %s", exc, outcome)
            return
        before = len(self._good[kind])
        self._good[kind] = entries.resources
        for rejected in entries.rejected:
            log.error("%s", rejected)
        self.problems.pop(kind, None)
        if entries.rejected:
            self.problems[kind] = _write_refusal(path, entries.rejected)
        if first and gone:
            return  # a missing file at start is an empty kind, nothing to tell
        verb = "loaded"
        if gone:
            verb = "removed"
        elif kind in self._unparsed:
            verb = "loaded again"
        elif not first:
            verb = "reloaded"
        self._unparsed.discard(kind)
        after = len(entries.resources)
        counts = _count(after, kind)
        if not first and after != before:
            counts += f" (was {before})"
        if entries.rejected:
            counts += f"; {len(entries.rejected)} not loaded"
        # losing every resource of a kind is worth a warning: phones go offline
        level = logging.WARNING if before and not after else logging.INFO
        log.log(level, "%s %s: %s", path, verb, counts)

    def _build(self) -> Snapshot:
        snap = Snapshot()
        for kind in KINDS:
            snap = snap.with_kind(kind, self._good[kind])
        return snap

    async def _load(self) -> Snapshot:
        async with self._lock:
            changed = await asyncio.to_thread(self._reread_changed)
        if changed or self._snapshot is None:
            snap = self._build()
            for problem in integrity.audit(snap):
                log.warning("%s: %s", self.path, problem)
            return snap
        return self._snapshot

    async def refresh(self) -> None:
        """Pick up hand edits now (the poller calls this)."""
        await self._reload()

    def _set_snapshot(self, new: Snapshot) -> None:
        # The poller hands back the snapshot in force when no file stamp moved: diffing it
        # with itself compared every resource field by field (10,000 agents: ~4 % of the
        # CPU, every second).
        if new is not self._snapshot:
            super()._set_snapshot(new)

    async def _mutate(self, plan: Plan) -> Change:
        async with self._lock:
            change = await asyncio.to_thread(self._mutate_locked, plan)
            self._set_snapshot(self._build())
        return change

    async def shared_secret(self) -> bytes:
        """Kept beside the resource files, so every process on this folder shares it."""
        return await asyncio.to_thread(folder_secret, self.path)

    def _mutate_locked(self, plan: Plan) -> Change:
        """Read, check, write under the folder lock. Runs in a thread."""
        with _locked(self.path):
            self._reread_changed()  # another process may have written since
            change = plan(self._build())
            kind = change.kind
            if kind in self.problems:
                raise BrokenSource(f"{self.problems[kind]}; fix the file before writing")
            updated = self._build().apply(change).items(kind)
            write_atomically(self.file_of(kind), _dump(updated))
            self._good[kind] = updated
            self._stamps[kind] = _stamp(self.file_of(kind))
        return change
