"""Durable JSON-lines files: each finished result is one line, written with one `write` call
to a file opened for appending (so a kill never leaves half a line before a whole one) and
fsynced, so a crash loses at most the work in flight and a re-run resumes from what is on disk."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..redact import redact_value

FAILURES = "failures.jsonl"  # rows explaining what failed: their text is redacted before it is written
TMP_SUFFIX = ".tmp"


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


class JsonFileError(ValueError):
    """A JSON or JSON-lines file that cannot be read as one; the message names the file (and line)."""


def read_json_object(path: Path) -> dict:
    """The JSON object a whole file holds (a missing file is the caller's to report)."""
    try:
        value = json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise JsonFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise JsonFileError(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value


class StoreError(JsonFileError):
    """A damaged line before the end of a store file: not a torn write, so nothing is dropped
    silently; the message names the file and line."""


class _Rows(Mapping):
    """A store's rows by id, read from its file on access (only byte offsets stay in memory)."""

    def __init__(self, store: "JsonlStore"):
        self._store = store

    def __getitem__(self, key: str) -> dict:
        return self._store._read(self._store._index[key])

    def __contains__(self, key) -> bool:
        return key in self._store._index

    def __iter__(self):
        return iter(self._store._index)

    def __len__(self) -> int:
        return len(self._store._index)


class JsonlStore:
    """An append-only file of `{"id": ..., ...}` lines, read back by id (`items`, `get`).
    Only each row's byte offset is kept in memory; a row is read from the file when asked for, so
    memory stays flat however large the file grows, and a row reads back exactly as it was written.
    A torn last line (from a kill mid-write: no newline, or not JSON) is ignored, and cut off
    when `repair` is set (only one process may repair: others may be appending to the same
    file). A damaged line anywhere else raises StoreError. A write that fails (a full disk) is
    undone by the repairing process, so the file ends with whole lines only.
    Rows of a failures file (`FAILURES`) have their secrets redacted (an error text may quote a key)."""

    def __init__(self, path: Path, durable: bool = False, repair: bool = True):
        self.path = path
        self.durable = durable  # fsync every line, not at most once a second
        self.repair = repair
        self.redact = path.name == FAILURES
        self._index: dict[str, tuple[int, int]] = {}  # id -> (offset, length) of its last line
        self.items: Mapping[str, dict] = _Rows(self)
        self._file = None
        self._reader = None
        self._synced = time.monotonic()
        self._written = self._durable = 0  # lines committed by this process / known on disk
        self._flush: asyncio.Future | None = None  # the fsync in progress
        if path.exists():
            self._load(repair)

    def _load(self, repair: bool) -> None:
        good = 0
        with self.path.open("rb") as f:
            for number, raw in enumerate(f, 1):
                if not raw.endswith(b"\n"):  # no newline after it: a torn write, even if it parses
                    break
                if raw.strip():
                    try:
                        row = json.loads(raw)
                    except (json.JSONDecodeError, UnicodeDecodeError):
                        raise StoreError(f"{self.path}:{number}: damaged line (not JSON); fix or delete it, "
                                         "then run again") from None
                    if not isinstance(row, dict) or "id" not in row:
                        raise StoreError(f"{self.path}:{number}: a record without an `id`")
                    self._index[row["id"]] = (good, len(raw))
                good += len(raw)
            size = f.seek(0, os.SEEK_END)
        if repair and good != size:
            with self.path.open("r+b") as f:
                f.truncate(good)

    def _read(self, where: tuple[int, int]) -> dict:
        if self._reader is None:
            self._reader = os.open(self.path, os.O_RDONLY)
        offset, length = where
        return json.loads(os.pread(self._reader, length, offset))

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def get(self, key: str) -> dict | None:
        where = self._index.get(key)
        return None if where is None else self._read(where)

    def append(self, row: dict) -> None:
        """Write one line in one system call, so killing the process cannot lose or tear it; fsync
        it when `durable` (each line cost an LM call), else at most once a second and on close."""
        self._write(row)
        now = time.monotonic()
        if self.durable or now - self._synced > 1.0:
            os.fsync(self._file)
            self._synced = now

    async def commit(self, row: dict) -> None:
        """`append` for async code; the caller resumes once the line is on disk. Commits group:
        one fsync (in a worker thread, so other calls go on) covers every line written before
        it started, so many slots finishing together cost one fsync, not one each."""
        if not self.durable:
            return self.append(row)
        self._write(row)
        self._written += 1
        mine = self._written
        while self._durable < mine:
            if self._flush is None:
                self._flush = asyncio.ensure_future(self._fsync())
            await asyncio.shield(self._flush)

    async def _fsync(self) -> None:
        through = self._written  # every line written before the fsync starts
        try:
            await asyncio.get_running_loop().run_in_executor(_fsync_pool(), os.fsync, self._file)
            self._durable = max(self._durable, through)
        finally:
            self._flush = None

    def _write(self, row: dict) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if self.redact:
            row = redact_value(row)
        data = (dumps(row) + "\n").encode("utf-8")
        end = os.lseek(self._file, 0, os.SEEK_END) if self.repair else None
        try:
            _write_all(self._file, data)
        except OSError:
            if end is not None:  # the only writer: cut the partial line, so the file stays whole lines
                os.ftruncate(self._file, end)
            raise
        # O_APPEND leaves the offset at the end of this write, even with other processes appending
        self._index[row["id"]] = (os.lseek(self._file, 0, os.SEEK_CUR) - len(data), len(data))

    def close(self) -> None:
        if self._file is not None:
            os.fsync(self._file)
            os.close(self._file)
            self._file = None
        if self._reader is not None:
            os.close(self._reader)
            self._reader = None

    def __del__(self):
        try:
            self.close()
        except OSError:
            pass


def json_lines(lines, path) -> Iterator[tuple[int, object]]:
    """(line number, value) for each non-blank line of a JSON-lines file read by the caller."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise JsonFileError(f"{path}:{number}: not valid JSON ({exc.msg})") from None


@functools.cache
def _fsync_pool() -> ThreadPoolExecutor:
    """Threads for fsync alone: a slow disk must not hold up the event loop's default executor,
    which DSPy uses on every LM call."""
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="fsync")


CHUNK = 1 << 20  # bytes gathered before each write of a whole file


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


@contextlib.contextmanager
def _atomic(path: Path) -> Iterator[int]:
    """A temporary file with a unique name beside `path`, renamed over it when the block ends;
    on any error (a full disk) it is removed and `path` is left as it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        yield fd
        os.fchmod(fd, 0o644)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)


class JsonlWriter:
    """Rows streamed into a temporary file beside `path` (in chunks, so memory stays flat), which
    `commit` renames over `path` and `abort` removes. Use `writing` to open several at once."""

    def __init__(self, path: Path):
        self.path = path
        self._atomic = _atomic(path)
        self._fd = self._atomic.__enter__()
        self._chunk: list[bytes] = []
        self._size = 0
        self.count = 0

    def write(self, row) -> None:
        self.write_bytes((dumps(row) + "\n").encode("utf-8"))
        self.count += 1

    def write_bytes(self, data: bytes) -> None:
        self._chunk.append(data)
        self._size += len(data)
        if self._size >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        _write_all(self._fd, b"".join(self._chunk))
        self._chunk, self._size = [], 0

    def commit(self) -> None:
        try:
            self._flush()
        except BaseException as exc:
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._atomic.__exit__(None, None, None)

    def abort(self, exc: BaseException) -> None:
        self._atomic.__exit__(type(exc), exc, exc.__traceback__)


class JsonArrayWriter(JsonlWriter):
    """Rows streamed as one JSON array, byte for byte what `write_json` writes for the list."""

    def write(self, row) -> None:
        text = json.dumps(row, ensure_ascii=False, indent=2, sort_keys=True).replace("\n", "\n  ")
        self.write_bytes((("[\n  " if self.count == 0 else ",\n  ") + text).encode("utf-8"))
        self.count += 1

    def commit(self) -> None:
        self.write_bytes(b"\n]\n" if self.count else b"[]\n")
        super().commit()


@contextlib.contextmanager
def writing(*paths: Path) -> Iterator[tuple[JsonlWriter, ...]]:
    """Streaming writers for `paths` (a `.json` path gets a JSON array, any other JSON lines), all
    committed when the block ends and all removed on an error."""
    writers: list[JsonlWriter] = []
    try:
        for path in paths:
            writers.append((JsonArrayWriter if path.suffix == ".json" else JsonlWriter)(path))
        yield tuple(writers)
    except BaseException as exc:
        for writer in writers:
            with contextlib.suppress(OSError):
                writer.abort(exc)
        raise
    for writer in writers:
        writer.commit()


def write_jsonl(path: Path, rows) -> int:
    """Write a whole file atomically (temp file + rename), streaming `rows`. Returns the row count."""
    with writing(path) as (writer,):
        for row in rows:
            writer.write(row)
    return writer.count


def write_json(path: Path, value, indent: int | None = 2) -> None:
    write_text(path, json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=True) + "\n")


def write_text(path: Path, text: str) -> None:
    with _atomic(path) as fd:
        _write_all(fd, text.encode("utf-8"))
