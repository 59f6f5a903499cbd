"""`humanllm view`: a read-only local web app over build and evaluation folders.

folders.py (what a folder is), index.py (the SQLite/FTS5 index and list queries), evidence.py
(verdicts beside the turns they quote), render.py (the Jinja2 environment, shared with the
static report.html of `eval`), app.py (pages and the HTTP server), cli.py (the command).
"""
