"""A small OpenAI-compatible chat-completions endpoint on 127.0.0.1, for the openai backend's tests: a test double
whose answers and failures the tests choose, which no real server gives on demand. The real thing, `vllm serve`
of SmolLM2, is in tests/backends_vllm/test_openai_serve.py (run by `make test-vllm`)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

JSON = "application/json"


class ChatEndpoint:
    """GET /v1/models lists `served` (or answers `models`, a (status, body, content type) the test chooses);
    GET /version says 9.9.9-double. POST /v1/chat/completions answers, in order, the `replies` queued (each
    (status, body, content type)), then the statuses queued in `failures` (e.g. 429, 503, with a short
    retry-after), then 200s echoing the request's last message and seed. Records every request and its headers."""

    def __init__(self, served=("served-model",), failures=(), replies=(), models=None):
        self.served = list(served)
        self.failures = list(failures)
        self.replies = list(replies)
        self.models = models
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status, body, kind=JSON, headers=()):
                data = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(data)))
                for key, value in headers:
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/v1/models":
                    self._send(*endpoint.models) if endpoint.models else self._send(200, {
                        "object": "list", "data": [{"id": name, "object": "model", "owned_by": "test-double",
                                                    "max_model_len": 2048} for name in endpoint.served]})
                elif self.path == "/version":
                    self._send(200, {"version": "9.9.9-double"})
                else:
                    self._send(404, {"error": {"message": "no such route"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                endpoint.requests.append(body)
                endpoint.headers.append(dict(self.headers))
                if endpoint.replies:
                    self._send(*endpoint.replies.pop(0))
                elif endpoint.failures:
                    status = endpoint.failures.pop(0)
                    # a short retry-after: the client's backoff is still exponential, just not stretched by the server
                    self._send(status, {"error": {"message": f"status {status} from the double"}},
                               headers=[("retry-after-ms", "10")])
                elif body["model"] not in endpoint.served:
                    self._send(404, {"error": {"message": f"model {body['model']} does not exist"}})
                else:
                    question = body["messages"][-1]["content"]
                    self._send(200, completion(f"echo {question} seed {body['seed']}", model=body["model"]))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def completion(content="Answer: 1", model="served-model") -> str:
    """A well-formed chat-completion reply holding `content`."""
    return json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": model,
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": content}}],
                       "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}})
