"""`score-bench repair-set`: an eval run's wrong first attempts become a first-attempts file that `eval
--first-attempt` runs as repair (only those problems, results marked "repair"); bad input is one line, exit 2,
nothing written. Uses the tiny model on arith (any task works: the builder knows no specific task)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.generation import GenerationSettings
from score_bench.harness.evaluation.configs import EvalConfig
from score_bench.harness.evaluation.eval_run import load_first_attempts, run_eval
from score_bench.harness.evaluation.repair_set import build_repair_set


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "score_bench", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def eval_run(tiny_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "run"
    config = EvalConfig(model=str(tiny_model), task="arith", output=out, limit=8,
                        generation=GenerationSettings(max_new_tokens=8), device="cpu")
    run_eval(config)
    return config


def rows_of(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_repair_set_holds_exactly_the_wrong_first_attempts_and_evaluates_as_repair(eval_run, tmp_path):
    samples = rows_of(eval_run.output / "samples.jsonl")
    done = run_cli("repair-set", "--from", str(eval_run.output), "--output", str(tmp_path / "r.jsonl"))
    assert done.returncode == 0, done.stderr
    rows = rows_of(tmp_path / "r.jsonl")
    wrong = [s for s in samples if not s["attempts"][0]["correct"]]
    assert wrong, "the random tiny model gets arith right: nothing to repair"
    assert [(r["id"], r["text"]) for r in rows] == [(s["id"], s["attempts"][0]["text"]) for s in wrong]
    assert all(r["repair_set"]["task"] == "arith" for r in rows)
    assert load_first_attempts(tmp_path / "r.jsonl") == {r["id"]: r["text"] for r in rows}

    repair = replace(eval_run, output=tmp_path / "repair", first_attempts=tmp_path / "r.jsonl")
    results = run_eval(repair)
    repaired = rows_of(repair.output / "samples.jsonl")
    assert [r["id"] for r in repaired] == [s["id"] for s in wrong]  # only the repair set, in the split's order
    assert all(r["attempts"][0]["given"] and not r["attempts"][0]["correct"] for r in repaired)
    assert results["kind"] == "repair" and results["metrics"]["acc_t1"]["value"] == 0.0
    assert results["counts"]["problems"] == len(wrong)
    assert json.loads((eval_run.output / "results.json").read_text())["kind"] == "eval"


@pytest.mark.parametrize("case", ["missing run", "not a run", "output exists", "not jsonl", "given attempts"])
def test_bad_input_is_one_line_and_writes_nothing(eval_run, tmp_path, case):
    source, output = eval_run.output, tmp_path / "out.jsonl"
    if case == "missing run":
        source = tmp_path / "nowhere"
    elif case == "not a run":
        source = tmp_path / "empty"
        source.mkdir()
    elif case == "output exists":
        output.write_text("keep me\n")
    elif case == "not jsonl":
        output = tmp_path / "out.json"
    else:
        source = tmp_path / "given"
        source.mkdir()
        config = json.loads((eval_run.output / "eval_config.json").read_text())
        config["config"]["first_attempts"] = "/some/file.jsonl"
        (source / "eval_config.json").write_text(json.dumps(config))
        (source / "samples.jsonl").write_text((eval_run.output / "samples.jsonl").read_text())
    before = sorted(p.name for p in tmp_path.iterdir())
    done = run_cli("repair-set", "--from", str(source), "--output", str(output))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    if case == "output exists":
        assert output.read_text() == "keep me\n"


def test_a_damaged_samples_file_names_its_line(eval_run, tmp_path):
    source = tmp_path / "damaged"
    source.mkdir()
    (source / "eval_config.json").write_text((eval_run.output / "eval_config.json").read_text())
    (source / "samples.jsonl").write_text((eval_run.output / "samples.jsonl").read_text() + '{"id": 3}\n')
    with pytest.raises(InputError, match=r"samples.jsonl:9"):
        build_repair_set(source, tmp_path / "r.jsonl")
