"""The study database: SQLite in WAL mode, one connection per call (threads never share one).

    meta(key, value)                   what the study is (mode, source, n, seed, split) and its cookie key
    units(pos, id, data)               the frozen units (JSON), in presentation order
    scores(id, rater, unit, item, score, comment, time)
                                       one row per answer, never updated: a rater's latest row
                                       for (unit, item) is their answer
    raters(name, created)

Every write commits (synchronous=FULL) before the server answers, so a killed server loses
nothing it acknowledged. Scores are validated here against the stored units: a unit or item
that does not exist, or a score off its scale, is refused with `BadScore`.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

from .definitions import HOLISTIC, VERDICTS
from .sampling import StudyError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS units (pos INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS scores (id INTEGER PRIMARY KEY AUTOINCREMENT, rater TEXT NOT NULL, unit TEXT NOT NULL,
    item TEXT NOT NULL, score INTEGER NOT NULL, comment TEXT NOT NULL DEFAULT '', time TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS scores_by_rater ON scores (rater, unit, item, id);
CREATE TABLE IF NOT EXISTS raters (name TEXT PRIMARY KEY, created TEXT NOT NULL);
"""
IDENTITY = ("mode", "source", "n", "seed", "split")
MAX_COMMENT = 4000
MAX_NAME = 64


class BadScore(ValueError):
    """A write that does not fit the study (HTTP 400)."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def check_name(name: object) -> str:
    """A rater's name, stripped: 1-64 printable characters."""
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME or not name.strip().isprintable():
        raise BadScore(f"a rater's name is 1 to {MAX_NAME} printable characters")
    return name.strip()


class StudyDb:
    """One study's database file."""

    def __init__(self, path: Path):
        self.path = path
        self._units: list[dict] | None = None

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    @classmethod
    def open(cls, path: Path, identity: dict, make_units) -> StudyDb:
        """Open the study at `path`, creating it with `make_units()` if the file is new.

        Args:
            path: the database file.
            identity: what the study is (`IDENTITY` keys); an existing file must match it.
            make_units: called only for a new file; returns the units.
        Raises:
            StudyError: the file holds another study, or is not a study database.
        """
        db = cls(path)
        identity = {k: str(identity[k]) for k in IDENTITY}
        if path.exists():
            try:
                meta = db.meta()
            except sqlite3.DatabaseError as exc:
                raise StudyError(f"{path}: not a study database ({exc})") from None
            differ = [k for k in IDENTITY if meta.get(k) != identity[k]]
            if differ:
                raise StudyError(f"{path} holds another study ({', '.join(f'{k}: {meta.get(k)!r}' for k in differ)}); "
                                 "give another --db, or the same options as when it was made")
            return db
        units = make_units()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".new")
        tmp.unlink(missing_ok=True)
        with closing(cls(tmp).connect()) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO meta VALUES (?, ?)", [*identity.items(), ("key", secrets.token_hex(32)),
                                                                 ("created", _now())])
            conn.executemany("INSERT INTO units VALUES (?, ?, ?)",
                             [(i, u["id"], json.dumps(u, ensure_ascii=False)) for i, u in enumerate(units)])
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        tmp.replace(path)  # a study appears whole or not at all
        return db

    def meta(self) -> dict[str, str]:
        with closing(self.connect()) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            return dict(conn.execute("SELECT key, value FROM meta"))

    @property
    def mode(self) -> str:
        return self.meta()["mode"]

    def units(self) -> list[dict]:
        """The units in order (read once: they never change)."""
        if self._units is None:
            with closing(self.connect()) as conn:
                self._units = [json.loads(d) for (d,) in conn.execute("SELECT data FROM units ORDER BY pos")]
        return self._units

    def unit(self, unit_id: str) -> dict | None:
        return next((u for u in self.units() if u["id"] == unit_id), None)

    def add_rater(self, name: str) -> str:
        name = check_name(name)
        with closing(self.connect()) as conn:
            conn.execute("INSERT OR IGNORE INTO raters VALUES (?, ?)", (name, _now()))
        return name

    def raters(self) -> list[str]:
        with closing(self.connect()) as conn:
            return [n for (n,) in conn.execute("SELECT name FROM raters ORDER BY created, name")]

    def check(self, unit_id: object, item: object, score: object, comment: object = "") -> tuple[dict, str, int, str]:
        """The validated write, or BadScore saying what is wrong with it."""
        unit = self.unit(unit_id) if isinstance(unit_id, str) else None
        if unit is None:
            raise BadScore(f"no unit {unit_id!r} in this study")
        if not isinstance(score, int) or isinstance(score, bool):
            raise BadScore("score must be an integer")
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
            raise BadScore(f"comment must be text of at most {MAX_COMMENT} characters")
        if "aspects" in unit:  # pattern review
            if item not in unit["aspects"]:
                raise BadScore(f"pattern {unit['id']!r} has no aspect {item!r} (it has: {', '.join(unit['aspects'])})")
            if not 1 <= score <= 4:
                raise BadScore("a pattern review score is 1, 2, 3 or 4")
            return unit, item, score, comment
        if comment:
            raise BadScore("comments are for pattern reviews")
        if item in HOLISTIC:
            if not 0 <= score <= 100:
                raise BadScore(f"{item} is an integer from 0 to 100")
        elif isinstance(item, str) and any(i["key"] == item for i in unit["items"]):
            if score not in VERDICTS:
                raise BadScore("a checklist item is scored 1, 0 or -1")
        else:
            raise BadScore(f"sample {unit['id']!r} has no item {item!r} (items 1 to {len(unit['items'])}, "
                           f"{', '.join(HOLISTIC)})")
        return unit, item, score, comment

    def record(self, rater: str, unit_id: object, item: object, score: object, comment: object = "") -> int:
        """Validate and store one answer; committed when this returns. Returns the row id."""
        rater = check_name(rater)
        unit, item, score, comment = self.check(unit_id, item, score, comment)
        with closing(self.connect()) as conn:
            cur = conn.execute("INSERT INTO scores (rater, unit, item, score, comment, time) VALUES (?, ?, ?, ?, ?, ?)",
                               (rater, unit["id"], item, score, comment, _now()))
            return int(cur.lastrowid)

    def answers(self, rater: str | None = None) -> list[dict]:
        """Each rater's latest answer per (unit, item), in unit order: `{rater, unit, item, score, comment, time}`."""
        sql = ("SELECT s.rater, s.unit, s.item, s.score, s.comment, s.time FROM scores s JOIN "
               "(SELECT MAX(id) AS id FROM scores GROUP BY rater, unit, item) last ON s.id = last.id")
        args: tuple = ()
        if rater is not None:
            sql += " WHERE s.rater = ?"
            args = (rater,)
        with closing(self.connect()) as conn:
            rows = [dict(zip(("rater", "unit", "item", "score", "comment", "time"), r)) for r in conn.execute(sql, args)]
        order = {u["id"]: i for i, u in enumerate(self.units())}
        return sorted(rows, key=lambda r: (r["rater"], order.get(r["unit"], -1), r["item"]))

    def rows(self) -> int:
        with closing(self.connect()) as conn:
            return conn.execute("SELECT COUNT(*) FROM scores").fetchone()[0]


def expected_items(unit: dict) -> list[str]:
    """What a rater answers for a unit: every checklist item and both holistic scales, or every aspect."""
    if "aspects" in unit:
        return list(unit["aspects"])
    return [i["key"] for i in unit["items"]] + list(HOLISTIC)


def progress(db: StudyDb, answers: list[dict]) -> dict[str, dict]:
    """Per rater: `{"done": units fully answered, "total", "answered": {unit id: items answered}}`."""
    units = db.units()
    by: dict[str, dict[str, set]] = {}
    for a in answers:
        by.setdefault(a["rater"], {}).setdefault(a["unit"], set()).add(a["item"])
    out = {}
    for rater in sorted(set(db.raters()) | set(by)):
        got = by.get(rater, {})
        done = sum(set(expected_items(u)) <= got.get(u["id"], set()) for u in units)
        out[rater] = {"done": done, "total": len(units), "answered": {k: len(v) for k, v in got.items()}}
    return out
