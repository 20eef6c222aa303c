"""The one place environment variables are read."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path | None:
    """SCORE_BENCH_DATA_DIR: a directory holding local copies of datasets (e.g. math/), or None."""
    value = os.environ.get("SCORE_BENCH_DATA_DIR")
    return Path(value) if value else None


def allow_unsafe_code() -> bool:
    """SCORE_BENCH_UNSAFE_CODE=1 lets code run without isolation where no sandbox exists. Never default."""
    return os.environ.get("SCORE_BENCH_UNSAFE_CODE") == "1"


def api_key(variable: str = "OPENAI_API_KEY") -> str | None:
    """The endpoint backend's API key (OPENAI_API_KEY by default), or None. Read here and handed to the client
    only: it never enters a config, a results file or a log line."""
    return os.environ.get(variable) or None


def mkl_reproducibility_mode() -> str | None:
    """MKL_CBWR: MKL's conditional numerical reproducibility mode (harness.runtime.cpu_kernels sets it), or None."""
    return os.environ.get("MKL_CBWR") or None
