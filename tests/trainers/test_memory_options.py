"""The memory options (harness.training.memory_options) on the tiny model: a LoRA SCoRe step trains the adapters only,
its reference is the base with the adapters disabled (no second copy), its merged checkpoint is base + delta and
loads in eval; gradient checkpointing recomputes the layers and gives the same gradients; bad options are refused
in one line before anything is written."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.fields import with_values
from score_bench.harness.contracts.generation import GenerationSettings
from score_bench.harness.evaluation.configs import EvalConfig
from score_bench.harness.evaluation.eval_run import run_eval
from score_bench.harness.training.config import build_config
from score_bench.harness.training.encoding import encode_two_attempts, token_logprobs
from score_bench.harness.training.memory_options import MemoryOptions, apply_memory_options, build_optimizer
from score_bench.trainers.score import PRESETS, ScoreConfig, ScoreRun

from float_tolerance import EPS32, assert_same_gradient, logprob_tolerance
from test_score_trainer import SAMPLE, ParityTask, smoke

pytest.importorskip("peft")

LORA = {"lora_r": 4, "lora_alpha": 8.0, "split": "train", "eval_split": "train", "save_every": 0, "beta1": 0.5,
        "beta2": 0.5}


def test_lora_step_trains_only_the_adapters_against_the_base_with_adapters_disabled(tiny_model, tmp_path):
    score = ScoreRun(smoke(tiny_model, tmp_path, **LORA), task=ParityTask())
    run = score.run
    before = {name: tensor.clone() for name, tensor in run.model.state_dict().items()}
    score.train_step(1)
    score.train_step(1)  # B moves on the first step, A only once B is non-zero
    after = run.model.state_dict()
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and all(".lora_A." in name or ".lora_B." in name for name in changed), changed
    assert any(".lora_A." in name for name in changed) and any(".lora_B." in name for name in changed)
    trainable = {name for name, p in run.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)

    # The reference is the policy itself with its adapters disabled: no second set of weights.
    assert run.reference.adapters is run.model and run.reference.model is run.policy
    others = [k for k, v in vars(run).items() if isinstance(v, PreTrainedModel) and k not in ("model", "policy")]
    assert not others
    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    batch = encode_two_attempts(run.tokenizer, [SAMPLE, SAMPLE])
    with torch.no_grad():
        expected = token_logprobs(base, batch.input_ids, batch.attention_mask)
        policy = token_logprobs(run.policy, batch.input_ids, batch.attention_mask)
    reference = token_logprobs(run.reference, batch.input_ids, batch.attention_mask)
    tolerance = logprob_tolerance(base.config)
    torch.testing.assert_close(reference, expected, rtol=0, atol=tolerance)
    assert float((policy - expected).abs().max()) > 100 * tolerance  # the adapters are on in the policy, and matter


def test_lora_merged_checkpoint_is_base_plus_delta_and_loads_in_eval(tiny_model, tmp_path):
    from peft.tuners.lora import LoraLayer

    score = ScoreRun(smoke(tiny_model, tmp_path, **LORA, lora_target_modules="q_proj,v_proj,down_proj"),
                     task=ParityTask())
    score.stage(1)
    score.stage(2)
    run = score.run
    merged = run.save(tmp_path / "merged", {"steps": run.step})
    assert not (merged / "adapter_config.json").exists()
    saved = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32).state_dict()
    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).state_dict()
    assert saved.keys() == base.keys()
    adapted = {}
    for name, module in run.model.get_base_model().named_modules():
        if isinstance(module, LoraLayer):
            adapted[f"{name}.weight"] = module.get_delta_weight("default")
    assert len(adapted) == 3 * 2  # three module kinds in each of two layers
    for name, weight in saved.items():
        if name not in adapted:
            assert torch.equal(weight, base[name]), name
            continue
        # W + delta, rounded here and in peft's merge, whose delta may be rounded in another order: a couple of
        # roundings at the size of the terms
        size = float((base[name].abs() + adapted[name].abs()).max())
        torch.testing.assert_close(weight, base[name] + adapted[name], rtol=0, atol=2 * EPS32 * size, msg=name)
    assert any(adapted[name].abs().max() > 1e-4 for name in adapted)  # training moved the merged weights

    results = run_eval(EvalConfig(model=str(merged), task="arith", output=tmp_path / "eval", limit=3,
                                  generation=GenerationSettings(max_new_tokens=8), batch_size=4, device="cpu"))
    assert results["model"]["id"] == str(merged) and results["counts"]["problems"] == 3


def test_lora_adapter_checkpoint_loads_as_the_merged_one(tiny_model, tmp_path):
    score = ScoreRun(smoke(tiny_model, tmp_path, **LORA, lora_save="adapter"), task=ParityTask())
    score.train_step(1)
    score.train_step(1)
    run = score.run
    adapter = run.save(tmp_path / "adapter", {"steps": run.step})
    assert (adapter / "adapter_config.json").is_file() and not (adapter / "model.safetensors").exists()
    run.config = replace(run.config, lora_save="merged")
    merged = run.save(tmp_path / "merged", {"steps": run.step})
    batch = encode_two_attempts(run.tokenizer, [SAMPLE])
    with torch.no_grad():  # transformers loads an adapter directory through peft, onto the base it names
        from_adapter = AutoModelForCausalLM.from_pretrained(adapter).eval()
        from_merged = AutoModelForCausalLM.from_pretrained(merged).eval()
        a = token_logprobs(from_adapter, batch.input_ids, batch.attention_mask)
        b = token_logprobs(from_merged, batch.input_ids, batch.attention_mask)
    torch.testing.assert_close(a, b, rtol=0, atol=logprob_tolerance(from_merged.config))  # W x + B A x vs (W + B A) x


def _logprob_grads(model, batch) -> tuple[dict[str, torch.Tensor], int]:
    """Gradients of the summed log-probabilities, and how often a layer's MLP started a forward (a pre-hook: the
    replay stops as soon as it has recomputed what backward needs, inside the MLP, before a forward hook fires)."""
    calls = []
    hooks = [layer.mlp.register_forward_pre_hook(lambda *_: calls.append(1)) for layer in model.model.layers]
    model.zero_grad(set_to_none=True)
    token_logprobs(model, batch.input_ids, batch.attention_mask).sum().backward()
    for hook in hooks:
        hook.remove()
    return {name: p.grad.clone() for name, p in model.named_parameters()}, len(calls)


def test_gradient_checkpointing_recomputes_the_layers_and_gives_the_same_gradients(tiny_model, tiny_backend):
    batch = encode_two_attempts(tiny_backend.tokenizer, [SAMPLE, SAMPLE])
    plain = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    checkpointed = apply_memory_options(AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval(),
                                        MemoryOptions(gradient_checkpointing=True))
    checkpointed.eval()  # as the trainers keep it: checkpointing must happen in eval mode too
    expected, plain_calls = _logprob_grads(plain, batch)
    got, checkpointed_calls = _logprob_grads(checkpointed, batch)
    layers = len(plain.model.layers)
    assert plain_calls == layers and checkpointed_calls == 2 * layers  # each layer's forward replayed once
    assert_same_gradient(expected, got, int(batch.attention_mask.sum()))  # each a sum over the batch's tokens
    with torch.no_grad():  # no gradient (generation, the reference): nothing to replay, one forward per layer
        calls = []
        hooks = [layer.mlp.register_forward_pre_hook(lambda *_: calls.append(1)) for layer in checkpointed.model.layers]
        token_logprobs(checkpointed, batch.input_ids, batch.attention_mask)
        for hook in hooks:
            hook.remove()
    assert len(calls) == layers
    assert not any(m.training for m in checkpointed.modules() if isinstance(m, torch.nn.Dropout))


def test_optimizer_choice_covers_the_trainable_parameters_only(tiny_model):
    model = apply_memory_options(AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32),
                                 MemoryOptions(lora_r=2))
    config = build_config(ScoreConfig, PRESETS, "smoke", {"optimizer": "adamw", "weight_decay": 0.1})
    optimizer = build_optimizer(model, config)
    assert type(optimizer) is torch.optim.AdamW
    params = [p for group in optimizer.param_groups for p in group["params"]]
    assert len(params) == sum(p.requires_grad for p in model.parameters()) < len(list(model.parameters()))
    assert type(build_optimizer(model, with_values(config, optimizer="adam"))) is torch.optim.Adam


def _bitsandbytes_imports() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except Exception:
        return False
    return True


@pytest.mark.parametrize("changes, message", [
    ({"lora_r": -1}, "'lora_r' must be >= 0"),
    ({"lora_r": 4, "lora_alpha": 0}, "'lora_alpha' must be > 0"),
    ({"lora_r": 4, "lora_target_modules": " , "}, "lora_target_modules is empty"),
    ({"lora_r": 4, "lora_target_modules": "no_such_proj"}, "lora_target_modules 'no_such_proj'"),
    ({"lora_r": 4, "backend": "vllm"}, "lora_r > 0 samples with backend transformers only"),
    ({"mixed_precision": "bf16"}, "mixed_precision 'bf16' needs a CUDA device; on cpu training runs in float32"),
    ({"mixed_precision": "fp16"}, "mixed_precision 'fp16' needs a CUDA device"),
    pytest.param({"optimizer": "adamw_8bit"}, "optimizer 'adamw_8bit' needs bitsandbytes",
                 marks=pytest.mark.skipif(_bitsandbytes_imports(), reason="bitsandbytes imports here")),
])
def test_bad_options_are_refused_in_one_line_before_anything_is_written(tiny_model, tmp_path, changes, message):
    with pytest.raises(InputError) as caught:
        ScoreRun(smoke(tiny_model, tmp_path, **changes), task=ParityTask())
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("key, value", [("optimizer", "sgd"), ("lora_save", "both"), ("mixed_precision", "fp8"),
                                        ("lora_r", "four"), ("gradient_checkpointing", "maybe")])
def test_option_values_are_checked_when_the_config_is_built(key, value):
    with pytest.raises(InputError, match=f"setting '{key}'"):
        build_config(ScoreConfig, PRESETS, "smoke", {key: value})


def test_memory_estimate_follows_the_options(tiny_model):
    from score_bench.harness.training.memory_estimate import estimate, model_shape, trainable_parameters

    shape = model_shape(str(tiny_model))
    base = build_config(ScoreConfig, PRESETS, "paper", {"micro_batch_size": 4})
    plain = estimate(shape, base, 300, reference=True, traces_per_step=512)
    lora = estimate(shape, with_values(base, lora_r=4), 300, reference=True, traces_per_step=512)
    model = apply_memory_options(AutoModelForCausalLM.from_pretrained(tiny_model), MemoryOptions(lora_r=4))
    adapters = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable_parameters(shape, with_values(base, lora_r=4)) == adapters  # counted as peft builds them
    assert lora.reference == 0 and plain.reference == shape.parameters * 4
    assert lora.gradients == adapters * 4 and lora.optimizer == adapters * 8
    assert lora.parameters == (shape.parameters + adapters) * 4
    checkpointed = estimate(shape, with_values(base, gradient_checkpointing=True), 300, reference=True,
                            traces_per_step=512)
    assert checkpointed.activations < plain.activations
    eight_bit = estimate(shape, with_values(base, optimizer="adamw_8bit"), 300, reference=True, traces_per_step=512)
    assert eight_bit.optimizer == shape.parameters * 2


def test_memory_estimate_counts_tied_embeddings_once(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    from score_bench.harness.training.memory_estimate import model_shape

    config = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert model_shape(str(tmp_path)).parameters == sum(p.numel() for p in loaded.parameters())


def test_sft_baseline_trains_lora_with_checkpointing_and_saves_merged(tiny_model, tmp_path):
    from score_bench.trainers.star import PRESETS as STAR_PRESETS, StarConfig, StarTrainer

    config = with_values(build_config(StarConfig, STAR_PRESETS, "smoke"), model=str(tiny_model),
                     output=str(tmp_path / "out"), variant="d_plus", lora_r=4, gradient_checkpointing=True,
                     optimizer="adamw")
    out = StarTrainer().train(config, task=ParityTask())
    assert not (out / "adapter_config.json").exists()
    trained = AutoModelForCausalLM.from_pretrained(out).state_dict()
    base = AutoModelForCausalLM.from_pretrained(tiny_model).state_dict()
    assert trained.keys() == base.keys()
    moved = {name for name in base if not torch.equal(trained[name], base[name])}
    assert moved and all(name.endswith("proj.weight") for name in moved)  # adapted linears only, merged in
