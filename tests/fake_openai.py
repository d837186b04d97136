"""A small OpenAI-compatible server for tests: ``POST /v1/chat/completions`` and ``GET /v1/models``.

It answers ``"echo: <last user message>"``, with ``usage`` counted in whitespace-separated
words, with or without streaming (Server-Sent Events, honouring
``stream_options.include_usage`` unless told not to). ``script`` lists what the next
requests get instead of a normal answer, one entry per request:

- an HTTP status (``429``, ``500``, ``401``...): an OpenAI-style error body, with
  ``Retry-After`` set to :attr:`FakeOpenAI.retry_after` when that is not None;
- ``"garbage"``: status 200 with a body that is not JSON;
- ``"not_completion"``: status 200 with JSON that is not a chat completion;
- ``"garbage_stream"``: a stream whose data line is not JSON;
- ``"truncated_stream"``: a stream that stops before its last chunk and ``[DONE]``.

Every request body and its headers are kept in :attr:`requests` for assertions. Run it by
hand with ``python -m tests.fake_openai --port 8000``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Scripted = int | str


@dataclass
class Received:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeOpenAI:
    """Start with ``with FakeOpenAI() as server:``; point clients at ``server.base_url``."""

    model: str = "fake-model"
    script: list[Scripted] = field(default_factory=list)
    retry_after: str | None = None
    honour_include_usage: bool = True
    port: int = 0
    requests: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> FakeOpenAI:
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self.port = int(server.server_address[1])
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def next_scripted(self) -> Scripted | None:
        with self._lock:
            return self.script.pop(0) if self.script else None


def _words(text: Any) -> int:
    return len(str(text).split())


def _answer(body: dict[str, Any]) -> tuple[str, dict[str, int]]:
    messages = body.get("messages") or []
    last_user = next(
        (m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), ""
    )
    content = f"echo: {last_user}"
    prompt = sum(_words(m.get("content", "")) for m in messages)
    completion = _words(content)
    return content, {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the connection closes after each answer: no chunking

    def log_message(self, format: str, *args: object) -> None:
        pass

    @property
    def fake(self) -> FakeOpenAI:
        return self.server.fake  # type: ignore[attr-defined,no-any-return]

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._raw(status, json.dumps(obj).encode(), "application/json", headers)

    def _raw(
        self, status: int, body: bytes, media: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._json(
                200,
                {
                    "object": "list",
                    "data": [{"id": self.fake.model, "object": "model", "owned_by": "fake"}],
                },
            )
        else:
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._json(400, {"error": {"message": "body is not JSON", "type": "invalid_request"}})
            return
        self.fake.requests.append(Received(self.path, body, dict(self.headers.items())))
        scripted = self.fake.next_scripted()
        if isinstance(scripted, int):
            headers = {"Retry-After": self.fake.retry_after} if self.fake.retry_after else {}
            self._json(
                scripted,
                {"error": {"message": f"scripted status {scripted}", "type": "scripted"}},
                headers,
            )
        elif scripted == "garbage":
            self._raw(200, b"<html>upstream proxy error</html>", "application/json")
        elif scripted == "not_completion":
            self._json(200, {"hello": "world"})
        elif body.get("stream"):
            self._stream(body, scripted)
        else:
            content, usage = _answer(body)
            self._json(
                200,
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", self.fake.model),
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": content},
                        }
                    ],
                    "usage": usage,
                },
            )

    def _stream(self, body: dict[str, Any], scripted: Scripted | None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        for chunk in self._chunks(body, scripted):
            self.wfile.write(chunk)
            self.wfile.flush()

    def _chunks(self, body: dict[str, Any], scripted: Scripted | None) -> Iterator[bytes]:
        if scripted == "garbage_stream":
            yield b"data: {this is not json\n\n"
            return
        content, usage = _answer(body)
        model = body.get("model", self.fake.model)

        def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            obj = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": choices,
                **extra,
            }
            return b"data: " + json.dumps(obj).encode() + b"\n\n"

        yield b": keep-alive comment, ignored by clients\n\n"
        yield event([{"index": 0, "delta": {"role": "assistant", "content": ""}}])
        words = content.split(" ")
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            yield event([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
        if scripted == "truncated_stream":
            return
        yield event([{"index": 0, "delta": {}, "finish_reason": "stop"}])
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if wants_usage and self.fake.honour_include_usage:
            yield event([], usage=usage)
        yield b"data: [DONE]\n\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="a fake OpenAI-compatible server on loopback")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default="fake-model")
    args = parser.parse_args()
    with FakeOpenAI(model=args.model, port=args.port) as server:
        print(f"serving {server.base_url} (model {server.model}); Ctrl-C stops")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
