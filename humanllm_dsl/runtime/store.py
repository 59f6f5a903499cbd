"""Durable JSON-lines files: each finished result is one line, written with one `write` call
to a file opened for appending (so a kill never leaves half a line before a whole one) and
fsynced, so a crash loses at most the work in flight and a re-run resumes from what is on disk."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path


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


class JsonlStore:
    """An append-only file of `{"id": ..., ...}` lines, read back into a dict by id.
    A torn last line (from a kill mid-write: no newline, or not JSON) is ignored, and cut off
    when `repair` is set (only one process may repair: others may be appending to the same
    file). A damaged line anywhere else raises StoreError."""

    def __init__(self, path: Path, durable: bool = False, repair: bool = True):
        self.path = path
        self.durable = durable  # fsync every line, not at most once a second
        self.items: dict[str, dict] = {}
        self._file = None
        self._synced = time.monotonic()
        if path.exists():
            self._load(repair)

    def _load(self, repair: bool) -> None:
        data = self.path.read_bytes()
        lines = data.split(b"\n")  # the piece after the last newline is b"" unless a write was torn
        good = 0
        for number, raw in enumerate(lines, 1):
            if number == len(lines):  # no newline after it: a torn write (or nothing), even if it parses
                break
            try:
                row = json.loads(raw) if raw.strip() else None
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise StoreError(f"{self.path}:{number}: damaged line (not JSON); fix or delete it, then run again") from None
            if row is not None:
                if not isinstance(row, dict) or "id" not in row:
                    raise StoreError(f"{self.path}:{number}: a record without an `id`")
                self.items[row["id"]] = row
            good += len(raw) + 1
        if repair and good != len(data):
            with self.path.open("r+b") as f:
                f.truncate(good)

    def __contains__(self, key: str) -> bool:
        return key in self.items

    def get(self, key: str) -> dict | None:
        return self.items.get(key)

    def append(self, row: dict) -> None:
        """Write one line in one system call, so killing the process cannot lose or tear it; fsync
        it when `durable` (each line cost an LM call), else at most once a second and on close."""
        self._write(row)
        now = time.monotonic()
        if self.durable or now - self._synced > 1.0:
            os.fsync(self._file)
            self._synced = now

    async def commit(self, row: dict) -> None:
        """`append` for async code: a durable store's fsync runs in a worker thread, so other
        calls go on meanwhile; the caller resumes once the line is on disk."""
        import asyncio

        if not self.durable:
            return self.append(row)
        self._write(row)
        await asyncio.to_thread(os.fsync, self._file)

    def _write(self, row: dict) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        data = (dumps(row) + "\n").encode("utf-8")
        written = os.write(self._file, data)
        if written != len(data):  # a short write (disk full): finish it, or fail loudly
            os.write(self._file, data[written:])
        self.items[row["id"]] = row

    def close(self) -> None:
        if self._file is not None:
            os.fsync(self._file)
            os.close(self._file)
            self._file = None

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


def write_jsonl(path: Path, rows) -> int:
    """Write a whole file atomically (temp file + rename). Returns the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(dumps(row) + "\n")
            n += 1
    os.replace(tmp, path)
    return n


def write_json(path: Path, value, indent: int | None = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, ensure_ascii=False, indent=indent, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
