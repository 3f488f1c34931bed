"""Serve a WSGI app on 127.0.0.1 in a background thread, and stop server processes (tests, `make run`,
benchmarks)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
from dataclasses import dataclass, field

from werkzeug.serving import BaseWSGIServer, make_server


@dataclass
class RunningServer:
    """A WSGI server running in a daemon thread; `url` has no trailing slash."""

    server: BaseWSGIServer
    thread: threading.Thread = field(repr=False)

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def mount(self, app) -> None:
        """Serve `app` from now on (the server reads its app on every request)."""
        self.server.app = app

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _not_ready(environ, start_response):
    start_response("503 Service Unavailable", [("Content-Type", "text/plain"), ("Retry-After", "1")])
    return [b"starting\n"]


def serve_in_thread(app=None, port: int = 0, host: str = "127.0.0.1") -> RunningServer:
    """Start `app` on host:port (0 = a free port) in a daemon thread and return at once.

    Without `app` the server answers 503 until `mount` gives it one: bind first, learn the port, then
    build an app that needs its own URL, with no window in which another process can take the port.
    """
    app = app or _not_ready
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request drowns everything else
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name=f"wsgi-{server.server_port}", daemon=True)
    thread.start()
    return RunningServer(server=server, thread=thread)


def serve_forever(app, port: int, host: str = "127.0.0.1") -> None:
    """Serve `app` in the foreground with a production WSGI server until interrupted."""
    from waitress import serve

    serve(app, host=host, port=port, threads=16, ident="keepstone")


def stop_process_groups(procs: list[subprocess.Popen], grace: float = 20) -> None:
    """SIGTERM each process started with `start_new_session=True` and its children, SIGKILL the ones
    still running after `grace` seconds."""
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)
