"""Hugging Face `evaluate` modules for score-bench's metrics, loadable from a local path:

    import evaluate
    from score_bench.evaluate_metrics import SELF_CORRECTION
    metric = evaluate.load(SELF_CORRECTION)   # or evaluate.load("path/to/score_bench/evaluate_metrics/self_correction")
"""

from pathlib import Path

SELF_CORRECTION = str(Path(__file__).resolve().parent / "self_correction")
"""Directory of the self_correction module (Accuracy@t1/t2, Δ, Δi→c, Δc→i)."""
