"""One error family, so the CLI can turn any expected failure into a one-line message and exit code."""


class ScoreBenchError(Exception):
    """Base of every error score-bench raises on purpose (bad input, missing plugin, unsafe setup)."""


class InputError(ScoreBenchError):
    """The user's input (a file, an argument, a row) is malformed or refers to something that does not exist."""


class PluginNotFound(ScoreBenchError):
    """A task, trainer or backend name that no entry point registers."""


class SandboxUnavailable(ScoreBenchError):
    """No process isolation is available and the user did not opt into running code unsafely."""


def extra_hint(extra: str) -> str:
    """How to install an optional feature, for the error that finds it missing. No package registry serves
    score-bench: it installs from its clone or from a wheel built there (README, Install)."""
    return f"install score-bench with its [{extra}] extra (in the clone: pip install '.[{extra}]')"
