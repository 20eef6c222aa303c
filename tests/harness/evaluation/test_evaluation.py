"""run_eval end to end on the tiny model: results against the samples file, resume after a real kill -9,
refusal of a different config, and bad input that leaves nothing behind."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from score_bench.harness.contracts.errors import InputError, PluginNotFound
from score_bench.harness.contracts.fields import build, plain_values, with_values
from score_bench.harness.contracts.generation import GenerationSettings
from score_bench.harness.contracts.generation import Backend
from score_bench.harness.contracts.registry import load_task
from score_bench.harness.contracts.types import Problem
from score_bench.harness.evaluation.configs import EvalConfig
from score_bench.harness.evaluation.edit_distance import edit_ratio
from score_bench.harness.evaluation.eval_run import run_eval
from score_bench.harness.grading.verifiers.key_answer import normalise

TASKS = ["score-toy", "arith"]


def require_task(name: str):
    """The task, or an explicit skip while its module is not in this checkout (arith is built in parallel)."""
    try:
        return load_task(name)
    except ModuleNotFoundError as err:
        pytest.skip(f"task '{name}' is registered but not in this checkout yet: {err}")


def rows_of(directory: Path) -> list[dict]:
    return [json.loads(line) for line in (directory / "samples.jsonl").read_text().splitlines()]


def by_unit(rows: list[dict]) -> dict[tuple[str, int], dict]:
    return {(r["id"], r["sample"]): r for r in rows}


def check_results_against_samples(results: dict, rows: list[dict], config: EvalConfig) -> None:
    """Every number in results.json that the samples file determines, recomputed from the rows."""
    n = len(rows)
    assert results["counts"]["rows"] == n == len(by_unit(rows))
    correct = [[a["correct"] for a in r["attempts"]] for r in rows]
    assert all(len(c) == config.turns for c in correct)
    per_turn = [sum(c[t] for c in correct) / n for t in range(config.turns)]
    assert results["per_turn_accuracy"] == pytest.approx(per_turn)
    m = results["metrics"]
    if config.samples == 1:
        assert m["acc_t1"]["value"] == pytest.approx(per_turn[0])
        assert m["acc_t2"]["value"] == pytest.approx(per_turn[1])
        assert m["delta"]["value"] == pytest.approx(per_turn[1] - per_turn[0])
        assert m["delta_i2c"]["value"] == pytest.approx(sum(not a and b for a, b, *_ in correct) / n)
        assert m["delta_c2i"]["value"] == pytest.approx(sum(a and not b for a, b, *_ in correct) / n)
        wrong_first = [c for c in correct if not c[0]]
        if wrong_first:
            assert m["p_i2c_given_i"]["value"] == pytest.approx(sum(c[1] for c in wrong_first) / len(wrong_first))
        for t in range(config.turns):  # flexible accuracy and extraction rates, from the rows' own fields
            attempts = [r["attempts"][t] for r in rows]
            assert m[f"acc_t{t + 1}_flexible"]["value"] == pytest.approx(
                sum(a["correct_flexible"] for a in attempts) / n)
            assert m[f"extraction_rate_t{t + 1}"]["value"] == pytest.approx(
                sum(a["extracted"] is not None for a in attempts) / n)
            assert m[f"extraction_rate_t{t + 1}_flexible"]["value"] == pytest.approx(
                sum(a["extracted_flexible"] is not None for a in attempts) / n)
    for name, metric in m.items():
        if metric["value"] is not None:
            low, high = metric["ci95"]
            assert low - 1e-9 <= metric["value"] <= high + 1e-9, name
    assert results["tokens_generated"] == sum(a["tokens"] for r in rows for a in r["attempts"])
    for row in rows:
        texts = [a["text"] for a in row["attempts"]]
        assert [m["content"] for m in row["messages"] if m["role"] == "assistant"] == texts
        # the samples log keeps 6 decimals
        assert row["edit_ratio"] == pytest.approx([edit_ratio(a, b) for a, b in zip(texts, texts[1:])], abs=1e-6)
    mean_ratio = sum(r["edit_ratio"][0] for r in rows) / n
    assert results["edit_ratio"]["t1_t2"]["mean"] == pytest.approx(mean_ratio)


@pytest.mark.parametrize("task_name", TASKS)
def test_end_to_end_results_match_the_samples_file(task_name, tiny_model, tmp_path):
    task = require_task(task_name)
    config = EvalConfig(model=str(tiny_model), task=task_name, output=tmp_path / "run", limit=10,
                        generation=GenerationSettings(max_new_tokens=16), batch_size=4)
    results = run_eval(config)
    rows = rows_of(config.output)
    assert [r["id"] for r in rows] == [p.id for p in task.problems("test")[:10]]
    check_results_against_samples(results, rows, config)
    assert json.loads((config.output / "results.json").read_text()) == json.loads(json.dumps(results))
    assert results["task"]["correction_instruction"] == task.correction_instruction
    assert results["task"]["first_prompt_example"] == task.first_prompt(task.problems("test")[0])
    assert len(results["model"]["weights_sha256"]) == 64 and results["model"]["id"] == str(tiny_model)
    assert results["generation"]["max_new_tokens"] == 16 and results["generation"]["temperature"] == 0.0
    assert results["versions"]["torch"] and "commit" in results["git"] and results["wall_time_s"] > 0
    assert results["resumed_rows"] == 0


@pytest.fixture(scope="module")
def mixed_toy_csv(tiny_model, tmp_path_factory) -> Path:
    """A score-toy CSV whose key answers are words of the tiny model's own greedy attempts, chosen with the task's
    verifier so that the four outcomes (wrong->right, right->wrong, right->right, wrong->wrong) all occur and the
    metrics are not all zero."""
    directory = tmp_path_factory.mktemp("mixed")
    task = load_task("score-toy")
    problems = task.problems("test")[:16]
    questions = [p.question for p in problems]
    placeholder = write_toy_csv(directory / "placeholder.csv", questions, ["qqqqqq"] * len(questions))
    probe = EvalConfig(model=str(tiny_model), task="score-toy", output=directory / "probe",
                       generation=GenerationSettings(max_new_tokens=24),
                       task_options={"path": str(placeholder)})
    run_eval(probe)
    keys = []
    for index, (problem, row) in enumerate(zip(problems, rows_of(probe.output))):
        wanted = {0: (True, False), 1: (False, True), 2: (True, True)}.get(index % 4)
        keys.append(_key(task, problem, [a["text"] for a in row["attempts"]], wanted) if wanted else "qqqqqq")
    assert sum(k != "qqqqqq" for k in keys) >= 6, "the tiny model's attempts gave too few usable keys"
    return write_toy_csv(directory / "mixed.csv", questions, keys)


def _key(task, problem: Problem, texts: list[str], wanted: tuple[bool, bool]) -> str:
    """A word of the attempts that the verifier finds in the first and/or the second as `wanted`."""
    words = {w for text in texts for w in normalise(text).split() if w.isascii() and w.isalpha() and len(w) > 1}
    for word in sorted(words):
        candidate = Problem(problem.id, problem.question, word, {"distractor": "zzzzzz"})
        verdicts = task.verifier.verify_batch([(candidate, text.strip()) for text in texts])
        if tuple(v.correct for v in verdicts) == wanted:
            return word
    return "qqqqqq"


def write_toy_csv(path: Path, questions: list[str], answers: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["category", "question", "original_answer", "correct_answer", "answer"])
        for question, answer in zip(questions, answers):
            writer.writerow(["test", question, "zzzzzz", f"The answer is {answer}.", answer])
    return path


def test_metrics_on_a_run_with_every_outcome(mixed_toy_csv, tiny_model, tmp_path):
    config = EvalConfig(model=str(tiny_model), task="score-toy", output=tmp_path / "run",
                        generation=GenerationSettings(max_new_tokens=24),
                        task_options={"path": str(mixed_toy_csv)})
    results = run_eval(config)
    rows = rows_of(config.output)
    outcomes = {(r["attempts"][0]["correct"], r["attempts"][1]["correct"]) for r in rows}
    assert outcomes == {(True, False), (False, True), (True, True), (False, False)}
    check_results_against_samples(results, rows, config)
    assert 0 < results["metrics"]["delta_i2c"]["value"] < 1 and 0 < results["metrics"]["delta_c2i"]["value"] < 1


def test_more_turns_and_samples_add_pass_at_k(tiny_model, tmp_path):
    config = EvalConfig(model=str(tiny_model), task="score-toy", output=tmp_path / "run", limit=5, turns=3,
                        samples=3, generation=GenerationSettings(temperature=1.0, max_new_tokens=12), seed=2,
                        batch_size=4)
    results = run_eval(config)
    rows = rows_of(config.output)
    assert len(rows) == 15 and all(len(r["attempts"]) == 3 and len(r["edit_ratio"]) == 2 for r in rows)
    check_results_against_samples(results, rows, config)
    assert set(results["pass_at_k"]) == {f"pass@{k}_t{t}" for k in (1, 2, 3) for t in (1, 2, 3)}
    for turn in (1, 2, 3):
        solved = {r["id"] for r in rows if r["attempts"][turn - 1]["correct"]}
        assert results["pass_at_k"][f"pass@3_t{turn}"] == pytest.approx(len(solved) / 5)
    assert "t2_t3" in results["edit_ratio"]


def test_given_first_attempts_from_the_task_and_from_a_file(tiny_model, tmp_path):
    task = load_task("score-toy")
    problems = task.problems("test")[:6]
    config = EvalConfig(model=str(tiny_model), task="score-toy", output=tmp_path / "task", limit=6,
                        generation=GenerationSettings(max_new_tokens=12), task_first_attempts=True)
    results = run_eval(config)
    rows = rows_of(config.output)
    assert [r["attempts"][0]["text"] for r in rows] == [p.fixed_first_attempt for p in problems]
    assert all(r["attempts"][0]["given"] and r["attempts"][0]["tokens"] == 0 for r in rows)
    assert results["metrics"]["acc_t1"]["value"] == 0.0 and results["task"]["first_attempts"] == "task"
    given = tmp_path / "given.json"
    given.write_text(json.dumps({p.id: f"My answer is {i}." for i, p in enumerate(problems)}))
    from_file = with_values(config, output=tmp_path / "file", task_first_attempts=False, first_attempts=given)
    run_eval(from_file)
    assert [r["attempts"][0]["text"] for r in rows_of(from_file.output)] == [f"My answer is {i}." for i in range(6)]
    given.write_text(json.dumps({problems[0].id: "only one"}))
    with pytest.raises(InputError, match="no entry for problem"):
        run_eval(replace(from_file, output=tmp_path / "partial"))
    assert not (tmp_path / "partial").exists()


def test_prompt_overrides_are_used_and_recorded(tiny_model, tmp_path):
    config = EvalConfig(model=str(tiny_model), task="score-toy", output=tmp_path / "run", limit=3,
                        generation=GenerationSettings(max_new_tokens=4),
                        correction_instruction="Check again.", first_prompt_template="Q: {question}",
                        system_prompt="Be brief.")
    results = run_eval(config)
    question = load_task("score-toy").problems("test")[0].question
    assert results["task"]["first_prompt_example"] == [{"role": "system", "content": "Be brief."},
                                                       {"role": "user", "content": f"Q: {question}"}]
    assert results["task"]["correction_instruction"] == "Check again."
    assert rows_of(config.output)[0]["messages"][3] == {"role": "user", "content": "Check again."}
    with pytest.raises(InputError, match="correction_instruction"):
        run_eval(with_values(config, correction_instruction="Other."))


def test_rerun_of_a_finished_run_changes_nothing(tiny_model, tmp_path):
    config = EvalConfig(model=str(tiny_model), task="score-toy", output=tmp_path / "run", limit=6,
                        generation=GenerationSettings(max_new_tokens=8))
    first = run_eval(config)
    before = {name: (config.output / name).read_bytes() for name in ("samples.jsonl", "results.json")}
    second = run_eval(config)
    assert {name: (config.output / name).read_bytes() for name in before} == before  # timing kept, too
    assert second == json.loads(json.dumps(first)) and second["resumed_rows"] == 0


def test_a_half_written_last_line_is_dropped_and_regenerated(tiny_model, tmp_path):
    config = EvalConfig(model=str(tiny_model), task="score-toy", output=tmp_path / "run", limit=12,
                        generation=GenerationSettings(max_new_tokens=12), batch_size=1)
    reference = run_eval(config)
    samples = config.output / "samples.jsonl"
    full = samples.read_bytes()
    lines = full.splitlines(keepends=True)
    samples.write_bytes(b"".join(lines[:5]) + lines[5][:40])  # as if killed in the middle of a write
    (config.output / "results.json").unlink()
    resumed = run_eval(config)
    assert sorted(samples.read_bytes().splitlines()) == sorted(full.splitlines())
    assert resumed["metrics"] == reference["metrics"] and resumed["resumed_rows"] == 5


def test_a_different_config_into_the_same_directory_refuses(tiny_model, tmp_path):
    config = EvalConfig(model=str(tiny_model), task="score-toy", output=tmp_path / "run", limit=4,
                        generation=GenerationSettings(max_new_tokens=8))
    run_eval(config)
    before = (config.output / "samples.jsonl").read_bytes()
    with pytest.raises(InputError, match="max_new_tokens: 8 there, 9 now") as caught:
        run_eval(with_values(config, max_new_tokens=9))
    assert "\n" not in str(caught.value)
    with pytest.raises(InputError, match="limit"):
        run_eval(with_values(config, limit=5))
    assert (config.output / "samples.jsonl").read_bytes() == before


def test_bad_input_is_one_line_and_writes_nothing(tiny_model, tmp_path):
    out = tmp_path / "never"
    base = EvalConfig(model=str(tiny_model), task="score-toy", output=out, limit=2,
                      generation=GenerationSettings(max_new_tokens=4))
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model / name, bare / name)
    cases = [(with_values(base, model=str(tmp_path / "no-such-model")), InputError, "not found"),
             (with_values(base, model=str(bare)), InputError, "no tokenizer"),
             (with_values(base, task="score-tyo"), PluginNotFound, "Did you mean 'score-toy'"),
             (with_values(base, split="validation"), InputError, "unknown split"),
             (with_values(base, chat_template=tmp_path / "none.jinja"), InputError, "--chat-template file not found")]
    for config, error, message in cases:
        with pytest.raises(error, match=message) as caught:
            run_eval(config)
        assert "\n" not in str(caught.value)
        assert not out.exists()
    for changes, message in (({"limit": -1}, "eval setting 'limit' must be >= 1, got -1"),
                             ({"turns": 0}, "eval setting 'turns' must be >= 1, got 0")):
        with pytest.raises(InputError, match=message):  # a config out of range is refused as it is built
            with_values(base, **changes)


_RUNNER = """
import json, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from score_bench.harness.contracts.fields import build
from score_bench.harness.evaluation.configs import EvalConfig
from score_bench.harness.evaluation.eval_run import run_eval
options = json.loads(sys.argv[1])
run_eval(build(EvalConfig, {**options, "output": Path(options["output"])}))
"""


def run_in_subprocess(options: dict) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", _RUNNER, json.dumps(options)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_after_rows(process: subprocess.Popen, samples: Path, rows: int, of: int) -> int:
    """SIGKILL the run once its samples file holds `rows` rows; the rows written (checked to be a partial run)."""
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        if samples.exists() and samples.read_bytes().count(b"\n") >= rows:
            break
        time.sleep(0.01)
    assert process.poll() is None, f"the run ended before it could be killed: {process.stderr.read().decode()[-500:]}"
    process.send_signal(signal.SIGKILL)
    process.wait()
    written = samples.read_bytes().count(b"\n")
    assert rows <= written < of, f"kill landed after {written} of {of} rows"
    return written


def test_a_run_killed_with_sigkill_resumes_to_the_uninterrupted_result(tiny_model, tmp_path):
    options = {"model": str(tiny_model), "task": "score-toy", "limit": 24, "samples": 2, "temperature": 0.8,
               "seed": 3, "max_new_tokens": 16, "batch_size": 2}
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    process = run_in_subprocess({**options, "output": str(killed_dir)})
    written = kill_after_rows(process, killed_dir / "samples.jsonl", rows=8, of=48)
    assert not (killed_dir / "results.json").exists()

    restarted = run_in_subprocess({**options, "output": str(killed_dir)})
    _, errors = restarted.communicate(timeout=300)
    assert restarted.returncode == 0, errors.decode()[-2000:]
    clean = run_eval(build(EvalConfig, {**options, "output": clean_dir}))

    resumed = json.loads((killed_dir / "results.json").read_text())
    assert resumed["resumed_rows"] == written
    killed_rows, clean_rows = rows_of(killed_dir), rows_of(clean_dir)
    assert len(killed_rows) == len(clean_rows) == 48  # nothing lost, nothing twice
    assert by_unit(killed_rows) == by_unit(clean_rows)
    assert resumed["metrics"] == clean["metrics"] and resumed["pass_at_k"] == clean["pass_at_k"]
    assert resumed["tokens_generated"] == clean["tokens_generated"]
    assert json.loads((killed_dir / "eval_config.json").read_text()) == \
           json.loads((clean_dir / "eval_config.json").read_text())


def test_config_is_plain_data():
    """The CLI and notebooks build EvalConfig from flags or dicts; it must round-trip through JSON, named flat as the
    run's files name it (the generation settings beside the rest)."""
    config = EvalConfig(model="m", task="arith", output=Path("out"), generation=GenerationSettings(stop=("\n\n",)))
    data = json.loads(json.dumps(plain_values(config), default=str))
    assert "generation" not in data and data["stop"] == ["\n\n"] and data["max_new_tokens"] is None
    assert build(EvalConfig, {**data, "output": Path(data["output"]), "stop": tuple(data["stop"])}) == config


class _FailingAfter(Backend):
    """The real tiny-model backend, made to fail on its Nth generate call: a crash mid-run, in-process."""

    def __init__(self, backend, calls: int):
        self._backend, self._left = backend, calls

    def generate(self, conversations, params):
        self._left -= 1
        if self._left < 0:
            raise RuntimeError("simulated crash while generating")
        return self._backend.generate(conversations, params)

    def describe(self):
        return self._backend.describe()


def test_a_crash_loses_at_most_the_batch_being_generated(tiny_backend, tmp_path):
    # batch 2, 6 problems, 2 turns: chunks of 2 conversations, 2 generate calls each. Failing on the 5th call
    # (chunk 3, attempt 1) must leave chunks 1 and 2 on disk, though chunk 2 was graded only while chunk 3 ran.
    config = EvalConfig(model="tiny", task="score-toy", output=tmp_path / "run", limit=6,
                        generation=GenerationSettings(max_new_tokens=6),
                        batch_size=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_eval(config, backend=_FailingAfter(tiny_backend, calls=4))
    assert len(rows_of(config.output)) == 4
    resumed = run_eval(config, backend=tiny_backend)
    assert resumed["resumed_rows"] == 4 and resumed["counts"]["rows"] == 6
    timing = resumed["timing"]
    assert timing["tokens_this_run"] == sum(a["tokens"] for r in rows_of(config.output)[4:] for a in r["attempts"])
    assert timing["tokens_per_s"] > 0 and timing["load_s"] >= 0


class _RecordingProgress:
    def __init__(self):
        self.totals, self.advances, self.notes = {}, [], []

    def start(self, description, total):
        self.totals[description] = total
        return description

    def advance(self, handle, amount=1, status=""):
        self.advances.append((handle, amount, status))

    def finish(self, handle):
        pass

    def note(self, message):
        self.notes.append(message)


def test_progress_advances_per_generated_batch_with_tokens_per_second(tiny_backend, tmp_path):
    progress = _RecordingProgress()
    config = EvalConfig(model="tiny", task="score-toy", output=tmp_path / "run", limit=5,
                        generation=GenerationSettings(max_new_tokens=6),
                        batch_size=2)
    run_eval(config, progress, backend=tiny_backend)
    assert progress.totals["rollout: attempts"] == 10
    rollout = [(amount, status) for handle, amount, status in progress.advances if handle == "rollout: attempts"]
    assert [amount for amount, _ in rollout] == [2, 2, 2, 2, 1, 1]  # chunks of 2, 2, 1 problems × 2 attempts
    assert all("tokens/s" in status for _, status in rollout)


def test_a_killed_run_resumes_after_its_checkout_moved(tiny_model, tmp_path):
    """`score-bench eval` with a model and output relative to the checkout, killed with SIGKILL, the checkout
    then moved to another directory: the same command there resumes (the run is identified by the weights'
    hash, not the machine's path) and ends as an uninterrupted run."""
    checkout, moved = tmp_path / "checkout", tmp_path / "elsewhere" / "checkout"
    shutil.copytree(tiny_model, checkout / "models" / "tiny")
    command = [sys.executable, "-m", "score_bench", "eval", "--model", "models/tiny", "--task", "score-toy",
               "--limit", "24", "--samples", "2", "--temperature", "0.8", "--seed", "3", "--max-new-tokens", "16",
               "--batch-size", "2", "--threads", "1", "--output", "runs/eval"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=checkout, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    written = kill_after_rows(process, checkout / "runs" / "eval" / "samples.jsonl", rows=8, of=48)

    moved.parent.mkdir()
    checkout.rename(moved)
    done = subprocess.run(command, cwd=moved, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    resumed = json.loads((moved / "runs" / "eval" / "results.json").read_text())
    assert resumed["resumed_rows"] == written
    assert resumed["model"]["id"] == "models/tiny" and str(tmp_path) not in json.dumps(resumed)
    clean = run_eval(EvalConfig(model=str(moved / "models" / "tiny"), task="score-toy", limit=24, samples=2,
                                generation=GenerationSettings(temperature=0.8, max_new_tokens=16), seed=3,
                                batch_size=2, output=tmp_path / "clean"))
    assert by_unit(rows_of(moved / "runs" / "eval")) == by_unit(rows_of(tmp_path / "clean"))
    assert resumed["metrics"] == clean["metrics"]


# -- max_new_tokens not given: the most that fits the model's context (issue #20 item 4) -------------------------

def test_a_default_max_new_tokens_fits_the_embedded_models_context(embedded_model, tmp_path):
    """Two attempts of the fixed 512 of old do not fit the embedded model's 512-token context: with no
    max_new_tokens, eval takes the most that fits, says so, records it, and a rerun resumes with it."""
    progress = _RecordingProgress()
    config = EvalConfig(model=str(embedded_model), task="arith", output=tmp_path / "run", limit=3, device="cpu",
                        dtype="float32")
    results = run_eval(config, progress)
    chosen = results["config"]["max_new_tokens"]
    assert 1 <= chosen < 512 and results["generation"]["max_new_tokens"] == chosen
    assert progress.notes == [f"max_new_tokens not given: using {chosen} (the most that fits 2 attempt(s) after the "
                              "longest prompt in the context of 512 tokens (max_position_embeddings)); give "
                              "--max-new-tokens to choose"]
    assert json.loads((config.output / "eval_config.json").read_text())["config"]["max_new_tokens"] == chosen
    assert all(a["tokens"] <= chosen for r in rows_of(config.output) for a in r["attempts"])
    # the same run, whether the value is derived again or given: both resume it (here: it is finished)
    assert run_eval(config)["metrics"] == results["metrics"]
    assert run_eval(with_values(config, max_new_tokens=chosen))["metrics"] == results["metrics"]
    # it is the most that fits: one token more per attempt, or the 512 of old, is refused as before
    for too_many in (chosen + 1, 512):
        refused = tmp_path / f"refused-{too_many}"
        with pytest.raises(InputError, match="has a context of 512"):
            run_eval(with_values(config, max_new_tokens=too_many, output=refused))
        assert not refused.exists()


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_the_derived_default_is_the_largest_the_context_check_accepts(tiny_model, turns):
    from transformers import AutoTokenizer

    from score_bench.harness.runtime.guards import check_context, fitting_max_new_tokens

    task = load_task("arith")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    prompts = [task.first_prompt(p) for p in task.problems("test")[:20]]
    instruction = [{"role": "user", "content": task.correction_instruction}]
    context = (400, "max_position_embeddings")
    fitting = fitting_max_new_tokens(tokenizer, context, prompts, instruction, turns, 512, "tiny")
    assert 1 <= fitting < 512
    check_context(tokenizer, context, prompts, instruction, fitting, turns, "tiny")
    with pytest.raises(InputError, match="has a context of 400"):
        check_context(tokenizer, context, prompts, instruction, fitting + 1, turns, "tiny")
    # a context with room gives the cap; one without a stated length too; prompts that fill it are refused
    assert fitting_max_new_tokens(tokenizer, (32768, "x"), prompts, instruction, turns, 512, "tiny") == 512
    assert fitting_max_new_tokens(tokenizer, (None, "x"), prompts, instruction, turns, 512, "tiny") == 512
    with pytest.raises(InputError, match="leave no room"):
        fitting_max_new_tokens(tokenizer, (40, "x"), prompts, instruction, turns, 512, "tiny")


def test_the_cli_says_which_default_it_chose(embedded_model, tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "score_bench", "eval", "--model", str(embedded_model), "--task",
                           "arith", "--limit", "2", "--threads", "1", "--output", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    chosen = json.loads((out / "results.json").read_text())["config"]["max_new_tokens"]
    assert f"max_new_tokens not given: using {chosen} (the most that fits" in " ".join(done.stderr.split())
