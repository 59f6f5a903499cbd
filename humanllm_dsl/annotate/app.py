"""The annotation web app: a standard-library threaded HTTP server, Jinja2 pages (autoescaped),
one JSON write endpoint.

    GET  /login, POST /login (form: name[, password]), GET /logout
    GET  /                 the rater's progress, every rater's progress, the list of units
    GET  /next             the first unit the rater has not finished (where they left off)
    GET  /u/<n>            unit n (1-based): a sample to score, or a pattern to review
    POST /api/score        JSON {unit, item, score[, comment]} -> 200 {ok, id} once committed;
                           400 {error} for a malformed or out-of-study write, 401 without a
                           login, 403 from another origin, 415 if not JSON
    GET  /api/progress     every rater's progress (JSON)
    GET  /static/<file>    the page's script and style

A rater's login is a cookie `name|hmac(name)`, keyed by a secret stored in the study database
(and the password, when there is one), so it survives a restart of the server.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.parse
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jinja2

from . import db as D
from .definitions import HOLISTIC, REVIEW_SCALE, holistic_definitions, verdict_definitions

HERE = Path(__file__).resolve().parent
LOOPBACK = ("127.0.0.1", "localhost", "::1")
STATIC = {"annotate.js": "text/javascript; charset=utf-8", "annotate.css": "text/css; charset=utf-8"}
MAX_BODY = 64 * 1024


def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined)


class App:
    """What every request handler shares: the database, the templates and the login key."""

    def __init__(self, db: D.StudyDb, password: str | None = None):
        self.db = db
        self.password = password
        self.env = environment()
        self.key = (db.meta()["key"] + "\0" + (password or "")).encode()
        self.mode = db.mode

    def sign(self, name: str) -> str:
        return hmac.new(self.key, name.encode(), hashlib.sha256).hexdigest()

    def cookie_for(self, name: str) -> str:
        return urllib.parse.quote(name, safe="") + "|" + self.sign(name)

    def rater_of(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        c = SimpleCookie()
        try:
            c.load(cookie)
        except CookieError:  # a malformed Cookie header is simply no login
            return None
        value = c.get("rater")
        if value is None or "|" not in value.value:
            return None
        quoted, sig = value.value.rsplit("|", 1)
        name = urllib.parse.unquote(quoted)
        return name if hmac.compare_digest(sig, self.sign(name)) else None

    def render(self, template: str, **context) -> bytes:
        return self.env.get_template(template).render(mode=self.mode, **context).encode("utf-8")


class Handler(BaseHTTPRequestHandler):
    app: App  # set on the subclass `make_server` builds
    server_version = "humanllm-annotate"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # quiet: the terminal shows the address and errors only

    # ---- responses -------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str = "text/html; charset=utf-8", headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _redirect(self, where: str, cookie: str | None = None) -> None:
        headers = {"Location": where}
        if cookie is not None:
            headers["Set-Cookie"] = f"rater={cookie}; Path=/; HttpOnly; SameSite=Strict"
        self._send(HTTPStatus.SEE_OTHER, b"", headers=headers)

    def _rater(self) -> str | None:
        return self.app.rater_of(self.headers.get("Cookie"))

    def _body(self) -> bytes | None:
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        return self.rfile.read(n) if 0 <= n <= MAX_BODY else None

    # ---- routes ----------------------------------------------------------------------------
    def do_GET(self):  # noqa: N802 - the base class's name
        path = urllib.parse.urlsplit(self.path).path
        app = self.app
        if path.startswith("/static/"):
            name = path.removeprefix("/static/")
            if name not in STATIC:
                return self._send(404, b"not found", "text/plain")
            return self._send(200, (HERE / "static" / name).read_bytes(), STATIC[name])
        if path == "/login":
            return self._send(200, app.render("login.html", need_password=app.password is not None, error=None))
        if path == "/logout":
            return self._redirect("/login", cookie="")
        rater = self._rater()
        if rater is None:
            return self._redirect("/login")
        answers = app.db.answers()
        progress = D.progress(app.db, answers)
        units = app.db.units()
        mine = [a for a in answers if a["rater"] == rater]
        if path == "/api/progress":
            return self._json(200, {r: {"done": p["done"], "total": p["total"]} for r, p in progress.items()})
        if path in ("/next", "/"):
            answered = progress.get(rater, {"answered": {}})["answered"]
            pending = [i for i, u in enumerate(units, 1) if answered.get(u["id"], 0) < len(D.expected_items(u))]
            if path == "/next":
                return self._redirect(f"/u/{pending[0]}" if pending else "/")
            return self._send(200, app.render("index.html", rater=rater, units=units, progress=progress,
                                              answered=answered, expected=[len(D.expected_items(u)) for u in units],
                                              next=pending[0] if pending else None))
        if path.startswith("/u/") and path[3:].isdigit() and 1 <= int(path[3:]) <= len(units):
            n = int(path[3:])
            unit = units[n - 1]
            got = {a["item"]: a for a in mine if a["unit"] == unit["id"]}
            return self._send(200, app.render(
                "pattern.html" if "aspects" in unit else "sample.html", rater=rater, unit=unit, n=n, total=len(units),
                got=got, progress=progress.get(rater, {"done": 0, "total": len(units)}),
                verdicts=verdict_definitions(), holistic=holistic_definitions(), holistic_keys=HOLISTIC,
                scale=REVIEW_SCALE))
        return self._send(404, app.render("message.html", title="Not found", text="There is no such page."))

    def do_POST(self):  # noqa: N802 - the base class's name
        path = urllib.parse.urlsplit(self.path).path
        origin = self.headers.get("Origin")
        if origin and urllib.parse.urlsplit(origin).netloc != self.headers.get("Host"):
            return self._json(403, {"error": "a write from another origin"})
        body = self._body()
        if body is None:
            return self._json(413, {"error": f"a request body is at most {MAX_BODY} bytes"})
        if path == "/login":
            return self._login(body)
        if path != "/api/score":
            return self._json(404, {"error": "no such endpoint"})
        rater = self._rater()
        if rater is None:
            return self._json(401, {"error": "log in first"})
        if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
            return self._json(415, {"error": "send application/json"})
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return self._json(400, {"error": "not JSON"})
        if not isinstance(data, dict) or set(data) - {"unit", "item", "score", "comment"}:
            return self._json(400, {"error": "send an object with unit, item, score and (for patterns) comment"})
        try:
            row = self.app.db.record(rater, data.get("unit"), data.get("item"), data.get("score"), data.get("comment", ""))
        except D.BadScore as exc:
            return self._json(400, {"error": str(exc)})
        return self._json(200, {"ok": True, "id": row})

    def _login(self, body: bytes):
        app = self.app
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        name = (form.get("name") or [""])[0]
        if app.password is not None and not hmac.compare_digest(
                (form.get("password") or [""])[0].encode(), app.password.encode()):
            return self._send(401, app.render("login.html", need_password=True, error="Wrong password."))
        try:
            name = app.db.add_rater(name)
        except D.BadScore as exc:
            return self._send(400, app.render("login.html", need_password=app.password is not None, error=str(exc)))
        return self._redirect("/next", cookie=app.cookie_for(name))


def make_server(db: D.StudyDb, host: str = "127.0.0.1", port: int = 0, password: str | None = None) -> ThreadingHTTPServer:
    """The server, bound and ready for `serve_forever()`.

    Args:
        db: the study.
        host: the address to bind; anything but loopback requires a password.
        port: 0 for a free port.
        password: the shared password raters give (required beyond loopback).
    Raises:
        ValueError: a host beyond loopback without a password.
    """
    if host not in LOOPBACK and not password:
        raise ValueError(f"--host {host} serves beyond this machine: set a shared password "
                         "(HUMANLLM_ANNOTATE_PASSWORD or --password-file)")
    handler = type("StudyHandler", (Handler,), {"app": App(db, password or None)})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
