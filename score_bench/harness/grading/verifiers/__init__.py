"""Verifiers: task-agnostic graders. Tasks pick one and hand it extracted answers."""
