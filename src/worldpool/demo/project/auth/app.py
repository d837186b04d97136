"""The login page of the sample project, served with the standard library."""

from __future__ import annotations

import html
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from auth.login import UserStore

STORE = UserStore()
STORE.sign_up("alice@example.com", "correct horse")

PAGE = """<!doctype html><html><head><title>{title}</title></head><body>
<h1>{title}</h1><p id="message">{message}</p>
<form method="post" action="/login">
<label>E-mail <input id="email" name="email"></label>
<label>Password <input id="password" name="password" type="password"></label>
<button id="submit" type="submit">Log in</button></form></body></html>"""


class Handler(BaseHTTPRequestHandler):
    def _send(self, title: str, message: str, status: int = 200) -> None:
        body = PAGE.format(title=html.escape(title), message=html.escape(message)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send("Log in", "")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        user = STORE.login(form.get("email", [""])[0], form.get("password", [""])[0])
        if user is None:
            self._send("Log in", "Wrong e-mail or password", status=401)
        else:
            self._send("Dashboard", f"Welcome, {user.email}")

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
