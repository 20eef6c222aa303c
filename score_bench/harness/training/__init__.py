"""Training machinery every trainer shares: `train` (the public Python API of `score-bench train`), the run
skeleton (run: one training run; sampler: its rollouts), micro-batch accumulation, FSDP on CPU, memory options and
the memory estimate, resumable states and the learning-signal check. The trainers themselves are plugins
(score_bench/trainers)."""
