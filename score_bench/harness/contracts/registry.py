"""Plugin lookup through Python entry points, with a near-match suggestion for unknown names."""

from __future__ import annotations

import difflib
from functools import cache
from importlib.metadata import EntryPoint, entry_points

from score_bench.harness.contracts.errors import InputError, PluginNotFound

TASKS = "score_bench.tasks"
TRAINERS = "score_bench.trainers"
BACKENDS = "score_bench.backends"


@cache
def _entry_points(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def available(group: str) -> list[str]:
    return sorted(_entry_points(group))


def load(group: str, name: str):
    """The class or factory registered under `name` in `group`."""
    registered = _entry_points(group)
    if name not in registered:
        kind = group.rsplit(".", 1)[-1].rstrip("s")
        near = difflib.get_close_matches(name, list(registered), n=1)
        hint = f" Did you mean '{near[0]}'?" if near else ""
        raise PluginNotFound(
            f"unknown {kind} '{name}'. Available: {', '.join(sorted(registered)) or 'none'}.{hint}"
        )
    return registered[name].load()


def load_task(name: str, **options):
    """An instance of the task registered as `name`, built with its options (e.g. data_dir), each checked and
    typed as the task's constructor declares (harness.contracts.fields.task_options): a bad option, from the command
    line or a config's task_options, is an InputError naming it and the task."""
    from score_bench.harness.contracts.fields import task_options

    typed = task_options(name, options)
    try:
        return load(TASKS, name)(**typed)
    except TypeError as err:
        raise InputError(f"bad option for task '{name}': {err}") from None
