"""`humanllm view`: a read-only local web app over build and evaluation folders, and drafts.

folders.py (what a folder is), index.py (the SQLite/FTS5 index and list queries), evidence.py
(verdicts beside the turns they quote), drafts.py (drafts of `humanllm draft` matched with their
traces), render.py (the Jinja2 environment, shared with the static report.html of `eval`), app.py
(pages and the HTTP server), cli.py (the command).
"""
