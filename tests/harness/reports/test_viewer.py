"""score-bench view: the page's data and self-containment, and a real headless chromium clicking a transition
cell on 5,000 samples per run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.generation import GenerationSettings
from score_bench.harness.evaluation.configs import EvalConfig
from score_bench.harness.evaluation.eval_run import run_eval
from score_bench.harness.reports.viewer import report_html, word_diff, write_report

from cdp_browser import Browser, find_chromium

TRANSITIONS = ("c2c", "c2i", "i2c", "i2i")


def embedded_data(html: str) -> dict:
    match = re.search(r'<script id="data" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(match.group(1))


def write_run(directory: Path, n: int, shift: int) -> Path:
    """An eval run's files in the format run_eval writes; sample i of this run has transition (i+shift) % 4."""
    directory.mkdir(parents=True)
    rows = []
    for i in range(n):
        first, second = {"c2c": (1, 1), "c2i": (1, 0), "i2c": (0, 1), "i2i": (0, 0)}[TRANSITIONS[(i + shift) % 4]]
        attempts = [{"text": f"Some work.\nAnswer: {i + 1 - first}", "extracted": str(i + 1 - first),
                     "correct": bool(first), "status": "correct" if first else "incorrect", "tokens": 5},
                    {"text": f"Checked again.\nAnswer: {i + 1 - second}", "extracted": str(i + 1 - second),
                     "correct": bool(second), "status": "correct" if second else "incorrect", "tokens": 5}]
        rows.append({"id": f"p{i:04d}", "sample": 0, "attempts": attempts,
                     "messages": [{"role": "user", "content": f"What is {i} + 1? </script><b>not bold</b>"}]})
    (directory / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (directory / "results.json").write_text(json.dumps({"metrics": {
        "acc_t1": {"value": 0.5, "ci95": [0.49, 0.51]}, "acc_t2": {"value": 0.5, "ci95": [0.49, 0.51]}}}))
    return directory


def test_word_diff_keeps_both_texts():
    segments = word_diff("The answer is 12.", "The answer is 13, I think.")
    assert "".join(t for op, t in segments if op != "+") == "The answer is 12."
    assert "".join(t for op, t in segments if op != "-") == "The answer is 13, I think."
    assert segments[:2] == [["=", "The answer is "], ["-", "12"]]


def test_report_of_a_real_eval_run_is_self_contained(tiny_backend, tmp_path):
    config = EvalConfig(model="tiny", task="score-toy", output=tmp_path / "run", limit=3,
                        generation=GenerationSettings(max_new_tokens=6))
    run_eval(config, backend=tiny_backend)
    html = report_html([config.output])
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", html)  # nothing fetched: assets are inline
    data = embedded_data(html)
    rows = [json.loads(line) for line in (config.output / "samples.jsonl").read_text().splitlines()]
    run = data["runs"][0]
    assert [s["attempts"][1]["text"] for s in run["samples"]] == [r["attempts"][1]["text"] for r in rows]
    assert run["metrics"]["acc_t1"] == json.loads((config.output / "results.json").read_text())["metrics"]["acc_t1"]
    assert run["prompts"][rows[0]["id"]].startswith("[system]")


def test_sample_text_cannot_close_the_script_element(tmp_path):
    html = report_html([write_run(tmp_path / "a", 4, 0)])
    assert html.count("</script>") == 2  # the data's own "</script>" is escaped
    assert embedded_data(html)["runs"][0]["prompts"]["p0000"].endswith("</script><b>not bold</b>")


def test_bad_input_is_one_error_and_writes_nothing(tmp_path):
    with pytest.raises(InputError, match="no samples.jsonl"):
        write_report([tmp_path], tmp_path / "report.html")
    assert not (tmp_path / "report.html").exists()


@pytest.fixture(scope="module")
def browser():
    executable = find_chromium()
    if executable is None:
        pytest.skip("chromium is not installed (make setup installs Debian's chromium when run as root)")
    pytest.importorskip("websockets", reason="the browser test drives chromium with the websockets package")
    session = Browser(executable)
    yield session
    session.close()


def test_clicking_a_transition_cell_filters_5000_samples_in_a_real_browser(browser, tmp_path):
    runs = [write_run(tmp_path / "run-a", 5000, 0), write_run(tmp_path / "run-b", 5000, 1)]
    report = write_report(runs, tmp_path / "report.html")
    browser.open(report.as_uri())
    assert browser.evaluate("document.querySelectorAll('article.sample').length") == 20  # one page, not 5,000
    browser.evaluate("document.querySelector('td.cell[data-run=\"0\"][data-cell=\"i2c\"]').click()")
    status = browser.evaluate("document.getElementById('status').textContent")
    assert status.startswith("1250 match (run-a i→c)")
    ids = browser.evaluate("[...document.querySelectorAll('article.sample h3')].map(h => h.firstChild.textContent)")
    assert len(ids) == 20 and all(int(i[1:5]) % 4 == 2 for i in ids)  # run-a's i→c samples only
    badges = browser.evaluate("[...document.querySelectorAll('article.sample')].map(a => "
                              "[...a.querySelectorAll('.badge')].map(b => b.textContent).join('|'))")
    assert set(badges) == {"run-a: i→c|run-b: i→i"}  # run-b side by side on the same problems
    assert browser.evaluate("document.querySelectorAll('article.sample del, article.sample ins').length") > 0
    assert browser.evaluate("document.querySelector('article.sample .prompt b')") is None  # text, not markup
    browser.evaluate("document.getElementById('next').click()")
    assert browser.evaluate("document.getElementById('page').textContent") == "page 2 / 63"
    shot = browser.screenshot(tmp_path / "viewer.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
