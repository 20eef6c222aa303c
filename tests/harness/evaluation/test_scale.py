"""score-bench scale: the sample layout, majority votes recomputed by hand from the samples, resume after a
cut, refusal of bad input, and the committed arith run checked against its own samples."""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.fields import with_values
from score_bench.harness.contracts.generation import GenerationSettings
from score_bench.harness.evaluation.configs import ScaleConfig
from score_bench.harness.evaluation.scale import SCALE_FILE, VOTES_FILE, run_scale
from score_bench.harness.grading.verifiers.key_answer import normalise

REPO = Path(__file__).resolve().parents[3]
COMMITTED = REPO / "results" / "scale" / "arith-base-seed0"


def read_rows(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def hand_vote(answers: list[str | None], correct: list[bool], key, *, seed: int, problem_id: str, budget: int,
              arm: str) -> tuple[str | None, bool]:
    """The vote done by hand: count answers by `key`, take the most common, break ties as recorded."""
    keyed = [(key(a), a, c) for a, c in zip(answers, correct) if a is not None and a.strip()]
    if not keyed:
        return None, False
    counts = Counter(k for k, _, _ in keyed)
    top = max(counts.values())
    order = list(dict.fromkeys(k for k, _, _ in keyed))
    tied = [k for k in order if counts[k] == top]
    chosen = tied[0] if len(tied) == 1 else random.Random(f"{seed}/{problem_id}/{budget}/{arm}").choice(tied)
    first = next((a, c) for k, a, c in keyed if k == chosen)
    return first[0].strip(), first[1]


def check_budget_by_hand(rows: list[dict], votes: list[dict], scale: dict, budget: int, key, seed: int,
                         fields: tuple[str, str] = ("extracted", "correct")) -> None:
    by_unit = {(r["id"], r["sample"]): r for r in rows}
    ids = list(dict.fromkeys(r["id"] for r in rows))
    recorded = {(v["id"], v["arm"]): v for v in votes if v["budget"] == budget}
    entry = next(e for e in scale["budgets"] if e["budget"] == budget)
    for arm, turn, n in (("parallel", 0, budget), ("sequential", 1, budget // 2)):
        hits = 0
        for problem_id in ids:
            cell = [by_unit[(problem_id, k)]["attempts"][turn] for k in range(n)]
            answer, correct = hand_vote([a[fields[0]] for a in cell], [a[fields[1]] for a in cell], key,
                                        seed=seed, problem_id=problem_id, budget=budget, arm=arm)
            vote = recorded[(problem_id, arm)]
            assert (vote["answer"], vote["correct"]) == (answer, correct), (problem_id, arm)
            hits += correct
        assert entry[arm]["accuracy"] == pytest.approx(hits / len(ids))


@pytest.fixture(scope="module")
def toy_run(tiny_backend, tmp_path_factory):
    config = ScaleConfig(model="tiny", task="score-toy", output=tmp_path_factory.mktemp("scale") / "run",
                         budgets=(1, 2, 4), limit=3, generation=GenerationSettings(max_new_tokens=3, temperature=1.5),
                         batch_size=4, seed=3)
    return config, run_scale(config, backend=tiny_backend)


def test_samples_draw_the_largest_budget_once(toy_run):
    config, result = toy_run
    rows = read_rows(config.output / "samples.jsonl")
    turns = {(r["id"], r["sample"]): len(r["attempts"]) for r in rows}
    assert len(turns) == 3 * 4
    assert all(n == (2 if sample < 2 else 1) for (_, sample), n in turns.items())
    assert result["counts"]["generations"] == 3 * (4 + 2)
    assert [e["budget"] for e in result["budgets"]] == [1, 2, 4]
    assert "sequential" not in result["budgets"][0]  # budget 1 has no conversation to correct
    assert result["voting"]["grouping"] == "KeyAnswerVerifier.same_answer_batch"


def test_votes_of_one_budget_match_a_vote_by_hand(toy_run):
    config, result = toy_run
    rows = read_rows(config.output / "samples.jsonl")
    votes = read_rows(config.output / VOTES_FILE)
    check_budget_by_hand(rows, votes, result, 4, normalise, config.seed)


def test_resume_after_a_cut_gives_the_same_result(toy_run, tiny_backend, tmp_path):
    config, result = toy_run
    out = tmp_path / "resumed"
    out.mkdir()
    lines = (config.output / "samples.jsonl").read_text().splitlines(keepends=True)
    (out / "eval_config.json").write_text((config.output / "eval_config.json").read_text())
    (out / "samples.jsonl").write_text("".join(lines[:5]) + lines[5][:10])  # a half-written last line too
    again = run_scale(ScaleConfig(**{**config.__dict__, "output": out}), backend=tiny_backend)
    assert again["resumed_rows"] == 5
    assert again["budgets"] == result["budgets"]
    assert read_rows(out / VOTES_FILE) == read_rows(config.output / VOTES_FILE)


@pytest.mark.parametrize("change, message", [({"temperature": 0.0}, "temperature"), ({"budgets": (1,)}, "largest"),
                                             ({"budgets": (2, 2)}, "repeat"), ({"max_turns": 1}, "max_turns")])
def test_bad_settings_are_refused_before_anything_is_written(tiny_backend, tmp_path, change, message):
    with pytest.raises(InputError, match=message):  # as the config is built
        run_scale(with_values(ScaleConfig(model="tiny", task="score-toy", output=tmp_path / "out"), **change),
                  backend=tiny_backend)
    assert not (tmp_path / "out").exists()


def number(text: str):
    """Integers compared as numbers: what math-verify's equivalence amounts to for the answers arith extracts."""
    try:
        return int(text.strip())
    except ValueError:
        return text.strip()


@pytest.mark.parametrize("run, fields", [("arith-base-seed0", ("extracted", "correct")),
                                         ("arith-smollm2-flexible", ("extracted_flexible", "correct_flexible"))])
def test_committed_runs_votes_match_a_vote_by_hand(run, fields):
    """A committed run's budget-8 votes, recomputed from its samples by hand."""
    directory = COMMITTED.parent / run
    if not (directory / SCALE_FILE).is_file():
        pytest.skip(f"{directory} is not committed")
    scale = json.loads((directory / SCALE_FILE).read_text())
    assert scale["voting"]["extraction"] == ("flexible" if fields[0].endswith("flexible") else "strict")
    check_budget_by_hand(read_rows(directory / "samples.jsonl.gz"), read_rows(directory / "votes.jsonl.gz"), scale,
                         8, number, scale["seed"], fields)


def test_the_plot_draws_both_arms_and_pass_at_b(toy_run, tmp_path):
    from score_bench.harness.reports.plots import plot_scale, scale_figure

    config, _ = toy_run
    figure = scale_figure({"toy": config.output})
    labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert labels == ["parallel: majority over B first attempts",
                      "sequential: majority over B/2 corrected attempts", "pass@B (any first attempt correct)"]
    assert plot_scale({"toy": config.output}, tmp_path / "scale.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, message", [(["--budgets", "2,x"], "--budgets must be comma-separated integers"),
                                           (["--budgets", "1"], "largest budget must be at least 2")])
def test_cli_refuses_bad_budgets_in_one_line(tmp_path, args, message):
    import subprocess
    import sys

    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "score_bench", "scale", "--model", str(tmp_path / "none"),
                           "--task", "arith", "--output", str(out), *args], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_multi_round_arm_votes_over_third_attempts(tiny_backend, tmp_path):
    config = ScaleConfig(model="tiny", task="score-toy", output=tmp_path / "run", budgets=(2, 6), max_turns=3,
                         limit=2, generation=GenerationSettings(max_new_tokens=3, temperature=1.5), batch_size=4,
                         seed=1)
    result = run_scale(config, backend=tiny_backend)
    rows = read_rows(config.output / "samples.jsonl")
    assert sorted(len(r["attempts"]) for r in rows) == [1] * 6 + [3] * 6  # 3 conversations of 3 turns per problem
    at6 = result["budgets"][1]
    assert (at6["sequential"]["conversations"], at6["sequential"]["attempt"]) == (3, 2)
    assert (at6["sequential_3"]["conversations"], at6["sequential_3"]["attempt"]) == (2, 3)
    assert "sequential_3" not in result["budgets"][0]  # budget 2 has no room for a 3-turn conversation
    votes = [v for v in read_rows(config.output / VOTES_FILE) if v["budget"] == 6 and v["arm"] == "sequential_3"]
    by_unit = {(r["id"], r["sample"]): r for r in rows}
    for vote in votes:
        third = [by_unit[(vote["id"], k)]["attempts"][2] for k in range(2)]
        answer, correct = hand_vote([a["extracted"] for a in third], [a["correct"] for a in third], normalise,
                                    seed=1, problem_id=vote["id"], budget=6, arm="sequential_3")
        assert (vote["answer"], vote["correct"]) == (answer, correct)


def test_a_default_max_new_tokens_fits_the_embedded_models_context(embedded_model, tmp_path):
    """As eval: with no max_new_tokens, the samples are drawn with the most that fits max_turns attempts in the
    embedded model's 512-token context, recorded in scale.json and the run's identity."""
    from score_bench.harness.generation.backends import load_backend

    backend = load_backend("transformers", model=str(embedded_model), device="cpu", dtype="float32")
    config = ScaleConfig(model=str(embedded_model), task="arith", output=tmp_path / "run", budgets=(1, 2),
                         max_turns=3, limit=2, seed=1)
    result = run_scale(config, backend=backend)
    chosen = result["generation"]["max_new_tokens"]
    assert 1 <= chosen < 512 // 3 and result["config"]["max_new_tokens"] == chosen
    identity = json.loads((config.output / "eval_config.json").read_text())
    assert identity["config"]["max_new_tokens"] == chosen and identity["config"]["turns"] == 3
    rows = read_rows(config.output / "samples.jsonl")
    assert all(a["tokens"] <= chosen for r in rows for a in r["attempts"])
