"""Turn a GGUF file (llama.cpp's format) into a plain Hugging Face checkpoint that eval, train and vLLM load.

transformers reads GGUF (the optional `gguf` package parses it) and dequantizes the weights, but refuses
`save_pretrained` on the model it builds that way. So the import rebuilds a plain model from the GGUF's
config, loads the dequantized state dict into it, and saves that with the tokenizer (chat template
included) and the generation config. Everything is checked before anything is written; the checkpoint is
written to a hidden sibling directory and renamed into place, so a failed import leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from score_bench.harness.contracts.errors import InputError, ScoreBenchError, extra_hint
from score_bench.harness.contracts.progress import Progress, phase

GGUF_MAGIC = b"GGUF"
SOURCE_FILE = "gguf_source.json"  # written next to the weights: which file the checkpoint came from


def import_gguf(gguf_file: Path, output: Path, *, progress: Progress | None = None) -> Path:
    """Import `gguf_file` into the new directory `output` (float32 weights, safetensors); returns `output`."""
    gguf_file, output = Path(gguf_file), Path(output)
    _check_paths(gguf_file, output)
    architecture = _check_supported(gguf_file)
    partial = output.parent / f".{output.name}.partial-{os.getpid()}"
    try:
        with phase(progress, f"loading {gguf_file.name} ({architecture}, dequantizing)", None):
            model, tokenizer = _load_plain(gguf_file)
        with phase(progress, f"saving {output}", None):
            output.parent.mkdir(parents=True, exist_ok=True)
            model.save_pretrained(partial)
            tokenizer.save_pretrained(partial)
            (partial / SOURCE_FILE).write_text(json.dumps(_source(gguf_file, architecture), indent=2) + "\n",
                                               encoding="utf-8")
            os.rename(partial, output)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return output


def _check_paths(gguf_file: Path, output: Path) -> None:
    if not gguf_file.is_file():
        raise InputError(f"GGUF file not found: {gguf_file}")
    with gguf_file.open("rb") as handle:
        if handle.read(len(GGUF_MAGIC)) != GGUF_MAGIC:
            raise InputError(f"{gguf_file} is not a GGUF file (it does not start with the bytes 'GGUF')")
    if output.exists():
        raise InputError(f"output {output} already exists; pass a new directory")


def _check_supported(gguf_file: Path) -> str:
    """The file's architecture, after checking that transformers can build it and dequantize every tensor."""
    try:
        from gguf import GGUFReader, GGMLQuantizationType
        from gguf.quants import _type_traits  # the quantization types gguf's dequantize implements
    except ImportError:
        raise ScoreBenchError(f"importing GGUF files needs the gguf package: {extra_hint('gguf')}") from None
    try:
        reader = GGUFReader(gguf_file)
        architecture = _field_text(reader, "general.architecture")
    except (ValueError, KeyError, IndexError) as err:
        raise InputError(f"{gguf_file} is not a readable GGUF file: {err}") from None
    plain = {GGMLQuantizationType.F32, GGMLQuantizationType.F16, GGMLQuantizationType.BF16}
    unsupported = sorted({t.tensor_type.name for t in reader.tensors
                          if t.tensor_type not in plain and t.tensor_type not in _type_traits})
    if unsupported:
        raise InputError(f"{gguf_file}: quantization {', '.join(unsupported)} cannot be dequantized by the "
                         f"installed gguf package")
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(str(gguf_file.parent.resolve()), gguf_file=gguf_file.name)
    except (ValueError, KeyError, NotImplementedError) as err:
        raise InputError(f"{gguf_file}: architecture '{architecture}' is not supported by transformers' GGUF "
                         f"loader ({_first_line(err)})") from None
    return architecture


def _load_plain(gguf_file: Path):
    """The GGUF's model, dequantized into a freshly built plain model, and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where, name = str(gguf_file.parent.resolve()), gguf_file.name
    try:
        loaded = AutoModelForCausalLM.from_pretrained(where, gguf_file=name, dtype=torch.float32,
                                                      **_dequantize_option())
        tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=name)
    except (ValueError, KeyError, NotImplementedError, TypeError) as err:
        raise InputError(f"{gguf_file}: transformers could not load it: {_first_line(err)}") from None
    config = loaded.config
    for attribute in ("quantization_config", "_pre_quantization_dtype"):  # the plain model is not quantized
        if hasattr(config, attribute):
            delattr(config, attribute)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    model.tie_weights()
    return model.eval(), tokenizer


def _dequantize_option() -> dict:
    """Newer transformers can keep GGUF blocks packed (GgufConfig); ask for plain dense weights explicitly."""
    try:
        from transformers import GgufConfig
    except ImportError:  # older releases always dequantize
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


def _source(gguf_file: Path, architecture: str) -> dict:
    from score_bench.harness.runtime.provenance import package_versions

    return {"gguf_file": gguf_file.name, "bytes": gguf_file.stat().st_size, "architecture": architecture,
            "dtype": "float32", "versions": {**package_versions(), "gguf": _version("gguf")}}


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _field_text(reader, key: str) -> str:
    field = reader.fields[key]
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
