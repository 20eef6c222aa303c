"""Generation backends, one plugin per module, registered in the entry-point group `score_bench.backends` and
loaded by name. Each is imported only when asked for, so an optional backend's heavy dependency is needed only by
the users who pick it."""

from __future__ import annotations

import inspect

from score_bench.harness.contracts import registry
from score_bench.harness.contracts.generation import Backend

__all__ = ["TRANSPORT_OPTIONS", "load_backend", "takes_option"]

TRANSPORT_OPTIONS = frozenset({"max_concurrency", "request_timeout", "max_retries"})
"""Backend options that change how requests travel, not what is generated (the openai backend's): a run may
resume with other values (a run that timed out, with a longer timeout), so they are no part of its identity."""


def load_backend(name: str = "transformers", **options) -> Backend:
    """A ready backend; `options` go to the backend's loader (model, dtype, device, chat_template, batch_size,
    plus each backend's own: see TransformersBackend.load, VllmBackend.load, OpenAIBackend.load). The vllm and
    openai backends import their optional dependency there, and say which extra to install when it is missing.
    An unknown name lists the registered backends and the nearest match."""
    return registry.load(registry.BACKENDS, name).load(**options)


def takes_option(name: str, option: str) -> bool:
    """Whether the backend registered as `name` takes `option` (a keyword of its `load`)."""
    return option in inspect.signature(registry.load(registry.BACKENDS, name).load).parameters
