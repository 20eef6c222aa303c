"""Results anyone can read: every committed result file under results/ matches its JSON Schema (files written
before versioning have no schema_version and are accepted as legacy), and files written now carry
schema_version 1, match, and record the model as it was given, never this machine's resolved path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from score_bench.harness.contracts.generation import GenerationSettings
from score_bench.harness.evaluation.result_schema import SCHEMA_VERSION, file_problems, problems, schema

pytest.importorskip("jsonschema", reason="the results schemas are checked with jsonschema (test extra)")

RESULTS = Path(__file__).resolve().parents[1] / "results"


def schema_of(path: Path) -> str | None:
    """Which schema a committed file is written to: by name; a results.json kept under another name (the
    demo's eval/*.json) by its top-level metrics and counts; a grade run's samples.jsonl is its input rows."""
    name = path.name.removesuffix(".gz")
    if name in ("scale.json", "grades.jsonl"):
        return name.split(".")[0]
    if name == "samples.jsonl":
        sibling = path.parent / "results.json"
        graded = sibling.is_file() and json.loads(sibling.read_text()).get("kind") == "grade"
        return "responses" if graded else "samples"
    if path.suffix == ".json":
        document = json.loads(path.read_text())
        if isinstance(document, dict) and "metrics" in document and "counts" in document:
            return "results"
    return None


COMMITTED = sorted((path, kind) for path in RESULTS.rglob("*") if path.is_file() and (kind := schema_of(path)))


def test_the_committed_results_are_found():
    kinds = {kind for _, kind in COMMITTED}
    assert kinds == {"results", "samples", "grades", "scale", "responses"}, kinds
    assert len(COMMITTED) >= 70


@pytest.mark.parametrize("path, kind", COMMITTED, ids=[str(p.relative_to(RESULTS)) for p, _ in COMMITTED])
def test_every_committed_result_file_matches_its_schema(path, kind):
    assert file_problems(path, kind) == []


def test_the_schemas_refuse_what_they_should():
    legacy = json.loads((RESULTS / "real/smollm2/humaneval/results.json").read_text())
    assert "schema_version" not in legacy and problems("results", legacy) == []
    assert problems("results", {**legacy, "schema_version": SCHEMA_VERSION + 1})  # an unknown version
    broken = {**legacy, "metrics": {**legacy["metrics"], "acc_t1": {"value": 1.5, "ci95": [0, 1]}}}
    assert any("acc_t1" in line for line in problems("results", broken))
    assert problems("results", {k: v for k, v in legacy.items() if k != "model"})  # an eval names its model
    assert problems("samples", {"id": "x", "sample": 0, "messages": [], "attempts": [], "edit_ratio": []})
    assert schema("scale")["title"].startswith("scale.json")


def test_files_written_now_carry_the_version_match_and_name_the_model_as_given(tiny_model, tiny_backend,
                                                                              tmp_path, monkeypatch):
    from score_bench.harness.contracts.registry import load_task
    from score_bench.harness.evaluation.configs import EvalConfig, ScaleConfig
    from score_bench.harness.evaluation.eval_run import run_eval
    from score_bench.harness.evaluation.grade_file import grade_file
    from score_bench.harness.evaluation.scale import run_scale

    # the model named relative to the working directory, as a user in a checkout would
    monkeypatch.chdir(tiny_model.parent)
    given = tiny_model.name
    run_eval(EvalConfig(model=given, task="score-toy", output=tmp_path / "eval", limit=3,
                        generation=GenerationSettings(max_new_tokens=4)))
    run_scale(ScaleConfig(model=given, task="score-toy", output=tmp_path / "scale", limit=2, budgets=(1, 2),
                          generation=GenerationSettings(max_new_tokens=3, temperature=0.7), batch_size=4),
              backend=tiny_backend)
    responses = tmp_path / "responses.jsonl"
    responses.write_text(json.dumps({"id": "score-toy/001-d9f99269", "responses": ["Paris", "Lyon"]}) + "\n")
    task = load_task("score-toy")
    grade_file(task, responses, tmp_path / "grade", split=None)
    written = {"eval/results.json": "results", "eval/samples.jsonl": "samples", "scale/scale.json": "scale",
               "scale/samples.jsonl": "samples", "grade/results.json": "results", "grade/grades.jsonl": "grades"}
    for name, kind in written.items():
        path = tmp_path / name
        assert file_problems(path, kind) == [], name
        documents = [json.loads(line) for line in path.read_text().splitlines()] if path.suffix == ".jsonl" \
            else [json.loads(path.read_text())]
        assert all(document["schema_version"] == SCHEMA_VERSION for document in documents), name
    for name in ("eval/results.json", "eval/eval_config.json", "scale/scale.json"):
        text = (tmp_path / name).read_text()
        assert str(tiny_model.parent) not in text, f"{name} holds the machine's path of the model"
    results = json.loads((tmp_path / "eval/results.json").read_text())
    assert results["model"]["id"] == given and len(results["model"]["weights_sha256"]) == 64
