"""Everything that knows no specific task or trainer, in layers; each imports only from the layers above it:

- contracts: the types that flow task -> rollout -> verifier -> metrics, the Task, Verifier and Backend
  contracts, errors, the plugin registry, config-field checks and the progress protocol.
- runtime: what a run needs from its machine and disk: environment settings, pinned CPU kernels, bounded reads
  of user files, atomic writes and provenance, output locks and guards, saves that survive a full disk.
- grading: verifiers, the sandbox that runs programs, and majority voting over answers.
- generation: backends (transformers, vLLM, an OpenAI-compatible endpoint), the rollout of multi-attempt
  conversations, prompt overrides, GGUF import.
- evaluation: `eval`, `scale` and `grade` as Python APIs, the samples log, metrics, repair sets, result schemas.
- training: the run skeleton every trainer runs on (run, sampler), the public `train`, accumulation, FSDP,
  memory options and estimates, resume, learning-signal checks.
- reports: reading finished runs (evaluations and training logs): `compare`, the HTML viewer, plots.
"""
