"""score-bench: evaluate and train LLM self-correction (SCoRe, Kumar et al. 2024) on verifiable tasks."""

__version__ = "0.1.0"
