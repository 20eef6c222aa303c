"""An OpenAI-compatible endpoint that answers badly (issue #20 item 6): HTML from a proxy, other JSON, a reply
without choices. Each is one line naming the endpoint and the start of what it sent. Transport settings (timeout,
retries, concurrency) are no part of a run's identity: a run resumes with other ones, not with another model or
temperature.

The endpoint is tests/chat_endpoint.py's small HTTP server on 127.0.0.1 (the openai backend's own tests use it):
a test double whose replies the tests choose, which no real server gives on demand."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("openai")

from chat_endpoint import ChatEndpoint, completion  # noqa: E402

JSON, HTML, TEXT = "application/json", "text/html", "text/plain"


def _endpoint(models=None, replies=()):
    """An endpoint serving models "a" and "b"."""
    return ChatEndpoint(served=("a", "b"), models=models, replies=replies)


def _eval(endpoint, out, *extra, model="a"):
    return ["eval", "--backend", "openai", "--base-url", endpoint.url, "--model", model, "--task", "arith",
            "--limit", "2", "--batch-size", "1", "--max-new-tokens", "16", "--max-retries", "0", "--output", out,
            *extra]


BAD_COMPLETIONS = {
    # reply: (status, body, content type), what the error line quotes of it
    "html-page": ((200, "<html><body><h1>502 Bad Gateway</h1></body></html>", HTML), "'<html><body><h1>502 Bad"),
    "html-labelled-json": ((200, "<html>proxy login</html>", JSON), "'<html>proxy login</html>'"),
    "plain-text": ((200, "upstream connect error", TEXT), "'upstream connect error'"),
    "empty-body": ((200, "", JSON), "an empty body"),
    "json-array": ((200, "[1, 2]", JSON), "'[1, 2]'"),
    "no-choices": ((200, json.dumps({"object": "chat.completion", "choices": []}), JSON), '"choices": []'),
    "choices-null": ((200, json.dumps({"object": "chat.completion", "choices": None}), JSON), '"choices": null'),
    "no-message": ((200, json.dumps({"choices": [{"index": 0}]}), JSON), '"index": 0'),
    "content-not-text": ((200, completion(["a"]), JSON), "'{\"id\": \"x\""),
    "token-ids-not-ints": ((200, json.dumps({"choices": [{"message": {"content": "1"}, "token_ids": ["a"]}]}), JSON),
                           '"token_ids"'),
}


@pytest.mark.parametrize("reply", BAD_COMPLETIONS)
def test_a_reply_that_is_not_a_chat_completion_is_one_line_naming_the_endpoint(cli, expect_refused, tmp_path,
                                                                                reply):
    answer, quoted = BAD_COMPLETIONS[reply]
    with _endpoint(replies=[answer]) as endpoint:
        done = cli(*_eval(endpoint, tmp_path / "out"))
    expect_refused(done, f"endpoint {endpoint.url} answered POST /chat/completions (HTTP 200) with no chat "
                         "completion", quoted)
    assert not (tmp_path / "out" / "samples.jsonl").exists()  # nothing graded from it


BAD_MODEL_LISTS = {
    "html-page": ((200, "<html>It works!</html>", HTML), "'<html>It works!</html>'"),
    "plain-text": ((200, "ok", TEXT), "'ok'"),
    "json-array": ((200, "[]", JSON), "'[]'"),
    "no-data": ((200, json.dumps({"object": "list"}), JSON), '"object": "list"'),
    "entries-without-ids": ((200, json.dumps({"data": [{"name": "a"}]}), JSON), '"name": "a"'),
}


@pytest.mark.parametrize("reply", BAD_MODEL_LISTS)
def test_a_model_list_that_is_not_one_is_refused_before_anything_is_written(cli, snapshot, expect_refused, tmp_path,
                                                                             reply):
    answer, quoted = BAD_MODEL_LISTS[reply]
    before = snapshot(tmp_path)
    with _endpoint(models=answer) as endpoint:
        done = cli(*_eval(endpoint, tmp_path / "out"))
    expect_refused(done, f"endpoint {endpoint.url} answered GET /models (HTTP 200) with no model list", quoted)
    assert snapshot(tmp_path) == before and not endpoint.requests


def test_attempts_beyond_the_served_context_are_refused_before_any_request(cli, snapshot, expect_refused, tmp_path):
    before = snapshot(tmp_path)
    with _endpoint() as endpoint:
        done = cli(*_eval(endpoint, tmp_path / "out", "--max-new-tokens", "1500"))
    expect_refused(done, "2 attempt(s) of max_new_tokens 1500", "2048 tokens of context", "--max-new-tokens")
    assert snapshot(tmp_path) == before and not endpoint.requests


def test_a_run_that_timed_out_resumes_with_other_transport_settings_but_not_other_samples(cli, expect_refused,
                                                                                          tmp_path):
    out = tmp_path / "out"
    with _endpoint(replies=[(200, completion(), JSON)] * 2 + [(500, "{}", JSON)]) as endpoint:
        # batch 1: each conversation is its own chunk; the first finishes (2 attempts), the second fails
        first = cli(*_eval(endpoint, out, "--request-timeout", "1", "--max-concurrency", "1"))
        assert first.code == 2 and "answered 500" in first.stderr
        assert len((out / "samples.jsonl").read_text().splitlines()) == 1
        resumed = cli(*_eval(endpoint, out, "--request-timeout", "30", "--max-retries", "3",
                             "--max-concurrency", "4"))
        assert resumed.code == 0, resumed.stderr
        results = json.loads((out / "results.json").read_text())
        assert results["resumed_rows"] == 1 and results["counts"]["rows"] == 2
        assert results["config"]["backend_options"] == {"base_url": endpoint.url, "request_timeout": 30.0,
                                                        "max_retries": 3, "max_concurrency": 4}
        identity = json.loads((out / "eval_config.json").read_text())["config"]
        assert identity["backend_options"] == {"base_url": endpoint.url}
        kept = (out / "samples.jsonl").read_bytes()
        for other in (["--temperature", "0.5"], ["--max-new-tokens", "7"]):  # (the last of an option counts)
            expect_refused(cli(*_eval(endpoint, out, *other)), str(out), "holds a different run")
        expect_refused(cli(*_eval(endpoint, out, model="b")), str(out), "holds a different run", "model")
    assert (out / "samples.jsonl").read_bytes() == kept
