"""Trainer plugins (SCoRe, Pair-SFT, STaR), registered in the `score_bench.trainers` entry-point group."""
