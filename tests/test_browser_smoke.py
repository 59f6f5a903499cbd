"""The browser the web-app tests use starts and renders a page served on 127.0.0.1."""

import http.server
import threading


def test_headless_chromium_renders_a_local_page(page, tmp_path):
    (tmp_path / "index.html").write_text("<h1 id='t'>&lt;script&gt; stays text</h1>", encoding="utf-8")
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
        assert page.inner_text("#t") == "<script> stays text"
        page.screenshot(path=str(tmp_path / "smoke.png"))
        assert (tmp_path / "smoke.png").stat().st_size > 0
    finally:
        server.shutdown()
