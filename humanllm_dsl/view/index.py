"""The viewer's index: one SQLite file (with an FTS5 table) per set of folders, built on first open.

Rows hold what lists filter and sort on, and each record's or rollout's byte offset; pages read
the full JSON by offset (`folders.read_at`), so the server's memory does not grow with what is
browsed. The file lives in the user's cache folder, named by a hash of the folders' files (path,
size, modification time): a changed folder gets a new index, an unchanged one opens at once.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import attrs

from ..runtime.records import char2pattern, others_of
from .folders import EVAL_FILES, Folder, lines_with_offsets

SCHEMA_VERSION = "1"
PAGE = 50
SCHEMA = """
CREATE TABLE problems(folder INTEGER, file TEXT, line INTEGER, message TEXT);
CREATE TABLE scenarios(rid INTEGER PRIMARY KEY, folder INTEGER, id TEXT, split TEXT, situation TEXT,
  domain TEXT, status TEXT, reason TEXT, characters INTEGER, turns INTEGER, offset INTEGER, length INTEGER,
  patterns TEXT, families TEXT, itypes TEXT);
CREATE INDEX scenarios_id ON scenarios(folder, id);
CREATE TABLE interactions(rid INTEGER, type TEXT, patterns TEXT, direction TEXT, because TEXT, expect TEXT);
CREATE VIRTUAL TABLE scenario_text USING fts5(body, content='', tokenize='unicode61');
CREATE TABLE samples(sid INTEGER PRIMARY KEY, folder INTEGER, id TEXT, record TEXT, character TEXT,
  split TEXT, status TEXT, reason TEXT, offset INTEGER, length INTEGER, patterns TEXT, families TEXT,
  itypes TEXT, ipe REAL, mpd REAL, anthropomorphism REAL, fidelity REAL);
CREATE INDEX samples_id ON samples(folder, id);
CREATE TABLE judged(sid INTEGER, store TEXT, run INTEGER, offset INTEGER, length INTEGER);
CREATE INDEX judged_sid ON judged(sid);
"""


def _tags(values: Iterable[str]) -> str:
    """Multi-valued fields as ` a b c ` so `LIKE '% b %'` finds one value exactly."""
    return " " + " ".join(sorted(set(values))) + " "


def cache_dir() -> Path:
    base = os.environ.get("HUMANLLM_VIEW_CACHE") or os.environ.get("XDG_CACHE_HOME")
    path = Path(base) / "humanllm" / "view" if base else Path.home() / ".cache" / "humanllm" / "view"
    try:
        path.mkdir(parents=True, exist_ok=True)
        return path
    except OSError:
        fallback = Path(tempfile.gettempdir()) / "humanllm-view"
        fallback.mkdir(parents=True, exist_ok=True)
        return fallback


def _fingerprint(folders: Sequence[Folder]) -> str:
    h = hashlib.sha256(SCHEMA_VERSION.encode())
    for f in folders:
        names = ["records.jsonl", "plan.jsonl", "failures.jsonl", "patterns.json"] if f.kind == "build" else \
            [f"{n}.jsonl" for n in EVAL_FILES] + ["scores.csv", "results.json"]
        paths = [f.root / n for n in names]
        if f.kind == "eval" and f.build_root:
            paths.append(f.build_root / "records.jsonl")
        for p in paths:
            st = p.stat() if p.exists() else None
            h.update(f"{f.kind}|{p}|{st and st.st_size}|{st and st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def open_index(folders: Sequence[Folder], where: Path | None = None) -> Path:
    """The index file for these folders, built now unless an up-to-date one exists.

    Args:
        folders: the opened folders.
        where: the cache folder (default: `cache_dir()`).
    """
    target = (where or cache_dir()) / f"view-{_fingerprint(folders)}.sqlite"
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        return target
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    os.close(fd)
    try:
        db = sqlite3.connect(tmp)
        db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + SCHEMA)
        for folder in folders:
            (_index_build if folder.kind == "build" else _index_eval)(db, folder)
        db.commit()
        db.close()
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def connect(path: Path) -> sqlite3.Connection:
    """A read-only connection (one per request: the server never writes)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    db.row_factory = sqlite3.Row
    return db


def _families(patterns: dict, ids: Iterable[str]) -> list[str]:
    return [patterns[p]["family"] for p in ids if p in patterns and patterns[p].get("family")]


def _scenario_text(r: dict) -> str:
    parts = [r.get("id", ""), r.get("background", ""), r.get("design_analysis", ""), r.get("situation", ""),
             r.get("domain", ""), " ".join(r.get("patterns", [])), " ".join(r.get("pattern_names", []))]
    for c in r.get("characters", []):
        parts += [c.get("name", ""), c.get("about_self", ""), *others_of(c).values()]
    parts += [t.get("content", "") for t in r.get("conversation", [])]
    return "\n".join(p for p in parts if isinstance(p, str))


def _index_build(db: sqlite3.Connection, f: Folder) -> None:
    build = f.build
    seen = set()
    for line, offset, length, r in lines_with_offsets(build.records):
        if r is None or not isinstance(r.get("id"), str):
            db.execute("INSERT INTO problems VALUES (?,?,?,?)", (f.key, "records.jsonl", line, "not a record"))
            continue
        seen.add(r["id"])
        interactions = [i for i in r.get("interactions", []) if isinstance(i, dict)]
        cur = db.execute(
            "INSERT INTO scenarios(folder,id,split,situation,domain,status,reason,characters,turns,offset,length,"
            "patterns,families,itypes) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (f.key, r["id"], r.get("split", ""), r.get("situation", ""), r.get("domain", ""), "ok", "",
             len(r.get("characters", [])), len(r.get("conversation", [])), offset, length,
             _tags(r.get("patterns", [])), _tags(_families(f.patterns, r.get("patterns", []))),
             _tags(i.get("type", "") for i in interactions) if interactions else " none "))
        rid = cur.lastrowid
        db.execute("INSERT INTO scenario_text(rowid, body) VALUES (?,?)", (rid, _scenario_text(r)))
        db.executemany("INSERT INTO interactions VALUES (?,?,?,?,?,?)", [
            (rid, i.get("type", ""), _tags(i.get("patterns", [])),
             "" if not i.get("direction") else " ".join(i["direction"].get("from", [])) + " -> "
             + " ".join(i["direction"].get("to", [])), i.get("because", ""), i.get("expect", ""))
            for i in interactions])
    reasons = {row["id"]: f"{row.get('stage', '?')}: {row.get('reason', '')}"
               for _, _, _, row in lines_with_offsets(build.failures) if row and "id" in row}
    for line, _, _, p in lines_with_offsets(build.plan):
        if p is None or p.get("id") in seen or "id" not in p:
            continue
        status = "failed" if p["id"] in reasons else "pending"
        db.execute(
            "INSERT INTO scenarios(folder,id,split,situation,domain,status,reason,characters,turns,offset,length,"
            "patterns,families,itypes) VALUES (?,?,?,?,?,?,?,?,0,-1,0,?,?,?)",
            (f.key, p["id"], p.get("split", ""), p.get("situation", ""), p.get("domain", ""), status,
             reasons.get(p["id"], "planned, not compiled yet"), p.get("characters", 0),
             _tags(p.get("patterns", [])), _tags(_families(f.patterns, p.get("patterns", []))),
             _tags(i.get("type", "") for i in p.get("interactions", [])) if p.get("interactions") else " none "))


def _sample_scores(path: Path) -> dict[str, dict[str, float]]:
    import csv

    out: dict[str, dict[str, float]] = {}
    if path.is_file():
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                try:
                    out.setdefault(row["sample_id"], {})[row["metric"]] = float(row["score"])
                except (KeyError, TypeError, ValueError):
                    continue
    return out


def _index_eval(db: sqlite3.Connection, f: Folder) -> None:
    records: dict[str, tuple[tuple[str, ...], dict]] = {}
    if f.build_root:
        for _, _, _, r in lines_with_offsets(f.build.records):
            if r and "id" in r:
                types = tuple(i.get("type", "") for i in r.get("interactions", []) if isinstance(i, dict))
                records[r["id"]] = (types or ("none",), char2pattern(r))
    judged: dict[str, dict[tuple[str, int], tuple[int, int, dict]]] = {}
    for store in ("verdicts", "holistic"):
        for line, offset, length, row in lines_with_offsets(f.file(store)):
            if row is None or "sample" not in row:
                db.execute("INSERT INTO problems VALUES (?,?,?,?)", (f.key, f"{store}.jsonl", line, "not a judge row"))
                continue
            judged.setdefault(row["sample"], {})[(store, int(row.get("run", 1)))] = (offset, length, row)
    failed = {row.get("sample"): row.get("reason", "") for _, _, _, row in lines_with_offsets(f.file("failures")) if row}
    scores = _sample_scores(f.root / "scores.csv")
    rollouts: dict[str, tuple[int, int, dict]] = {}
    for line, offset, length, row in lines_with_offsets(f.file("rollouts")):
        if row is None or "id" not in row:
            db.execute("INSERT INTO problems VALUES (?,?,?,?)", (f.key, "rollouts.jsonl", line, "not a rollout"))
            continue
        rollouts[row["id"]] = (offset, length, {k: row.get(k) for k in ("record", "character", "split")})
    for sid_text in sorted(set(rollouts) | set(failed) - {None} | set(judged)):
        offset, length, head = rollouts.get(sid_text, (-1, 0, {}))
        record_id, _, character = sid_text.partition("/")
        types, c2p = records.get(head.get("record") or record_id, (("none",), {}))
        runs = judged.get(sid_text, {})
        verdict_rows = [row for (store, _), (_, _, row) in runs.items() if store == "verdicts"]
        patterns = c2p.get(character) or sorted({i.get("pattern") for v in verdict_rows for i in v.get("items", [])
                                                 if i.get("pattern")})
        bad = [row.get("reason", "failed") for (_, _, row) in runs.values() if row.get("status") != "ok"]
        status, reason = ("failed", failed.get(sid_text) or "; ".join(bad)) if offset < 0 or bad else ("ok", "")
        split = head.get("split") or next((row.get("split") for row in verdict_rows), "")
        s = scores.get(sid_text, {})
        cur = db.execute(
            "INSERT INTO samples(folder,id,record,character,split,status,reason,offset,length,patterns,families,"
            "itypes,ipe,mpd,anthropomorphism,fidelity) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (f.key, sid_text, head.get("record") or record_id, head.get("character") or character, split, status,
             reason, offset, length, _tags(patterns), _tags(_families(f.patterns, patterns)), _tags(types),
             s.get("IPE"), s.get("MPD"), s.get("anthropomorphism"), s.get("fidelity")))
        db.executemany("INSERT INTO judged VALUES (?,?,?,?,?)",
                       [(cur.lastrowid, store, run, off, ln) for (store, run), (off, ln, _) in sorted(runs.items())])


@attrs.frozen
class Query:
    """A list page's filters (empty: no filter), its page and sort."""

    folder: int | None = None
    q: str = ""
    split: str = ""
    pattern: str = ""
    family: str = ""
    itype: str = ""
    situation: str = ""
    domain: str = ""
    status: str = ""
    character: str = ""
    sort: str = ""
    page: int = 1

    def where(self, table: str) -> tuple[str, list]:
        clauses, args = [], []
        if self.folder is not None:
            clauses.append("folder = ?")
            args.append(self.folder)
        for column in ("split", "situation", "domain", "status"):
            value = getattr(self, column)
            if value and (table == "scenarios" or column in ("split", "status")):
                clauses.append(f"{column} = ?")
                args.append(value)
        for column, value in (("patterns", self.pattern), ("families", self.family), ("itypes", self.itype)):
            if value:
                clauses.append(f"{column} LIKE ?")
                args.append(f"% {value} %")
        if self.character and table == "samples":
            clauses.append("character LIKE ?")
            args.append(f"%{self.character}%")
        if self.q and table == "scenarios":
            clauses.append("rid IN (SELECT rowid FROM scenario_text WHERE scenario_text MATCH ?)")
            args.append(fts_query(self.q))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def fts_query(text: str) -> str:
    """Words of a search box as an FTS5 query: every word must occur (prefix match on the last);
    quotes keep a phrase; FTS5 syntax characters in the words are never interpreted."""
    import shlex

    text = "".join(c if c.isprintable() else " " for c in text)
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    terms = ['"' + w.replace('"', '""') + '"' for w in words if w.strip()]
    if terms and " " not in words[-1]:
        terms[-1] += "*"
    return " ".join(terms) or '""'


SORTS = {"scenarios": {"": "rid", "id": "id", "split": "split, rid", "turns": "turns DESC, rid"},
         "samples": {"": "sid", "id": "id", "ipe": "ipe IS NULL, ipe DESC", "-ipe": "ipe IS NULL, ipe",
                     "mpd": "mpd IS NULL, mpd DESC", "-mpd": "mpd IS NULL, mpd", "split": "split, sid"}}


def page(db: sqlite3.Connection, table: str, query: Query) -> tuple[list[sqlite3.Row], int]:
    """One page of scenarios or samples and the number matching.

    Args:
        db: a connection to the index.
        table: "scenarios" or "samples".
        query: the filters.
    """
    where, args = query.where(table)
    total = db.execute(f"SELECT count(*) FROM {table}{where}", args).fetchone()[0]
    order = SORTS[table].get(query.sort, SORTS[table][""])
    rows = db.execute(f"SELECT * FROM {table}{where} ORDER BY {order} LIMIT ? OFFSET ?",
                      [*args, PAGE, (max(query.page, 1) - 1) * PAGE]).fetchall()
    return rows, total


def facets(db: sqlite3.Connection, table: str, folder: int | None) -> dict[str, list[str]]:
    """The values each filter can take (for the filter form's choices)."""
    scope, args = ("WHERE folder = ?", [folder]) if folder is not None else ("", [])
    out = {}
    columns = ("split", "status", "situation", "domain") if table == "scenarios" else ("split", "status")
    for column in columns:
        out[column] = [r[0] for r in db.execute(f"SELECT DISTINCT {column} FROM {table} {scope} ORDER BY 1", args)
                       if r[0]]
    for column, key in (("families", "family"), ("itypes", "itype"), ("patterns", "pattern")):
        values: set[str] = set()
        for (tags,) in db.execute(f"SELECT DISTINCT {column} FROM {table} {scope}", args):
            values.update(tags.split())
        out[key] = sorted(values)
    return out


def pattern_usage(db: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """pattern -> split -> number of scenarios using it (over all builds)."""
    usage: dict[str, dict[str, int]] = {}
    for tags, split, n in db.execute("SELECT patterns, split, count(*) FROM scenarios WHERE status = 'ok' "
                                     "GROUP BY patterns, split"):
        for p in tags.split():
            usage.setdefault(p, {}).setdefault(split, 0)
            usage[p][split] += n
    return usage
