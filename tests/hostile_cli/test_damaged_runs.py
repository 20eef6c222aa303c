"""A run directory whose files were damaged (issue #20 item 6): a samples.jsonl row of the wrong type, or a saved
training state that is not what score-bench writes. Resuming is refused in one line naming the file (and the
line), and the damaged file is left as it was, for the user to look at."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil

import pytest


def _eval(model, out, *extra):
    return ["eval", "--model", model, "--task", "arith", "--limit", "2", "--max-new-tokens", "4", "--batch-size",
            "2", "--device", "cpu", "--threads", "1", "--output", out, *extra]


@pytest.fixture(scope="module")
def eval_run(tiny_model, tmp_path_factory):
    """A finished two-problem eval run, copied by each test before it damages a row."""
    from score_bench import cli as cli_module

    out = tmp_path_factory.mktemp("eval-run") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.argv", ["score-bench", *map(str, _eval(str(tiny_model), out))])
        try:
            cli_module.main()
        except SystemExit as done:
            assert not done.code
    return out


def _set(path, value):
    """A change to a row: the value at `path` (keys and indexes) replaced, or removed when value is ...."""
    def change(row):
        row = copy.deepcopy(row)
        holder = row
        for key in path[:-1]:
            holder = holder[key]
        if value is ...:
            del holder[path[-1]]
        else:
            holder[path[-1]] = value
        return row
    return change


DAMAGE = {
    # case: the row that replaces line 1 (from the row there), what the error line says about it
    "an-array": (lambda row: [1, 2], "[1, 2] is not an object"),
    "a-string": (lambda row: "a row", '"a row" is not an object'),
    "null": (lambda row: None, "null is not an object"),
    "id-a-number": (_set(["id"], 5), "'id' is 5, not a string"),
    "sample-a-string": (_set(["sample"], "0"), "'sample' is \"0\", not an integer"),
    "sample-true": (_set(["sample"], True), "'sample' is true, not an integer"),
    "messages-an-object": (_set(["messages"], {}), "'messages' is {}, not a list"),
    "attempts-a-string": (_set(["attempts"], "x"), "'attempts' is \"x\", not a list"),
    "attempts-empty": (_set(["attempts"], []), "'attempts' is empty"),
    "attempt-an-array": (_set(["attempts", 0], ["x"]), "attempt 1 is [\"x\"], not an object"),
    "text-missing": (_set(["attempts", 0, "text"], ...), "attempt 1 'text' is missing"),
    "text-a-number": (_set(["attempts", 1, "text"], 3), "attempt 2 'text' is 3, not a string"),
    "correct-a-string": (_set(["attempts", 0, "correct"], "yes"), "attempt 1 'correct' is \"yes\", not true or false"),
    "tokens-a-string": (_set(["attempts", 0, "tokens"], "4"), "attempt 1 'tokens' is \"4\", not an integer"),
    "extracted-a-number": (_set(["attempts", 0, "extracted"], 7), "attempt 1 'extracted' is 7, not a string or null"),
    "flexible-a-string": (_set(["attempts", 1, "correct_flexible"], "no"), "attempt 2 'correct_flexible' is \"no\""),
    "edit-ratio-missing": (_set(["edit_ratio"], ...), "'edit_ratio' is missing"),
    "edit-ratio-text": (_set(["edit_ratio"], ["0.5"]), "'edit_ratio' is not a list of 1 number(s)"),
    "one-attempt-of-two": (lambda row: {**row, "attempts": row["attempts"][:1], "edit_ratio": []},
                           "1 attempt(s) where this run has 2"),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_resume_refuses_a_samples_row_of_the_wrong_type_naming_the_line(cli, snapshot, expect_refused, tmp_path,
                                                                         tiny_model, eval_run, case):
    damage, says = DAMAGE[case]
    run = tmp_path / "run"
    shutil.copytree(eval_run, run)
    lines = (run / "samples.jsonl").read_text().splitlines()
    lines[0] = json.dumps(damage(json.loads(lines[0])))
    (run / "samples.jsonl").write_text("\n".join(lines) + "\n")
    before = snapshot(tmp_path)
    expect_refused(cli(*_eval(str(tiny_model), run)), f"{run / 'samples.jsonl'} line 1 is not a sample row", says)
    assert snapshot(tmp_path) == before
    if case != "one-attempt-of-two" and importlib.util.find_spec("jsonschema"):  # the schema agrees: not a row
        from score_bench.harness.evaluation.result_schema import problems

        assert problems("samples", json.loads(lines[0]))


def test_scale_resume_checks_each_sample_holds_its_own_number_of_attempts(cli, snapshot, expect_refused, tmp_path,
                                                                          tiny_model):
    """Scale's samples 0..B/2-1 run every turn and the rest one: a one-turn sample given two attempts is damaged."""
    out = tmp_path / "run"
    args = ["scale", "--model", tiny_model, "--task", "arith", "--limit", "2", "--budgets", "1,2",
            "--max-new-tokens", "4", "--batch-size", "4", "--device", "cpu", "--threads", "1", "--no-plot",
            "--output", out]
    assert cli(*args).code == 0
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    number, row = next((n, r) for n, r in enumerate(rows, start=1) if r["sample"] == 1)
    rows[number - 1] = {**row, "attempts": row["attempts"] * 2, "edit_ratio": [0.0]}
    (out / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = snapshot(tmp_path)
    expect_refused(cli(*args), f"line {number} is not a sample row", "2 attempt(s) where this run has 1")
    assert snapshot(tmp_path) == before


def _meta(tiny_model, out, **changes):
    from score_bench.harness.contracts.fields import with_values
    from score_bench.harness.training.config import build_config
    from score_bench.harness.training.resume import _plain
    from score_bench.trainers.score import PRESETS, ScoreConfig

    config = with_values(build_config(ScoreConfig, PRESETS, "smoke"), model=str(tiny_model), output=str(out))
    return json.dumps({"trainer": "score", "world_size": 1, "step": 1, "stage": 1, "log_rows": 0,
                       "config": _plain(config), **changes})


STATES = {
    # case: (meta.json text, state.pt bytes) from (model, output), what the error line names
    "meta-not-json": (lambda m, out: ("{oops", b""), ["state/meta.json", "not valid JSON"]),
    "meta-an-array": (lambda m, out: ("[]", b""), ["state/meta.json", "lacks a string trainer"]),
    "config-an-array": (lambda m, out: (_meta(m, out, config=[]), b""), ["state/meta.json", "object config"]),
    "world-size-a-string": (lambda m, out: (_meta(m, out, world_size="1"), b""), ["state/meta.json", "world_size"]),
    "state-not-torch": (lambda m, out: (_meta(m, out), b"not a torch file"),
                        ["cannot read the saved state", "state/state.pt", "damaged"]),
}


@pytest.mark.parametrize("case", STATES)
def test_train_resume_refuses_a_damaged_saved_state(cli, snapshot, expect_refused, train_args, tmp_path, tiny_model,
                                                    case):
    build, named = STATES[case]
    out = tmp_path / "out"
    meta, state = build(tiny_model, out)
    (out / "state").mkdir(parents=True)
    (out / "state" / "meta.json").write_text(meta)
    (out / "state" / "state.pt").write_bytes(state)
    before = snapshot(tmp_path)
    expect_refused(cli(*train_args(str(tiny_model), out)), *named)
    assert snapshot(tmp_path) == before
