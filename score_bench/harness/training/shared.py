"""What every trainer shares: the Trainer protocol, building a config from a preset and `--set key=value`
overrides, turning two-attempt conversations into token ids with per-attempt masks, per-token log-probabilities
under a model, the held-out evaluation rows of the training log, and writing a checkpoint with its config and
training log.

The masks and the log-probabilities are where public SCoRe reproductions went wrong (no attention mask on
left-padded batches, pad tokens trained when pad == eos), so both are built from the structure of the
conversation, never by comparing token ids with the pad id.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import random
import shutil
import tempfile
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Protocol, Sequence

import torch
import torch.nn.functional as F

from score_bench.harness.contracts.checks import check_fields, coerce
from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.generation import Backend, GenerationParams
from score_bench.harness.contracts.progress import Progress
from score_bench.harness.contracts.protocols import Task
from score_bench.harness.contracts.types import Message, Problem, Status
from score_bench.harness.evaluation.metrics import summarize
from score_bench.harness.generation.backends import release_sampler
from score_bench.harness.generation.rollout import Attempt, RolloutConfig, Trace, rollout
from score_bench.harness.runtime.input_files import read_text
from score_bench.harness.runtime.provenance import provenance, write_json_atomic, write_text_atomic
from score_bench.harness.runtime.saving import append_whole, saving
from score_bench.harness.training.memory_options import MemoryOptions
from score_bench.harness.training.resume import preserved_rng

__all__ = ["Trainer", "RunConfig", "build_config", "TwoAttempts", "EncodedBatch", "encode_two_attempts",
           "two_attempts_of", "rewarded_as", "draw_problems", "token_logprobs", "masked_sum", "HeldOutEval", "TrainingLog",
           "save_checkpoint",
           "CONFIG_FILE", "LOG_FILE"]

CONFIG_FILE = "trainer_config.json"
LOG_FILE = "training_log.jsonl"


class Trainer(Protocol):
    """A trainer plugin (entry-point group `score_bench.trainers`): a config class, named presets, and
    `train(config) -> checkpoint directory`."""

    name: str
    config_class: type
    presets: Mapping[str, Mapping[str, Any]]
    """Preset name -> field values over the config class's defaults."""

    def train(self, config: Any, progress: Progress | None = None) -> Path: ...


# -- configs ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunConfig(MemoryOptions):
    """The fields every trainer's config starts with: where a run starts, on what, where it writes, its seed, and
    the memory options (harness.training.memory_options). Trainer configs subclass it and add their own knobs."""

    model: str = ""
    """Base checkpoint (directory or Hub id) the run starts from; for SCoRe also the frozen reference."""
    task: str = "arith"
    """Registered task name (`score-bench tasks`)."""
    output: str = "checkpoint"
    """Directory for the final checkpoint, trainer_config.json and training_log.jsonl."""
    task_options: dict = field(default_factory=dict)
    """Keyword arguments for the task's constructor (e.g. {"digits": 2}); JSON on the command line."""
    split: str = "train"
    """Task split the training problems are drawn from (never the evaluation split)."""
    seed: int = 0
    """Seeds problem order and sampling (and, for the SFT baselines, pair drawing and minibatch order)."""
    eval_every: int = 0
    """Optimiser steps between held-out evaluations (greedy, two attempts, logged as rows with kind "eval");
    the base model is evaluated at step 0 and the final model at the end of training too. 0 turns evaluation
    off."""
    eval_split: str = "test"
    eval_task: str = ""
    """Task of the held-out evaluation when it differs from the training task (e.g. train on mbpp, evaluate on
    humaneval: the paper's transfer); "" evaluates on the training task."""
    eval_task_options: dict = field(default_factory=dict)
    """Keyword arguments for eval_task's constructor; JSON on the command line."""
    eval_problems: int = 100
    """The first N problems of eval_split: the same fixed subset at every evaluation, so curves compare."""
    save_every: int = 10
    """Optimiser steps between resumable states in OUTPUT/state/ (0: never; a killed run then starts over)."""
    reward: Literal["strict", "flexible"] = "strict"
    """Which verdict is the training reward: "strict" (the task's stated answer format, the paper's and the
    headline metric) or "flexible" (the task's flexible extraction, e.g. arith's last number): for a model that
    solves problems but ignores the format, where strict rewards are all 0 and nothing is learned."""
    micro_batch_size: int | None = None
    """Traces (SFT: examples) scored per forward/backward pass; gradients accumulate over a step's micro-batches,
    so the step is exactly the one-pass step (harness.training.accumulation). None: the whole batch in one pass."""
    micro_batch_tokens: int | None = None
    """Optionally also cap each micro-batch at this many padded tokens (rows x longest row)."""
    backend: Literal["transformers", "vllm"] = "transformers"
    """The sampler of the training rollouts (harness.training.sampler). transformers generates with the policy
    module itself; vllm runs a colocated vLLM engine (score-bench[vllm], one process only) whose weights are
    loaded in place from the policy after every optimiser step, and logs sampler_logprob_gap, the largest
    difference between vLLM's and the policy's log-probabilities of a few sampled tokens after the load.
    Held-out evaluation stays on transformers."""


def build_config(config_class: type, presets: Mapping[str, Mapping[str, Any]], preset: str | None = None,
                 overrides: Mapping[str, Any] | None = None):
    """`config_class` from its defaults, then the named preset, then `overrides` (from `--set key=value` or a
    YAML file; strings are converted to the field's type). Unknown keys and bad values fail by name."""
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in presets:
            near = difflib.get_close_matches(preset, list(presets), n=1)
            hint = f" Did you mean '{near[0]}'?" if near else ""
            raise InputError(f"unknown preset '{preset}'. Available: {', '.join(presets)}.{hint}")
        values.update(presets[preset])
    hints = typing.get_type_hints(config_class)
    fields = {f.name for f in dataclasses.fields(config_class)}
    for key, value in (overrides or {}).items():
        if key not in fields:
            near = difflib.get_close_matches(key, sorted(fields), n=1)
            hint = f" Did you mean '{near[0]}'?" if near else ""
            raise InputError(f"unknown setting '{key}' for {config_class.__name__}.{hint}")
        values[key] = coerce(key, value, hints[key])
    config = config_class(**values)
    check_fields(config, config_class.__name__)
    return config


# -- conversations to tokens -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class TwoAttempts:
    """One sampled trace: attempt 1 answers `prompt`, attempt 2 answers the correction `instruction`."""

    prompt: list[Message]
    first: str
    instruction: str
    second: str
    first_ended: bool = True
    """Whether attempt 1 ended with the end-of-turn token (False when cut at max_new_tokens): the end token is
    trained only when it was sampled."""
    second_ended: bool = True
    first_ids: tuple[int, ...] = ()
    """The token ids sampled for attempt 1 (Attempt.token_ids): what is scored in place of a re-tokenization of
    `first`. Empty when unknown (a given attempt, a backend that does not report ids): then `first` is tokenized."""
    second_ids: tuple[int, ...] = ()


def two_attempts_of(trace: Trace, first: Attempt, second: Attempt, max_new_tokens: int) -> TwoAttempts:
    """(x, y1, instruction, y2) in the trace's own conversation: the prompt is everything before its attempt 1,
    the instruction the user turn after it. `first` and `second` may come from other traces of the same problem
    (Pair-SFT). An attempt that used all max_new_tokens was cut, so its end token is not trained."""
    messages = trace.messages
    prompt = list(messages[:len(messages) - 2 * len(trace.attempts) + 1])
    instruction = messages[len(prompt) + 1]["content"]
    return TwoAttempts(prompt, first.text, instruction, second.text,
                       first_ended=first.n_tokens < max_new_tokens, second_ended=second.n_tokens < max_new_tokens,
                       first_ids=tuple(first.token_ids), second_ids=tuple(second.token_ids))


def rewarded_as(traces: Sequence[Trace], reward: str) -> list[Trace]:
    """`traces` with each attempt's verdict the one the run is rewarded by: as graded for "strict", the flexible
    verdict (and its extraction) for "flexible". Everything after sampling (rewards, SFT selection, statistics)
    then reads `attempt.verdict` alike."""
    if reward == "strict":
        return list(traces)
    if reward != "flexible":
        raise InputError(f"reward must be strict or flexible, got '{reward}'")
    out = []
    for trace in traces:
        attempts = tuple(a if a.flexible_verdict is None else
                         dataclasses.replace(a, verdict=a.flexible_verdict, extracted=a.flexible_verdict.extracted)
                         for a in trace.attempts)
        out.append(dataclasses.replace(trace, attempts=attempts))
    return out


def draw_problems(problems: Sequence[Problem], order: list[Problem], rng: random.Random, size: int) -> list[Problem]:
    """`size` problems, epoch by epoch: `order` holds what is left of the current epoch (refilled from `problems`
    and shuffled by `rng` when empty), so saving `order` and the rng state is enough to resume the stream."""
    batch = []
    while len(batch) < size:
        if not order:
            order.extend(problems)
            rng.shuffle(order)
        batch.append(order.pop())
    return batch


@dataclass(frozen=True)
class EncodedBatch:
    """Left-padded token ids with the attention mask and one mask per attempt, all [batch, length].

    attempt_masks[i][b, t] is True where token t of row b was sampled as part of attempt i+1 (its content and
    its closing end-of-turn token), so the log-probability at position t (of token t given tokens < t) is an
    attempt-(i+1) action. Prompt, instruction, template scaffolding and padding are never inside a mask."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    attempt_masks: tuple[torch.Tensor, torch.Tensor]

    def to(self, device) -> "EncodedBatch":
        return EncodedBatch(self.input_ids.to(device), self.attention_mask.to(device),
                            (self.attempt_masks[0].to(device), self.attempt_masks[1].to(device)))

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def lengths(self) -> list[int]:
        """Each row's length without padding."""
        return self.attention_mask.sum(-1).tolist()

    def rows(self, part: slice) -> "EncodedBatch":
        """The rows of `part`, without the left-padding columns none of them needs. Positions count attended
        tokens only (token_logprobs), so every row scores exactly as in the whole batch."""
        mask = self.attention_mask[part]
        width = int(mask.sum(-1).max()) if mask.numel() else 0
        cut = slice(self.input_ids.shape[1] - width, None)
        return EncodedBatch(self.input_ids[part, cut], mask[:, cut],
                            (self.attempt_masks[0][part, cut], self.attempt_masks[1][part, cut]))


def _render(tokenizer, messages: list[Message], generation_prompt: bool) -> str:
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    except Exception as err:  # jinja raises for roles a template forbids
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"the chat template rejected a conversation: {first}") from None


def _split_turn(rendered: str, prefix: str, content: str, where: str) -> str:
    """What the template puts after an assistant turn's `content` (e.g. '<|im_end|>\\n'), checking that the
    rendered conversation is `prefix + content + tail` — true of every prefix-stable chat template."""
    if not rendered.startswith(prefix + content):
        raise InputError(f"the chat template does not render the {where} as generation prompt + content; "
                         "score-bench needs a template whose turns are appended, not rewritten")
    return rendered[len(prefix) + len(content):]


def _segments(tokenizer, sample: TwoAttempts) -> list[tuple[str, int]]:
    """The conversation as (text, owner) pieces in order; owner 0 = context, 1/2 = that attempt's content,
    -1/-2 = the text closing that attempt's turn (its end-of-turn token, then scaffolding)."""
    first_turn = [*sample.prompt, {"role": "assistant", "content": sample.first}]
    second_prompt = [*first_turn, {"role": "user", "content": sample.instruction}]
    p1 = _render(tokenizer, sample.prompt, True)
    a1 = _render(tokenizer, first_turn, False)
    tail1 = _split_turn(a1, p1, sample.first, "first attempt")
    p2 = _render(tokenizer, second_prompt, True)
    if not p2.startswith(a1):
        raise InputError("the chat template rewrites earlier turns when a user turn is added")
    a2 = _render(tokenizer, [*second_prompt, {"role": "assistant", "content": sample.second}], False)
    tail2 = _split_turn(a2, p2, sample.second, "second attempt")
    return [(p1, 0), (sample.first, 1), (tail1, -1), (p2[len(a1):], 0), (sample.second, 2), (tail2, -2)]


def sampled_content(tokenizer, ids: Sequence[int], text: str) -> list[int] | None:
    """The sampled ids of an attempt's content (without a sampled end token), when they are what `text` holds;
    None when they are not known or not the text (a stop string cut it), so the text must be tokenized."""
    ids = list(ids)
    if ids and ids[-1] in set(tokenizer.all_special_ids):
        ids = ids[:-1]
    if not ids or tokenizer.decode(ids, skip_special_tokens=True) != text:
        return None
    return ids


def encode_two_attempts(tokenizer, samples: Sequence[TwoAttempts]) -> EncodedBatch:
    """Token ids of each two-attempt conversation, rendered by the tokenizer's chat template, left-padded.

    Each piece is tokenized on its own, as generation saw it: the attempt-1 prompt as one text, then each
    attempt's sampled token ids, then its end-of-turn token. The sampled ids are scored, not a re-tokenization
    of the text, which need not be the sampled split (issue #10 item 8: the policy gradient and the KL are then
    taken on the tokens the policy actually chose); only an attempt whose ids are unknown or do not decode to its
    text is tokenized from the text. Turns end in special tokens, so the pieces never merge across turns."""
    rows: list[tuple[list[int], list[int]]] = []  # (ids, owner per id: 0 context, 1, 2 attempt)
    for sample in samples:
        ids: list[int] = []
        owners: list[int] = []
        sampled = {1: sampled_content(tokenizer, sample.first_ids, sample.first),
                   2: sampled_content(tokenizer, sample.second_ids, sample.second)}
        for text, owner in _segments(tokenizer, sample):
            if owner in sampled and sampled[owner] is not None:
                piece = sampled[owner]
            else:
                piece = tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
            if owner < 0:  # the closing text: its first token ends the attempt and was sampled with it
                attempt = -owner
                if not piece or piece[0] not in set(tokenizer.all_special_ids):
                    raise InputError("the chat template closes an assistant turn without a special end-of-turn "
                                     "token, so the end of an attempt cannot be located")
                ended = sample.first_ended if attempt == 1 else sample.second_ended
                if attempt == 2:
                    piece = piece[:1] if ended else []  # nothing after the last attempt is needed
                ids.extend(piece)
                if piece:
                    owners.extend([attempt if ended else 0] + [0] * (len(piece) - 1))
            else:
                ids.extend(piece)
                owners.extend([owner] * len(piece))
        rows.append((ids, owners))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad if pad is not None else 0, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    owner_grid = torch.zeros((len(rows), width), dtype=torch.long)
    for row, (ids, owners) in enumerate(rows):
        start = width - len(ids)  # left padding: the same layout generation uses
        input_ids[row, start:] = torch.tensor(ids, dtype=torch.long)
        attention[row, start:] = 1
        owner_grid[row, start:] = torch.tensor(owners, dtype=torch.long)
    return EncodedBatch(input_ids, attention, (owner_grid == 1, owner_grid == 2))


# -- log-probabilities -------------------------------------------------------------------------------------

def token_logprobs(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """[batch, length] log p(token t | tokens < t) under `model`; 0 on padding and on each row's first token
    (nothing predicts it).

    Position ids count only attended tokens, so a left-padded row scores exactly as it would alone. Computed
    in float32 through cross_entropy, which never materialises a second [batch, length, vocab] tensor."""
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                   use_cache=False).logits
    picked = -F.cross_entropy(logits[:, :-1].float().transpose(1, 2), input_ids[:, 1:], reduction="none")
    predicted = (attention_mask[:, 1:] * attention_mask[:, :-1]).bool()  # a real token after a real token
    return F.pad(torch.where(predicted, picked, torch.zeros_like(picked)), (1, 0))


def masked_sum(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-row sum of `values` where `mask` is True: [batch, length] -> [batch]. Masked-off entries cannot
    leak in, even as NaN or inf (torch.where, not multiplication)."""
    return torch.where(mask, values, torch.zeros_like(values)).sum(-1)


# -- held-out evaluation ------------------------------------------------------------------------------------

class HeldOutEval:
    """Greedy two-attempt rollouts of the model being trained on a fixed held-out subset (the first
    `eval_problems` of `eval_split`), as "eval" rows of the training log: Accuracy@t1, Accuracy@t2, Δ and its
    parts with bootstrap 95% intervals, the same for every trainer so their curves compare.

    `backend` generates with the trained model; give it a backend of its own, so evaluation never leaves KV in
    the training sampler's prefix store. Greedy decoding draws no random numbers; the RNGs are restored all the
    same, so evaluating never changes what training does."""

    def __init__(self, task: Task, config: RunConfig, backend: Backend, max_new_tokens: int):
        if config.eval_task and config.eval_every:
            from score_bench.harness.contracts.registry import load_task

            task = load_task(config.eval_task, **config.eval_task_options)
        self.task = task
        self.backend = backend
        self.every = config.eval_every
        self.split = config.eval_split
        self.params = GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0, seed=config.seed)
        self.seed = config.seed
        self.problems = task.problems(config.eval_split)[:config.eval_problems] if config.eval_every else []
        if config.eval_every and not self.problems:
            raise InputError(f"task '{task.name}' has no problems in eval split '{config.eval_split}'")

    def due(self, step: int) -> bool:
        """Whether the model after `step` optimiser steps is on the eval_every schedule (step 0: the base model)."""
        return self.every > 0 and step % self.every == 0

    def row(self, step: int, stage: int, **labels: Any) -> dict[str, Any]:
        """The "eval" row of the current model: kind, step, stage, `labels` (e.g. the SFT iteration), task, split,
        problems, accuracy_t1, accuracy_t2, delta, delta_i2c, delta_c2i, accuracy_t1_flexible,
        accuracy_t2_flexible (flexible extraction), ci95 (of each), grading_errors."""
        with preserved_rng():
            traces = rollout(self.task, self.problems, self.backend,
                             RolloutConfig(turns=2, samples=1, params=self.params))
            release_sampler(self.backend)  # its KV would stay in memory through the training steps that follow
            metrics = summarize([[a.correct for a in t.attempts] for t in traces],
                                flexible=[[a.flexible_correct for a in t.attempts] for t in traces], seed=self.seed)
        names = ("acc_t1", "acc_t2", "delta", "delta_i2c", "delta_c2i", "acc_t1_flexible", "acc_t2_flexible")
        return {"kind": "eval", "step": step, "stage": stage, **labels, "task": self.task.name, "split": self.split,
                "problems": len(traces),
                "accuracy_t1": metrics["acc_t1"]["value"], "accuracy_t2": metrics["acc_t2"]["value"],
                "accuracy_t1_flexible": metrics["acc_t1_flexible"]["value"],
                "accuracy_t2_flexible": metrics["acc_t2_flexible"]["value"],
                "delta": metrics["delta"]["value"], "delta_i2c": metrics["delta_i2c"]["value"],
                "delta_c2i": metrics["delta_c2i"]["value"], "ci95": {n: metrics[n]["ci95"] for n in names},
                "grading_errors": sum(a.verdict.status is Status.ERROR for t in traces for a in t.attempts)}


# -- outputs -------------------------------------------------------------------------------------------------

class TrainingLog:
    """The JSONL training log, one row per optimiser step (and per held-out evaluation), appended and flushed as
    the run goes so a curve can be read while it trains (and after a crash).

    A new log starts empty; a resumed one keeps its first `keep_rows` rows (those written before the saved
    state) and drops the rest, so no step appears twice. `active=False` (a non-main process of a multi-process
    run) counts rows without writing, so every process agrees on `rows`."""

    def __init__(self, path: Path, keep_rows: int | None = None, active: bool = True):
        self.path = Path(path)
        self.active = active
        self.rows = keep_rows or 0
        if not active:
            return
        kept: list[str] = []
        if keep_rows:
            lines = read_text(self.path, "training log").splitlines(keepends=True) if self.path.exists() else []
            if len(lines) < keep_rows:
                raise InputError(f"training log {self.path} has {len(lines)} rows but the saved state was taken "
                                 f"after {keep_rows}; it was edited or truncated, so the run cannot resume")
            kept = lines[:keep_rows]
        with saving(self.path, "the training log", "the log is as it was"):
            write_text_atomic(self.path, "".join(kept))

    def append(self, row: dict) -> None:
        """One row, whole or not at all: a write that fails (a full disk) leaves the log as it was."""
        self.rows += 1
        if not self.active:
            return
        with saving(self.path, "a training-log row", "the log keeps the rows before it"):
            append_whole(self.path, (json.dumps(row, ensure_ascii=False, default=str) + "\n").encode("utf-8"))


def save_checkpoint(directory: Path, model, tokenizer, config: Any, extra: Mapping[str, Any] | None = None,
                    state_dict: Mapping[str, torch.Tensor] | None = None,
                    started_from: Mapping[str, Any] | None = None) -> Path:
    """A Hugging Face checkpoint (weights, config, generation config, tokenizer with its chat template) plus
    trainer_config.json: the resolved trainer config, provenance and `extra` (e.g. steps run). `state_dict`
    replaces the model's own (accelerate's get_state_dict gathers one from FSDP/DeepSpeed shards).
    `started_from` is the provenance taken when the run started: the code that trained is what was checked out
    then, not at the save (a commit during a long run would otherwise be recorded). The files are written whole
    to a hidden staging directory, then renamed into place, so a save that fails (a full disk) leaves the files
    that were there as they were."""
    directory = Path(directory)
    resolved = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    with saving(directory, "the checkpoint", f"the files in {directory} are as they were"):
        directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=directory, prefix=".checkpoint.tmp-"))
        try:
            model.save_pretrained(staging, state_dict=dict(state_dict) if state_dict is not None else None)
            tokenizer.save_pretrained(staging)
            write_json_atomic(staging / CONFIG_FILE, {"config": resolved, **dict(extra or {}),
                                                     **(started_from or provenance())})
            # Written whole, then renamed into place: the run's record first, so a kill between renames leaves
            # a directory that a rerun of the same config recognises as its own (and rewrites).
            for name in sorted(os.listdir(staging), key=lambda name: name != CONFIG_FILE):
                if (directory / name).is_dir():
                    shutil.rmtree(directory / name)
                os.replace(staging / name, directory / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return directory
