"""The worker's Prometheus endpoint: GET /metrics on the control network (the container's
port, never published on the host), read from the database at each scrape
(fta.operators.metrics)."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fta.db import session_scope, utcnow
from fta.operators.metrics import collect
from fta.prometheus import CONTENT_TYPE, render

log = logging.getLogger(__name__)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404)
            return
        try:
            with session_scope() as session:
                body = render(collect(session, utcnow())).encode()
        except Exception:  # the database away: the scrape fails, the worker goes on
            log.exception("metrics not read")
            self.send_error(503)
            return
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # a scrape every few seconds is not worth a log line


# The container's own interfaces: its networks (control, Docker API), never a host port.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104


def serve_metrics(port: int, host: str = ALL_INTERFACES) -> ThreadingHTTPServer:
    """Serves /metrics on `port` from a daemon thread; returns the server (shutdown()
    stops it)."""
    server = ThreadingHTTPServer((host, port), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics on port %d", server.server_address[1])
    return server
