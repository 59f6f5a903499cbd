"""What the local web apps (`view`, `annotate`) share: the address to print and serving until Ctrl-C."""

from __future__ import annotations

import webbrowser


def url_of(server) -> str:
    """The address a browser opens for `server` (a wildcard host is shown as 127.0.0.1)."""
    host, port = server.server_address[:2]
    host = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def serve_until_interrupted(server, url: str, open_browser: bool) -> int:
    """Open `url` in the browser if asked, serve until Ctrl-C, then close the socket; exit code 0."""
    if open_browser:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
