"""Producing attempts: the backends, the multi-attempt rollout that generates and grades them, prompt
overrides, and importing GGUF checkpoints for the backends to load."""
