"""Generation on any OpenAI-compatible chat-completions endpoint (`vllm serve`, SGLang, llama.cpp's server,
hosted APIs) through the `openai` client (optional extra `score-bench[openai]`).

The server applies the model's chat template and decodes; this module only sends conversations. Retries with
exponential backoff (429, 408, 409, 5xx, connection errors and timeouts; a server's Retry-After is honoured) and
the per-request timeout are the client's own (`max_retries`, `timeout`), not re-implemented here. The API key
is read from the environment (harness.runtime.settings.api_key) and handed to the client only: `describe()` and every
error message leave it out.

Token ids: vLLM's server returns the sampled token ids when a request asks `return_token_ids` (a vLLM extension
of the chat API), so completions from `vllm serve` carry them; other servers do not report them and completions
carry an empty `token_ids` (Completion's "not reported").
"""

from __future__ import annotations

import importlib.util
import json
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, Sequence
from urllib.parse import urlparse

from score_bench.harness.contracts.errors import InputError, ScoreBenchError, extra_hint
from score_bench.harness.contracts.generation import Backend, Completion, GenerationParams
from score_bench.harness.contracts.types import Message
from score_bench.harness.generation.backends._seeds import conversation_seeds
from score_bench.harness.runtime import settings

__all__ = ["OpenAIBackend"]

_NO_KEY = "EMPTY"
"""Sent when no key is set: local servers started without --api-key accept any bearer token."""


def _import_openai():
    if importlib.util.find_spec("openai") is None:
        raise ScoreBenchError(f"the openai backend needs the openai client: {extra_hint('openai')}")
    import openai

    return openai


class OpenAIBackend(Backend):
    """Implements harness.contracts.generation.Backend on a chat-completions endpoint."""

    def __init__(self, client, model: str, base_url: str, *, max_concurrency: int, endpoint: dict, secret: str):
        self.client = client
        self.model = model
        self.base_url = base_url
        self.max_concurrency = max_concurrency
        self.endpoint = endpoint
        """What the server says about itself: model id, owner, context length, version (results record it)."""
        self._secret = secret
        self.token_ids = endpoint.get("owned_by") == "vllm"
        """Ask for the sampled token ids: only vLLM's server knows `return_token_ids`; hosted APIs reject
        unknown fields."""

    @classmethod
    def load(cls, model: str, *, base_url: str | None = None, max_concurrency: int = 8,
             request_timeout: float = 600.0, max_retries: int = 5, dtype: str = "auto", device: str = "auto",
             chat_template=None, batch_size: int | None = None,
             prefix_cache_mb: float | None = None) -> "OpenAIBackend":
        """Connect to `base_url` (e.g. http://127.0.0.1:8000/v1) and check that it serves `model` (GET /models).
        dtype, device and chat_template belong to the server; anything but their defaults is an error here.
        batch_size and prefix_cache_mb are accepted for the common eval signature: concurrency is
        max_concurrency, and the server keeps its own caches."""
        openai = _import_openai()
        base_url = _check_base_url(base_url)
        if max_concurrency < 1:
            raise InputError(f"max concurrency must be at least 1, got {max_concurrency}")
        if not request_timeout > 0:
            raise InputError(f"request timeout must be positive, got {request_timeout}")
        if max_retries < 0:
            raise InputError(f"max retries must be 0 or more, got {max_retries}")
        for name, value in (("dtype", dtype), ("device", device)):
            if value != "auto":
                raise InputError(f"--{name} {value} does not apply to the openai backend: the server chose it")
        if chat_template is not None:
            raise InputError("--chat-template does not apply to the openai backend: the server applies its own "
                             "(e.g. vllm serve --chat-template)")
        secret = settings.api_key() or _NO_KEY
        client = openai.OpenAI(base_url=base_url, api_key=secret, timeout=request_timeout, max_retries=max_retries)
        endpoint = _served_model(openai, client, model, base_url, secret)
        endpoint.update(_server_version(base_url, request_timeout))
        return cls(client, model, base_url, max_concurrency=max_concurrency, endpoint=endpoint, secret=secret)

    def describe(self) -> dict:
        """What results.json records about the model: the endpoint and what it reported (never the key)."""
        return {"source": self.base_url, "weights_sha256": None, "endpoint": dict(self.endpoint)}

    @property
    def context(self) -> tuple[int | None, str]:
        """The context the endpoint says it serves (vLLM's max_model_len), when it says one."""
        served = self.endpoint.get("max_model_len")
        return (served if isinstance(served, int) else None), "the endpoint's max_model_len"

    def generate(self, conversations: Sequence[list[Message]], params: GenerationParams) -> list[Completion]:
        if not conversations:
            return []
        seeds = conversation_seeds(params.seed, conversations)
        results: list[Completion | None] = [None] * len(conversations)
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(conversations))) as pool:
            futures = {pool.submit(self._one, c, params, s): i for i, (c, s) in enumerate(zip(conversations, seeds))}
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in done if f.exception() is not None), None)
            if failed is not None:
                for future in pending:
                    future.cancel()
                raise failed.exception()
            for future, index in futures.items():
                results[index] = future.result()
        return results  # type: ignore[return-value]

    def _one(self, conversation: list[Message], params: GenerationParams, seed: int) -> Completion:
        openai = _import_openai()
        request: dict[str, Any] = {"model": self.model, "messages": conversation,
                                   "max_tokens": params.max_new_tokens, "temperature": params.temperature,
                                   "top_p": params.top_p, "seed": seed}
        if params.stop:
            request["stop"] = list(params.stop)
        if self.token_ids:
            request["extra_body"] = {"return_token_ids": True}
        try:
            raw = self.client.chat.completions.with_raw_response.create(**request)
        except openai.APIStatusError as err:
            raise ScoreBenchError(self._redact(
                f"endpoint {self.base_url} answered {err.status_code} for model '{self.model}' "
                f"(after {self.client.max_retries} retries where retryable): {_first_line(err)}")) from None
        except openai.APIConnectionError as err:
            raise ScoreBenchError(self._redact(
                f"endpoint {self.base_url} unreachable after {self.client.max_retries} retries "
                f"({_first_line(err.__cause__ or err)}); finished chunks are saved: rerun the same command to "
                f"resume")) from None
        choice, n_tokens = _completion(raw.text)
        if choice is None:
            raise ScoreBenchError(self._redact(
                f"endpoint {self.base_url} answered POST /chat/completions (HTTP {raw.status_code}) with no chat "
                f"completion: {_first_bytes(raw.text)}"))
        ids = tuple(choice.get("token_ids") or ())
        return Completion(text=choice["message"]["content"] or "", n_tokens=len(ids) if n_tokens is None else n_tokens,
                          token_ids=ids)

    def _redact(self, message: str) -> str:
        return message.replace(self._secret, "***") if self._secret != _NO_KEY else message


def _completion(text: str) -> tuple[dict | None, int | None]:
    """(the first choice, the completion tokens the usage reports or None) of a chat-completions reply; the choice
    is None when the reply is not one (HTML from a proxy, other JSON, no choices, no message text)."""
    try:
        body = json.loads(text)
        choice = body["choices"][0]
        content, ids = choice["message"]["content"], choice.get("token_ids") or []
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
        return None, None
    if not isinstance(content, (str, type(None))) or not all(type(i) is int for i in ids):
        return None, None
    usage = body.get("usage")
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return choice, tokens if type(tokens) is int else None


def _first_bytes(text: str, shown: int = 120) -> str:
    """The start of what a server sent, on one line, for an error message."""
    flat = " ".join(text.split())
    return "an empty body" if not flat else repr(flat if len(flat) <= shown else flat[:shown] + "...")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _check_base_url(base_url: str | None) -> str:
    if not base_url:
        raise InputError("the openai backend needs --base-url, e.g. http://127.0.0.1:8000/v1")
    parsed = urlparse(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError(f"base url '{base_url}' is not an http(s) URL, e.g. http://127.0.0.1:8000/v1")
    return base_url.rstrip("/")


def _served_model(openai, client, model: str, base_url: str, secret: str) -> dict:
    """The /models entry for `model`, or one line saying the server is down, refused the key or serves other
    models. Checked before anything is written, so a typo costs no run directory."""
    redact = (lambda text: text.replace(secret, "***")) if secret != _NO_KEY else (lambda text: text)
    try:
        raw = client.with_options(max_retries=1).models.with_raw_response.list()
    except openai.AuthenticationError:
        raise InputError(f"endpoint {base_url} refused the API key (set it in OPENAI_API_KEY)") from None
    except openai.APIStatusError as err:
        raise InputError(redact(f"endpoint {base_url} answered {err.status_code} to GET /models: "
                                f"{_first_line(err)}")) from None
    except openai.APIConnectionError as err:
        raise InputError(redact(f"cannot reach endpoint {base_url} ({_first_line(err.__cause__ or err)}); "
                                f"is the server running?")) from None
    try:
        by_id = {entry["id"]: entry for entry in json.loads(raw.text)["data"] if isinstance(entry["id"], str)}
    except (ValueError, KeyError, TypeError, RecursionError):
        raise InputError(redact(f"endpoint {base_url} answered GET /models (HTTP {raw.status_code}) with no model "
                                f"list: {_first_bytes(raw.text)}")) from None
    if model not in by_id:
        names = ", ".join(sorted(by_id)) or "none"
        raise InputError(f"model '{model}' is not served at {base_url}; it serves: {names}")
    entry = by_id[model]
    return {"model_id": entry["id"], "owned_by": entry.get("owned_by"), "root": entry.get("root"),
            "max_model_len": entry.get("max_model_len")}


def _server_version(base_url: str, timeout: float) -> dict:
    """The version the server reports at /version (vLLM and SGLang do), and its HTTP Server header; None where
    a server says nothing."""
    import httpx

    root = base_url.removesuffix("/v1")
    try:
        response = httpx.get(f"{root}/version", timeout=min(timeout, 10.0))
        version = response.json().get("version") if response.status_code == 200 else None
        header = response.headers.get("server")
    except (httpx.HTTPError, ValueError, AttributeError):
        version, header = None, None
    return {"server_version": version if isinstance(version, str) else None, "server_header": header}
