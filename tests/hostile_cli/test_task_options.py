"""A trainer config's task_options (`--set task_options=JSON`, or a YAML mapping) that the task cannot take
(issue #20 item 6): checked and typed as the task's constructor declares, as `--task-option` is, in one line
naming the option; never a crash in the task."""

from __future__ import annotations

import pytest


def _yaml(ws, text):
    (ws / "c.yaml").write_text(text, encoding="utf-8")
    return ["--config", ws / "c.yaml"]


CASES = {
    # case: (--set items, YAML text or None), what the one error line names
    "not-json": (["task_options=digits=2"], None, ["'task_options' expects dict", "digits=2"]),
    "a-json-array": (["task_options=[1, 2]"], None, ["'task_options' expects dict"]),
    "a-json-string": (['task_options="digits"'], None, ["'task_options' expects dict"]),
    "pairs-with-number-keys": (["task_options=[[1, 2]]"], None, ["'task_options' expects dict"]),
    "unknown-option": (['task_options={"colour": 1}'], None, ["task 'arith' does not accept option 'colour'"]),
    "text-for-a-number": (['task_options={"digits": "two"}'], None, ["'digits' expects int", "two"]),
    "fraction-for-an-integer": (['task_options={"digits": 2.5}'], None, ["'digits' expects int", "2.5"]),
    "null-for-an-integer": (['task_options={"digits": null}'], None, ["'digits' expects int"]),
    "true-for-an-integer": (['task_options={"digits": true}'], None, ["'digits' expects int"]),
    "out-of-the-task's-range": (['task_options={"digits": 100}'], None, ["digits must be between 1 and 9"]),
    "yaml-number-keys": ([], "task_options: {1: 2}\n", ["'task_options' expects dict"]),
    "yaml-text-for-a-number": ([], "task_options: {n_test: many}\n", ["'n_test' expects int", "many"]),
    "yaml-a-list": ([], "task_options: [digits, 2]\n", ["'task_options' expects dict"]),
    "held-out-task-options": (["eval_every=1", "eval_task=arith", 'eval_task_options={"digits": "two"}'], None,
                              ["'digits' expects int", "two"]),
}


@pytest.mark.parametrize("case", CASES)
def test_malformed_task_options_are_one_line(cli, snapshot, expect_refused, train_args, tmp_path, tiny_model, case):
    sets, yaml_text, named = CASES[case]
    ws = tmp_path / "ws"
    ws.mkdir()
    extra = _yaml(ws, yaml_text) if yaml_text is not None else []
    before = snapshot(tmp_path)
    expect_refused(cli(*train_args(str(tiny_model), ws / "out", *sets, extra=extra)), *named)
    assert snapshot(tmp_path) == before
