"""Generation backends, chosen by name. Each lives in its own module and is imported only when asked for, so
an optional backend's heavy dependency is needed only by the users who pick it."""

from __future__ import annotations

import difflib

from score_bench.harness.errors import PluginNotFound, ScoreBenchError
from score_bench.harness.generation import Backend

__all__ = ["BACKENDS", "load_backend"]

BACKENDS = ("transformers", "vllm")


def load_backend(name: str = "transformers", **options) -> Backend:
    """A ready backend; `options` go to the backend's loader (for transformers: model, dtype, device,
    chat_template, batch_size — see backends.transformers.TransformersBackend.load)."""
    if name == "transformers":
        from score_bench.harness.backends.transformers import TransformersBackend

        return TransformersBackend.load(**options)
    if name == "vllm":
        raise ScoreBenchError("the vllm backend is not available yet; when it is: pip install 'score-bench[vllm]'")
    near = difflib.get_close_matches(name, BACKENDS, n=1)
    hint = f" Did you mean '{near[0]}'?" if near else ""
    raise PluginNotFound(f"unknown backend '{name}'. Available: {', '.join(BACKENDS)}.{hint}")
