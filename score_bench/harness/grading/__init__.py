"""Judging answers: the verifiers, the sandbox that runs programs in a child process, majority voting."""
