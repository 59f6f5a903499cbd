"""The viewer's pages: a read-only web app over the folders given (GET and HEAD only).

Routes: `/` what is loaded; `/scenarios` (filters, search, pages); `/b/<k>/s/<id>` a scenario;
`/patterns`, `/p/<id>`; `/e/<k>` an evaluation; `/e/<k>/samples`; `/e/<k>/x/<sample>` a sample
with verdicts beside turns; `/compare?a=&b=` two evaluations; `/f/<k>/<path>` a file under
folder k (nothing outside it); `/static/<name>` the stylesheet and scripts; `/drafts` the drafts of
`humanllm draft` that are loaded, `/d/<k>/<name>` one draft with its trace.
"""

from __future__ import annotations

import mimetypes
import re
import sqlite3
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import attrs

from ..runtime.records import RecordError, load_record
from . import index as I
from .drafts import DraftError, DraftFile, load_page, paper_file
from .evidence import place
from .folders import ALIGN_FILES, Folder, read_at
from .render import STATIC, render

STATIC_FILES = {"view.css": "text/css; charset=utf-8", "sort.js": "text/javascript; charset=utf-8",
                "draft.js": "text/javascript; charset=utf-8"}
CSP = ("default-src 'none'; style-src 'self' 'unsafe-inline'; script-src 'self'; img-src 'self' data:; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


class NotFound(Exception):
    pass


@attrs.define
class ViewApp:
    """The loaded folders, their index, and (optionally) the pattern library from `--specs`."""

    folders: list[Folder]
    index: Path
    library: object | None = None
    _local: threading.local = attrs.field(factory=threading.local, init=False, repr=False)

    @property
    def evals(self) -> list[Folder]:
        return [f for f in self.folders if f.kind == "eval"]

    @property
    def builds(self) -> list[Folder]:
        return [f for f in self.folders if f.kind == "build"]

    @property
    def drafts(self) -> list[tuple[Folder, DraftFile]]:
        """(folder, DraftFile) for every draft in the folders given."""
        return [(f, d) for f in self.folders for d in f.drafts]

    def db(self) -> sqlite3.Connection:
        """This thread's read-only connection to the index."""
        if getattr(self._local, "db", None) is None:
            self._local.db = I.connect(self.index)
        return self._local.db

    def folder(self, key: str, kind: str | None = None) -> Folder:
        """Folder `key`; NotFound unless it exists and (given a `kind`) is of that kind."""
        if not key.isdigit() or int(key) >= len(self.folders) or kind not in (None, self.folders[int(key)].kind):
            raise NotFound(f"no {kind + ' ' if kind else ''}folder {key}")
        return self.folders[int(key)]

    def patterns(self) -> dict[str, dict]:
        """Every loaded pattern (patterns.json of the builds, and of the evaluations' builds)."""
        out: dict[str, dict] = {}
        for f in self.folders:
            for pid, p in f.patterns.items():
                out.setdefault(pid, p)
        if self.library is not None:
            for p in self.library.patterns:
                out.setdefault(p.id, {"name": p.name, "family": p.family, "dimension": p.dimension,
                                      "checklist": list(p.checklist)})
        return out

    # ---- pages ----------------------------------------------------------------------------
    def page(self, path: str, params: dict[str, str]) -> str:
        for pattern, handler in ROUTES:
            match = re.fullmatch(pattern, path)
            if match:
                return handler(self, params, *[unquote(g) for g in match.groups()])
        raise NotFound(f"no page at {path}")

    def _render(self, template: str, **context) -> str:
        return render(template, app=self, inline=None, **context)

    def home(self, params) -> str:
        db = self.db()
        counts = {f.key: {"ok": 0, "failed": 0, "pending": 0, "samples": 0} for f in self.folders}
        for folder, status, n in db.execute("SELECT folder, status, count(*) FROM scenarios GROUP BY 1, 2"):
            counts[folder][status] = n
        for folder, n in db.execute("SELECT folder, count(*) FROM samples GROUP BY 1"):
            counts[folder]["samples"] = n
        problems = db.execute("SELECT * FROM problems ORDER BY folder, file, line LIMIT 50").fetchall()
        return self._render("home.html", counts=counts, problems=problems)

    def _query(self, params) -> I.Query:
        fields = {k: params.get(k, "") for k in ("q", "split", "pattern", "family", "itype", "situation", "domain",
                                                  "status", "character", "sort")}
        folder = params.get("folder", "")
        page = params.get("page", "1")
        return I.Query(folder=int(folder) if folder.isdigit() else None, page=int(page) if page.isdigit() else 1,
                       **fields)

    def _qs(self, params) -> Callable[..., str]:
        def qs(**changes) -> str:
            merged = {k: v for k, v in {**params, **{k: str(v) for k, v in changes.items()}}.items() if v}
            return "?" + urlencode(merged)
        return qs

    def scenarios(self, params) -> str:
        query = self._query(params)
        db = self.db()
        rows, total = I.page(db, "scenarios", query)
        return self._render("scenarios.html", rows=rows, total=total, query=query, builds=self.builds,
                            facets=I.facets(db, "scenarios", query.folder), qs=self._qs(params), per_page=I.PAGE)

    def scenario(self, params, key: str, rid: str) -> str:
        folder = self.folder(key, "build")
        row = self.db().execute("SELECT * FROM scenarios WHERE folder = ? AND id = ? AND status = 'ok'",
                                (folder.key, rid)).fetchone()
        if row is None:
            raise NotFound(f"no scenario {rid} in {folder.root.name}")
        data = read_at(folder.build.records, row["offset"], row["length"])
        record = load_record(data, str(folder.build.records))
        samples = self.db().execute("SELECT folder, id, character FROM samples WHERE record = ? ORDER BY folder, id",
                                    (rid,)).fetchall()
        return self._render("scenario.html", folder=folder, r=record, patterns=self.patterns(), samples=samples)

    def patterns_page(self, params) -> str:
        usage = I.pattern_usage(self.db())
        rows = []
        for pid, p in sorted(self.patterns().items(), key=lambda kv: kv[1].get("name", kv[0]).lower()):
            rows.append({"id": pid, "name": p.get("name", pid), "family": p.get("family", ""),
                         "dimension": p.get("dimension"), "used": sum(usage.get(pid, {}).values()),
                         "ipe": [((e.results.get("breakdowns") or {}).get("pattern", {}).get(pid) or {})
                                 .get("IPE", {}).get("mean") for e in self.evals]})
        return self._render("patterns.html", rows=rows, specs=self.library is not None)

    def pattern(self, params, pid: str) -> str:
        known = self.patterns()
        if pid not in known:
            raise NotFound(f"no pattern {pid}")
        db = self.db()
        used = {split: n for split, n in db.execute(
            "SELECT split, count(*) FROM scenarios WHERE status = 'ok' AND patterns LIKE ? GROUP BY split",
            (f"% {pid} %",))}
        declared = [dict(r) for r in db.execute(
            "SELECT type, patterns, direction, because, expect, count(*) AS n FROM interactions WHERE patterns LIKE ? "
            "GROUP BY type, patterns, direction, because, expect ORDER BY n DESC", (f"% {pid} %",))]
        for d in declared:
            d["patterns"] = d["patterns"].split()
        spec, interactions = None, declared
        if self.library is not None:
            spec = self.library.by_id.get(pid)
            seen = {(d["type"], tuple(sorted(d["patterns"]))): d["n"] for d in declared}
            interactions = [{"type": i.type, "patterns": list(i.patterns), "because": i.because, "expect": i.expect,
                             "direction": i.direction and f"{' '.join(i.direction.sources)} -> {' '.join(i.direction.targets)}",
                             "n": seen.get((i.type, tuple(sorted(i.patterns))), 0)}
                            for i in self.library.interactions if pid in i.patterns]
        scores = [(e, g) for e in self.evals
                  if (g := ((e.results.get("breakdowns") or {}).get("pattern") or {}).get(pid))]
        return self._render("pattern.html", p={"id": pid, **known[pid]}, spec=spec, used=used,
                            interactions=interactions, scores=scores)

    def eval_page(self, params, key: str) -> str:
        folder = self.folder(key, "eval")
        build_key = next((b.key for b in self.builds if b.root == folder.build_root), None)
        alignment = folder.alignment
        metrics = (alignment or {}).get("metrics") or {}
        columns = list(dict.fromkeys(k for row in metrics.values() if isinstance(row, dict) for k in row))
        return self._render("eval.html", folder=folder, build_key=build_key, alignment=alignment,
                            alignment_file=next((n for n in ALIGN_FILES
                                                 if (folder.root / n).is_file()), ""), alignment_columns=columns)

    def samples(self, params, key: str) -> str:
        folder = self.folder(key, "eval")
        query = attrs.evolve(self._query(params), folder=folder.key)
        db = self.db()
        rows, total = I.page(db, "samples", query)
        return self._render("samples.html", folder=folder, rows=rows, total=total, query=query,
                            facets=I.facets(db, "samples", folder.key), qs=self._qs(params), per_page=I.PAGE)

    def sample(self, params, key: str, sid: str) -> str:
        folder = self.folder(key, "eval")
        db = self.db()
        s = db.execute("SELECT * FROM samples WHERE folder = ? AND id = ?", (folder.key, sid)).fetchone()
        if s is None:
            raise NotFound(f"no sample {sid} in {folder.root.name}")
        turns = read_at(folder.file("rollouts"), s["offset"], s["length"])["turns"] if s["offset"] >= 0 else []
        rows: dict[int, dict] = {}
        for j in db.execute("SELECT * FROM judged WHERE sid = ? ORDER BY run", (s["sid"],)):
            rows.setdefault(j["run"], {})[j["store"]] = read_at(folder.file(j["store"]), j["offset"], j["length"])
        runs = [_run_summary(n, r) for n, r in sorted(rows.items())]
        wanted = params.get("run", "")
        ok_runs = [r["n"] for r in runs if r["verdicts"]]
        current = int(wanted) if wanted.isdigit() and int(wanted) in ok_runs else (ok_runs[0] if ok_runs else 1)
        verdicts = next((r["verdicts"] for r in runs if r["n"] == current), [])
        beside, nowhere = place(turns, verdicts)
        build_keys = [b.key for b in self.builds]
        scenario = None
        if build_keys:
            scenario = db.execute(
                f"SELECT folder, id FROM scenarios WHERE id = ? AND status = 'ok' AND folder IN ({','.join('?' * len(build_keys))}) "
                "ORDER BY folder", (s["record"], *build_keys)).fetchone()
        return self._render("sample.html", folder=folder, s=s, runs=runs, current=current, turns=turns,
                            beside=beside, nowhere=nowhere, scenario=scenario)

    def compare(self, params) -> str:
        evals = self.evals
        pick = lambda name, default: next((e for e in evals if str(e.key) == params.get(name)), default)  # noqa: E731
        a = pick("a", evals[0] if evals else None)
        b = pick("b", evals[1] if len(evals) > 1 else None)
        metrics, groups = [], []
        if a and b:
            ra, rb = a.results, b.results
            names = ["IPE", "MPD"] + sorted(set(ra.get("holistic") or {}) | set(rb.get("holistic") or {}))
            for name in names:
                x = (ra.get(name) or (ra.get("holistic") or {}).get(name) or {}).get("mean")
                y = (rb.get(name) or (rb.get("holistic") or {}).get(name) or {}).get("mean")
                metrics.append((name, x, y, _minus(y, x)))
            for title, key in (("split", "split"), ("family", "family"), ("interaction type", "interaction"),
                               ("pattern", "pattern")):
                ga = (ra.get("breakdowns") or {}).get(key) or {}
                gb = (rb.get("breakdowns") or {}).get(key) or {}
                rows = []
                for k in sorted(set(ga) | set(gb)):
                    x, y = ga.get(k) or {}, gb.get(k) or {}
                    ia, ib = (x.get("IPE") or {}).get("mean"), (y.get("IPE") or {}).get("mean")
                    ma, mb = (x.get("MPD") or {}).get("mean"), (y.get("MPD") or {}).get("mean")
                    rows.append((k, x.get("name") or y.get("name") or k, ia, ib, _minus(ib, ia), ma, mb, _minus(mb, ma)))
                groups.append((title, rows))
        return self._render("compare.html", a=a, b=b, metrics=metrics, groups=groups)

    def drafts_page(self, params) -> str:
        return self._render("drafts.html", drafts=self.drafts)

    def draft(self, params, key: str, name: str) -> str:
        folder = self.folder(key)
        found = next((d for d in folder.drafts if d.name == name), None)
        if found is None:
            raise NotFound(f"no draft {name}")
        try:
            page = load_page(found)
        except DraftError as exc:
            return self._render("draft.html", folder=folder, d=None, name=name, error=str(exc), paper_links={})
        links = {}
        for pid, meta in page.trace["papers"].items():
            file = meta.get("file") if isinstance(meta, dict) else None
            if file and not folder.only:
                target = paper_file(found, page.trace, str(file)).resolve()
                if target.is_relative_to(folder.root) and target.is_file():
                    links[pid] = f"/f/{folder.key}/{quote(target.relative_to(folder.root).as_posix())}"
        return self._render("draft.html", folder=folder, d=page, name=name, error="", paper_links=links)


def _minus(y, x):
    return None if x is None or y is None else y - x


def _run_summary(n: int, rows: dict) -> dict:
    """One judge run of a sample: its verdicts (numbered, with their items), IPE, MPD and holistic row."""
    v = rows.get("verdicts") or {}
    verdicts = []
    if v.get("status") == "ok":
        verdicts = [{**item, **verdict, "item": k, "run": n}
                    for k, (item, verdict) in enumerate(zip(v.get("items", []), v.get("verdicts", []), strict=False), 1)]

    def pct(kind):
        scores = [x["score"] for x in verdicts if x.get("kind") == kind]
        return 100 * sum(scores) / len(scores) if scores else None

    return {"n": n, "verdicts": verdicts, "ipe": pct("ipe"), "mpd": pct("mpd"), "holistic": rows.get("holistic"),
            "failed": v.get("reason") if v and v.get("status") != "ok" else ""}


ROUTES: list[tuple[str, Callable]] = [
    (r"/", ViewApp.home),
    (r"/scenarios", ViewApp.scenarios),
    (r"/b/(\d+)/s/(.+)", ViewApp.scenario),
    (r"/patterns", ViewApp.patterns_page),
    (r"/p/([^/]+)", ViewApp.pattern),
    (r"/e/(\d+)", ViewApp.eval_page),
    (r"/e/(\d+)/samples", ViewApp.samples),
    (r"/e/(\d+)/x/(.+)", ViewApp.sample),
    (r"/compare", ViewApp.compare),
    (r"/drafts", ViewApp.drafts_page),
    (r"/d/(\d+)/([^/]+)", ViewApp.draft),
]


def served_file(app: ViewApp, key: str, rel: str) -> Path:
    """A file under folder `key`, or NotFound (for `..`, links out of the folder, and folders)."""
    if not key.isdigit() or int(key) >= len(app.folders):
        raise NotFound("no such folder")
    folder = app.folders[int(key)]
    root = folder.root
    target = (root / rel).resolve()
    if not target.is_relative_to(root) or not target.is_file() or (folder.only and target not in folder.only):
        raise NotFound("no such file under the folders given")
    return target


def make_handler(app: ViewApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "humanllm-view"

        def log_message(self, format, *args):  # noqa: A002 - the base class's signature
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, status: HTTPStatus, message: str) -> None:
            html = render("error.html", app=app, inline=None, status=f"{status.value} {status.phrase}", message=message)
            self._send(status.value, html.encode("utf-8"), "text/html; charset=utf-8")

        def do_GET(self):  # noqa: N802 - the base class's naming
            url = urlsplit(self.path)
            path = url.path
            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
            try:
                if path.startswith("/static/"):
                    name = path.removeprefix("/static/")
                    if name not in STATIC_FILES:
                        raise NotFound("no such file")
                    return self._send(200, (STATIC / name).read_bytes(), STATIC_FILES[name])
                if match := re.fullmatch(r"/f/([^/]+)/(.+)", path):
                    target = served_file(app, match.group(1), unquote(match.group(2)))
                    kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
                    return self._send(200, target.read_bytes(), kind)
                body = app.page(path, params)
                self._send(200, body.encode("utf-8"), "text/html; charset=utf-8")
            except NotFound as exc:
                self._error(HTTPStatus.NOT_FOUND, str(exc))
            except RecordError as exc:
                self._error(HTTPStatus.UNPROCESSABLE_ENTITY, str(exc))

        do_HEAD = do_GET

        def _refuse(self):
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "the viewer is read-only")

        do_POST = do_PUT = do_DELETE = do_PATCH = _refuse

    return Handler


def make_server(app: ViewApp, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A server for `app` (port 0: a free port; read it from `server.server_address`)."""
    server = ThreadingHTTPServer((host, port), make_handler(app))
    server.daemon_threads = True
    return server


def open_app(paths: list[Path], specs: list[Path] | None = None, cache: Path | None = None) -> ViewApp:
    """Open the folders, build or reuse their index, load the specs if given.

    Raises:
        FolderError: a folder that is neither a build, an evaluation nor drafts; a file that is no draft.
        ValueError: specs with errors (the first few, with file:line:col).
    """
    from .folders import open_folder

    folders = [open_folder(Path(p), k) for k, p in enumerate(paths)]
    library = None
    if specs:
        from ..compiler.loader import check_paths

        result = check_paths([str(p) for p in specs])
        if result.library is None:
            errors = [f"{d.file}:{d.line}:{d.col}: {d.message}" if hasattr(d, "line") else d.message
                      for d in result.diagnostics if d.severity == "error"]
            raise ValueError("--specs: " + "; ".join(errors[:5]))
        library = result.library
    indexed = [f for f in folders if f.kind != "drafts"]  # a draft is read when its page is asked for
    return ViewApp(folders, I.open_index(indexed, cache), library)
