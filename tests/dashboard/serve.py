"""Serve a dashboard from a background thread on 127.0.0.1 (tests and the screenshot script)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dash
from werkzeug.serving import make_server


@contextmanager
def serving(app: dash.Dash, port: int) -> Iterator[str]:
    server = make_server("127.0.0.1", port, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="dash-test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
