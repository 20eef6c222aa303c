"""The openai backend against a small local HTTP server (tests/chat_endpoint.py: a test double playing a
chat-completions endpoint whose answers and failures the tests choose, which no real server does on demand). The
real thing, `vllm serve` of SmolLM2, is in tests/backends_vllm/test_openai_serve.py (run by `make test-vllm`)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("openai")

from chat_endpoint import ChatEndpoint as Endpoint  # noqa: E402
from score_bench.harness.contracts.errors import InputError, ScoreBenchError  # noqa: E402
from score_bench.harness.contracts.generation import GenerationParams  # noqa: E402
from score_bench.harness.generation.backends import load_backend  # noqa: E402

SECRET = "sk-test-0123456789-never-written"


def _conversations(n):
    return [[{"role": "user", "content": f"question {i}"}] for i in range(n)]


def test_answers_in_input_order_with_key_seed_and_stop(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with Endpoint() as endpoint:
        backend = load_backend("openai", model="served-model", base_url=endpoint.url, max_concurrency=4)
        out = backend.generate(_conversations(6), GenerationParams(max_new_tokens=7, temperature=0.5, stop=("###",)))
    assert [c.text.split(" seed ")[0] for c in out] == [f"echo question {i}" for i in range(6)]
    assert all(c.n_tokens == 5 and c.token_ids == () for c in out)  # not a vLLM server: no token ids
    assert all(h["authorization"] == f"Bearer {SECRET}" for h in endpoint.headers)
    request = endpoint.requests[0]
    assert request["max_tokens"] == 7 and request["temperature"] == 0.5 and request["stop"] == ["###"]
    assert "return_token_ids" not in request  # only vLLM's server knows it
    seeds = {r["messages"][-1]["content"]: r["seed"] for r in endpoint.requests}
    assert len(set(seeds.values())) == 6  # per-row seeds


def test_seeds_depend_on_the_conversation_not_on_order_or_concurrency():
    params = GenerationParams(max_new_tokens=512, temperature=1.0, seed=3)
    with Endpoint() as endpoint:
        backend = load_backend("openai", model="served-model", base_url=endpoint.url, max_concurrency=1)
        forward = backend.generate(_conversations(4), params)
        backend.max_concurrency = 3
        backward = backend.generate(_conversations(4)[::-1], params)
    assert [c.text for c in forward] == [c.text for c in backward][::-1]


def test_retries_429_and_503_with_backoff_then_succeeds():
    with Endpoint(failures=[429, 503]) as endpoint:
        backend = load_backend("openai", model="served-model", base_url=endpoint.url, max_retries=3)
        out = backend.generate(_conversations(1), GenerationParams(max_new_tokens=512))
    assert out[0].text.startswith("echo question 0")
    assert len(endpoint.requests) == 3  # two refusals, then the answer


def test_gives_up_after_max_retries_with_one_line():
    with Endpoint(failures=[500] * 10) as endpoint:
        backend = load_backend("openai", model="served-model", base_url=endpoint.url, max_retries=2)
        with pytest.raises(ScoreBenchError, match="answered 500") as info:
            backend.generate(_conversations(1), GenerationParams(max_new_tokens=512))
    assert len(endpoint.requests) == 3 and "\n" not in str(info.value)


def test_server_down_is_one_clear_line():
    with Endpoint() as endpoint:
        url = endpoint.url
    with pytest.raises(InputError, match=r"cannot reach endpoint .* is the server running\?") as info:
        load_backend("openai", model="served-model", base_url=url)
    assert "\n" not in str(info.value)


def test_unknown_model_names_what_is_served():
    with Endpoint(served=["a", "b"]) as endpoint:
        with pytest.raises(InputError, match="model 'c' is not served at .*; it serves: a, b"):
            load_backend("openai", model="c", base_url=endpoint.url)


@pytest.mark.parametrize("options, message", [
    ({"base_url": None}, "needs --base-url"),
    ({"base_url": "127.0.0.1:8000"}, "not an http"),
    ({"max_concurrency": 0}, "concurrency must be at least 1"),
    ({"request_timeout": 0}, "timeout must be positive"),
    ({"dtype": "float32"}, "does not apply to the openai backend"),
    ({"chat_template": "t.jinja"}, "server applies its own"),
])
def test_bad_options_fail_before_any_request(options, message):
    with Endpoint() as endpoint:
        kwargs = {"model": "served-model", "base_url": endpoint.url, **options}
        with pytest.raises(InputError, match=message):
            load_backend("openai", **kwargs)
    assert endpoint.requests == []


def test_eval_records_the_endpoint_and_never_the_key(monkeypatch, tmp_path, capsys):
    from score_bench.harness.evaluation.configs import EvalConfig
    from score_bench.harness.evaluation.eval_run import run_eval

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    out = tmp_path / "run"
    with Endpoint() as endpoint:
        config = EvalConfig(model="served-model", task="arith", output=out, limit=3, backend="openai",
                            backend_options={"base_url": endpoint.url, "max_concurrency": 2})
        results = run_eval(config)
    assert results["model"]["endpoint"]["model_id"] == "served-model"
    assert results["model"]["endpoint"]["server_version"] == "9.9.9-double"
    assert results["counts"]["rows"] == 3
    assert results["config"]["max_new_tokens"] == 512  # no local tokenizer to measure prompts: the default
    written = "".join(p.read_text() for p in out.iterdir() if p.is_file())
    captured = capsys.readouterr()
    assert SECRET not in written + captured.out + captured.err
    assert endpoint.url in written


def test_a_failing_request_does_not_leak_the_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with Endpoint(failures=[401]) as endpoint:
        backend = load_backend("openai", model="served-model", base_url=endpoint.url, max_retries=0)
        with pytest.raises(ScoreBenchError) as info:
            backend.generate(_conversations(1), GenerationParams(max_new_tokens=512))
    assert "401" in str(info.value) and SECRET not in str(info.value)


def test_cli_refuses_an_option_of_another_backend(tmp_path):
    from typer.testing import CliRunner

    from score_bench.cli import app

    result = CliRunner().invoke(app, ["eval", "--model", "m", "--task", "arith", "--output", str(tmp_path / "o"),
                                      "--base-url", "http://127.0.0.1:1/v1"])
    assert result.exit_code != 0
    assert "--base-url applies to --backend openai, not transformers" in str(result.exception)
    assert not (tmp_path / "o").exists()


def test_cli_eval_on_an_endpoint(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from score_bench.cli import app

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with Endpoint() as endpoint:
        result = CliRunner().invoke(app, ["eval", "--model", "served-model", "--task", "arith", "--limit", "2",
                                          "--output", str(tmp_path / "o"), "--backend", "openai",
                                          "--base-url", endpoint.url, "--max-concurrency", "2"])
    assert result.exit_code == 0, result.output
    identity = json.loads((tmp_path / "o" / "eval_config.json").read_text())["config"]
    assert identity["backend"] == "openai" and identity["backend_options"] == {"base_url": endpoint.url}
    recorded = json.loads((tmp_path / "o" / "results.json").read_text())["config"]  # transport settings too
    assert recorded["backend_options"] == {"base_url": endpoint.url, "max_concurrency": 2}
