"""A fake Hugging Face Hub on 127.0.0.1 for tests: the endpoints huggingface_hub's `create_repo`
and `upload_folder` call (repo creation, card validation, preupload, commit), answering every file as a regular
upload and keeping what was committed in memory.

    with FakeHub() as hub:                       # then HF_ENDPOINT=hub.url
        ...; hub.repos["me/data"].files["README.md"] -> bytes
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import attrs


@attrs.define
class Repo:
    private: bool
    files: dict[str, bytes] = attrs.Factory(dict)
    commits: list[str] = attrs.Factory(list)


@attrs.define
class FakeHub:
    """Refuses requests without `Authorization: Bearer <token>` when `token` is set."""

    token: str | None = None
    repos: dict[str, Repo] = attrs.Factory(dict)
    requests: list[str] = attrs.Factory(list)
    cards: list[dict] = attrs.Factory(list)  # front matter of each README validated
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeHub":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length", 0)))

        def do_POST(self) -> None:  # noqa: N802 - the http.server name
            hub.requests.append(f"POST {self.path}")
            body = self._body()
            if hub.token and self.headers.get("Authorization") != f"Bearer {hub.token}":
                return self._reply(401, {"error": "Invalid credentials in Authorization header"})
            parts = self.path.split("?")[0].strip("/").split("/")
            if parts[:3] == ["api", "repos", "create"]:
                req = json.loads(body)
                repo = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
                if req.get("type") != "dataset":
                    return self._reply(400, {"error": f"this fake Hub holds datasets, not {req.get('type')}"})
                if repo in hub.repos:
                    return self._reply(409, {"error": "You already created this dataset repo", "url": self._url(repo)})
                hub.repos[repo] = Repo(private=bool(req.get("private")) or req.get("visibility") == "private")
                return self._reply(200, {"url": self._url(repo), "name": repo})
            if parts == ["api", "validate-yaml"]:
                return self._validate_card(json.loads(body).get("content", ""))
            if parts[:2] == ["api", "datasets"] and len(parts) >= 6:
                repo, action = f"{parts[2]}/{parts[3]}", parts[4]
                if repo not in hub.repos:
                    return self._reply(404, {"error": f"Repository {repo} not found"})
                if action == "preupload":
                    files = json.loads(body)["files"]
                    return self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                        "shouldIgnore": False} for f in files]})
                if action == "commit":
                    return self._commit(hub.repos[repo], repo, body)
            return self._reply(404, {"error": f"the fake Hub does not serve {self.path}"})

        def do_GET(self) -> None:  # noqa: N802
            hub.requests.append(f"GET {self.path}")
            self._reply(404, {"error": f"the fake Hub does not serve {self.path}"})

        def _validate_card(self, content: str) -> None:
            """Like the Hub: the README's front matter must be a YAML mapping."""
            import yaml

            if not content.startswith("---\n"):
                return self._reply(200, {})
            try:
                meta = yaml.safe_load(content[4:content.index("\n---", 3)])
            except (ValueError, yaml.YAMLError) as exc:
                return self._reply(400, {"error": f"invalid YAML front matter: {exc}"})
            if not isinstance(meta, dict):
                return self._reply(400, {"error": "the front matter is not a mapping"})
            hub.cards.append(meta)
            return self._reply(200, {})

        def _commit(self, repo: Repo, name: str, body: bytes) -> None:
            for line in body.decode().splitlines():
                row = json.loads(line)
                if row["key"] == "header":
                    repo.commits.append(row["value"]["summary"])
                elif row["key"] == "file":
                    value = row["value"]
                    if value.get("encoding") != "base64":
                        return self._reply(400, {"error": f"unexpected encoding {value.get('encoding')}"})
                    repo.files[value["path"]] = base64.b64decode(value["content"])
                else:
                    return self._reply(400, {"error": f"this fake Hub takes regular files only, not {row['key']}"})
            oid = f"{len(repo.commits):040x}"
            self._reply(200, {"commitUrl": f"{self._url(name)}/commit/{oid}", "commitOid": oid})

        def _url(self, repo: str) -> str:
            return f"{hub.url}/datasets/{repo}"

    return Handler
