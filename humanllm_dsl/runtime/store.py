"""Durable JSON-lines files: each finished result is one line, appended, flushed and fsynced,
so a crash loses at most the work in flight and a re-run resumes from what is on disk."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


class JsonlStore:
    """An append-only file of `{"id": ..., ...}` lines, read back into a dict by id.
    A torn last line (from a kill mid-write) is ignored and overwritten."""

    def __init__(self, path: Path):
        self.path = path
        self.items: dict[str, dict] = {}
        self._file = None
        self._synced = time.monotonic()
        if path.exists():
            good = 0
            with path.open("rb") as f:
                for raw in f:
                    if not raw.endswith(b"\n"):
                        break
                    try:
                        row = json.loads(raw)
                    except json.JSONDecodeError:
                        break
                    self.items[row["id"]] = row
                    good += len(raw)
            if good != path.stat().st_size:
                with path.open("r+b") as f:
                    f.truncate(good)

    def __contains__(self, key: str) -> bool:
        return key in self.items

    def get(self, key: str) -> dict | None:
        return self.items.get(key)

    def append(self, row: dict) -> None:
        """Write one line and flush it to the OS, so killing the process cannot lose it; fsync at
        most once a second (and on close) so that a power loss costs at most the last second."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(dumps(row) + "\n")
        self._file.flush()
        now = time.monotonic()
        if now - self._synced > 1.0:
            os.fsync(self._file.fileno())
            self._synced = now
        self.items[row["id"]] = row

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None

    def __del__(self):
        try:
            self.close()
        except (OSError, ValueError):
            pass


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
