"""--debug is taken after the command as before it (and left alone as an option's value); eval and scale
refuse an --output that is the model's own directory, writing nothing."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback_before_or_after_the_command(cli, tmp_path, monkeypatch, where):
    from score_bench.harness.reports import compare

    monkeypatch.setattr(compare, "compare_runs", lambda *a, **k: 1 / 0)
    monkeypatch.delenv("SCORE_BENCH_DEBUG", raising=False)
    args = ["--debug", "compare", tmp_path] if where == "before" else ["compare", "--debug", tmp_path]
    shown = cli(*args)
    assert shown.code == 1 and "Traceback" in shown.stderr and "ZeroDivisionError" in shown.stderr
    assert "Traceback" not in cli("compare", tmp_path).stderr  # not left on for the next command


def test_debug_as_an_option_value_is_the_value():
    from score_bench.cli import _take_debug

    assert _take_debug(["eval", "--stop", "--debug", "--model", "m"]) == (["eval", "--stop", "--debug",
                                                                          "--model", "m"], False)
    assert _take_debug(["eval", "--model", "m", "--debug"]) == (["eval", "--model", "m"], True)
    assert _take_debug(["grade", "--", "--debug"]) == (["grade", "--", "--debug"], False)


@pytest.mark.parametrize("command", ["eval", "scale"])
def test_output_equal_to_the_model_is_refused(cli, tiny_model, snapshot, command):
    before = snapshot(tiny_model)
    done = cli(command, "--model", tiny_model, "--task", "arith", "--limit", "2", "--output", tiny_model)
    assert done.code == 2, done.stderr
    assert len(done.error_lines) == 1 and "is the model directory" in done.error_lines[0], done.stderr
    assert snapshot(tiny_model) == before
