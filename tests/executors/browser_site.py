"""A tiny login site on loopback for the browser tests (stdlib http.server in a thread)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast
from urllib.parse import parse_qs, urlsplit

from tests.helpers import free_port

LOGIN_PAGE = b"""<!doctype html>
<html><head><title>Sign in</title></head>
<body>
  <form method="post" action="/session">
    <input id="user" name="user"> <input id="password" name="password" type="password">
    <button id="submit" type="submit">Sign in</button>
  </form>
  <a id="elsewhere" href="http://localhost:%d/login">same site, other host name</a>
  <script>console.log("login page ready")</script>
</body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/login":
            self._send(200, LOGIN_PAGE % cast(ThreadingHTTPServer, self.server).server_port)
        elif url.path == "/welcome":
            user = parse_qs(url.query).get("user", ["?"])[0]
            page = f"<title>Welcome {user}</title><h1>Welcome, {user}!</h1>"
            self._send(200, page.encode())
        else:
            self._send(404, b"<title>Not found</title>")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        user = form.get("user", [""])[0]
        if user and form.get("password", [""])[0] == "s3cret":
            self._send(303, b"", {"Location": f"/welcome?user={user}"})
        else:
            self._send(401, b"<title>Sign in failed</title>")


@contextmanager
def login_site() -> Iterator[str]:
    """Serve the site on 127.0.0.1; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
