"""CPU kernels pinned to AVX2, so the embedded base model and the demo give the same numbers on any x86-64 CPU.

PyTorch picks its vectorised kernels (ATen) and MKL its GEMM code path by the CPU it runs on, and AVX-512 and AVX2
code sum in different orders: on this project's machines the same SCoRe step gave losses that differ in the 7th
digit. At temperature 1 a sampled token flips when its random draw falls inside such a difference, and from there
a training run follows another path, so committed demo numbers would hold only on CPUs like the one that made
them. Pinned, the build and every demo command run the same code on any CPU with AVX2 (MKL's conditional
numerical reproducibility mode guarantees it for its GEMMs at a fixed thread count; the demo runs one thread per
process). Other commands run the fastest kernels of the machine.
"""

from __future__ import annotations

import os
import sys

from score_bench.harness.contracts.errors import ScoreBenchError
from score_bench.harness.runtime.settings import mkl_reproducibility_mode

__all__ = ["PINNED", "pin_cpu_kernels", "cpu_capability"]

PINNED = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2,STRICT"}
"""The environment that pins them; a child process started with it runs pinned from its first operation."""


def pin_cpu_kernels() -> None:
    """Pin this process. Both libraries read their variable once, at their first operation, so this must run
    before any tensor operation; a process that already ran one is a programming error, said so."""
    os.environ.update(PINNED)
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    if capability not in ("AVX2", "DEFAULT"):  # DEFAULT: a CPU without AVX2, which no kernel choice can match
        raise ScoreBenchError(f"CPU kernels could not be pinned to AVX2 (torch already chose {capability}); "
                              "pin_cpu_kernels must run before the first tensor operation")


def cpu_capability() -> str | None:
    """The kernel set this process runs (AVX512, AVX2, DEFAULT) and MKL's reproducibility mode, for provenance;
    None when torch is not loaded (reading it would load torch and fix the choice)."""
    if "torch" not in sys.modules:
        return None
    mode = mkl_reproducibility_mode()
    return sys.modules["torch"].backends.cpu.get_cpu_capability() + (f", MKL_CBWR={mode}" if mode else "")
