"""Running a test server from the command line: print its address, serve until Ctrl-C or kill."""

from __future__ import annotations

import time


def serve_until_killed(server) -> None:
    """Start `server` (a context manager with `base_url`), print the address, wait for Ctrl-C."""
    with server:
        print(server.base_url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
