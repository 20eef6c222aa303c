"""Generation backends, chosen by name. Each lives in its own module and is imported only when asked for, so
an optional backend's heavy dependency is needed only by the users who pick it."""

from __future__ import annotations

import difflib

from score_bench.harness.contracts.errors import PluginNotFound
from score_bench.harness.contracts.generation import Backend

__all__ = ["BACKENDS", "TRANSPORT_OPTIONS", "load_backend", "release_sampler"]

BACKENDS = ("transformers", "vllm", "openai")
TRANSPORT_OPTIONS = frozenset({"max_concurrency", "request_timeout", "max_retries"})
"""Backend options that change how requests travel, not what is generated (the openai backend's): a run may
resume with other values (a run that timed out, with a longer timeout), so they are no part of its identity."""


def load_backend(name: str = "transformers", **options) -> Backend:
    """A ready backend; `options` go to the backend's loader (model, dtype, device, chat_template, batch_size,
    plus each backend's own: see TransformersBackend.load, VllmBackend.load, OpenAIBackend.load). The vllm and
    openai backends import their optional dependency here, and say which extra to install when it is missing."""
    if name == "transformers":
        from score_bench.harness.generation.backends.transformers import TransformersBackend

        return TransformersBackend.load(**options)
    if name == "vllm":
        from score_bench.harness.generation.backends.vllm import VllmBackend

        return VllmBackend.load(**options)
    if name == "openai":
        from score_bench.harness.generation.backends.openai import OpenAIBackend

        return OpenAIBackend.load(**options)
    near = difflib.get_close_matches(name, BACKENDS, n=1)
    hint = f" Did you mean '{near[0]}'?" if near else ""
    raise PluginNotFound(f"unknown backend '{name}'. Available: {', '.join(BACKENDS)}.{hint}")


def release_sampler(backend: Backend) -> None:
    """Once the conversations generated so far are finished (a rollout chunk, an evaluation): free what the
    sampler keeps to continue them (the transformers backend's prefix KV store, up to its 1 GiB budget). A trainer
    holding it would carry the KV of every conversation of the step through scoring and the optimiser step, whose
    peak then grows with the batch; the step changes the weights, which would empty the store anyway."""
    if hasattr(backend, "release"):
        backend.release()
