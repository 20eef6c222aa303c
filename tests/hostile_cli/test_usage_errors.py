"""Usage errors are the parser's to report: click's usage line and message on stderr, exit 2, no traceback and no
"internal error" — whichever click typer parses with (the click package, or the copy newer typers vendor)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("args, message", [
    (["eval", "--bogus"], "No such option: --bogus"),
    (["tasks", "extra"], "unexpected extra argument"),
    (["eval", "--task", "arith"], "Missing option '--model'"),
    (["eval", "--model", "m", "--task", "arith", "--limit", "x"], "Invalid value for '--limit'"),
    (["train", "--task", "arith", "--trainer", "score", "--model", "m", "--output", "o", "--threads", "1.5"],
     "Invalid value for '--threads'"),
    (["nosuch"], "No such command 'nosuch'"),
], ids=["unknown-option", "extra-argument", "missing-required-option", "not-an-integer", "not-an-integer-float",
        "unknown-command"])
def test_usage_error_exits_2_with_the_usage_and_the_parser_message(cli, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = cli(*args)
    assert result.code == 2, result.stderr
    assert "Usage: score-bench" in result.stderr
    assert message in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert not any(tmp_path.iterdir())  # nothing written


def test_no_command_shows_the_help_and_exits_2(cli):
    result = cli()
    assert result.code == 2
    assert "Usage: score-bench" in result.stdout + result.stderr and "eval" in result.stdout + result.stderr


def test_help_exits_0(cli):
    result = cli("eval", "--help")
    assert result.code == 0 and "--max-new-tokens" in result.stdout
