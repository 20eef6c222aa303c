"""Guards around what a run reads and writes: one writer per output directory, an output that is not its own
input, weights and losses that are numbers, and prompts that fit the model's context. Each failure is an
InputError (or, for a loss that diverged, a ScoreBenchError) that names the input, raised before the work it
would have spoiled."""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from score_bench.harness.contracts.errors import InputError, ScoreBenchError

__all__ = ["LOCK_FILE", "output_lock", "check_output_not_model", "check_output_dir", "check_finite_weights",
           "check_model_saveable", "check_finite_loss", "check_context", "fitting_max_new_tokens", "model_context",
           "resolved_model"]

LOCK_FILE = ".lock"


def check_output_dir(directory: Path, option: str = "--output") -> Path:
    """`directory` if it is a directory or can become one (no file in the way) and is not the current directory
    (what an empty `--output ''` means too: a run's files would be strewn among the user's); else an InputError."""
    directory = Path(directory)
    if directory.expanduser().resolve() == Path.cwd().resolve():
        raise InputError(f"{option} '{directory}' is the current directory; name a directory for the output "
                         "(e.g. runs/NAME)")
    for path in (directory, *directory.parents):
        if path.exists():
            if not path.is_dir():
                raise InputError(f"{option} {directory}: {path} is a file, not a directory")
            if not os.access(path, os.W_OK | os.X_OK):
                raise InputError(f"{option} {directory}: {path} is not writable")
            break
    return directory


@contextmanager
def output_lock(directory: Path, what: str, option: str = "--output") -> Iterator[Path]:
    """Hold `directory` for one `what` (e.g. "train") at a time; a second is refused at once, naming the
    directory. The lock is an flock on DIRECTORY/.lock, which the kernel drops if the process dies (even by
    kill -9); on a normal exit, success or failure, the file is removed, and so is every directory this call
    created that is still empty (bad input then leaves nothing behind)."""
    directory = check_output_dir(directory, option)
    created = []
    for path in (directory, *directory.parents):
        if path.exists():
            break
        created.append(path)
    directory.mkdir(parents=True, exist_ok=True)
    lock = directory / LOCK_FILE
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # The holder before us may have removed the file after we opened it: our lock is then on a dead inode.
        if os.fstat(fd).st_ino != os.stat(lock).st_ino:
            raise BlockingIOError
    except (BlockingIOError, FileNotFoundError):
        os.close(fd)
        raise InputError(f"another {what} is writing to {directory}; wait for it or use another {option}") from None
    try:
        yield directory
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)
        for path in created:  # deepest first
            try:
                path.rmdir()
            except OSError:
                break


def resolved_model(model: str) -> str:
    """A local model directory as its resolved absolute path (so two spellings of one directory are one model
    and one spelling of two directories is two); a Hub id unchanged."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_dir() else model


def check_output_not_model(output: Path, model: str, option: str = "--output") -> None:
    """Refuse writing a run into the checkpoint it starts from (it would overwrite the base weights)."""
    path = Path(model).expanduser()
    if path.is_dir() and Path(output).expanduser().resolve() == path.resolve():
        raise InputError(f"{option} {output} is the model directory {model}; writing there would overwrite the "
                         "base checkpoint: use another directory")


def check_model_saveable(model: str) -> None:
    """Refuse, before anything is loaded, a local checkpoint whose config.json still says it is GGUF-quantized
    (what transformers writes when it dequantizes a .gguf, although the safetensors are plain floats): it loads
    and trains, but transformers refuses to save it, so a run would end in a crash at its first checkpoint."""
    config_file = Path(model).expanduser() / "config.json"
    if not config_file.is_file():
        return  # a Hub id, or no checkpoint here (the loader says so)
    try:
        quantization = json.loads(config_file.read_text(encoding="utf-8")).get("quantization_config") or {}
    except (ValueError, AttributeError):
        return  # not a JSON object: the loader reports it
    if isinstance(quantization, dict) and quantization.get("quant_method") == "gguf":
        raise InputError(f"model '{model}': config.json has quantization_config gguf, which transformers cannot "
                         "save after training; re-import the .gguf with `score-bench import-gguf` (`make "
                         "real-model`), which writes a plain checkpoint")


def check_finite_weights(model: Any, name: str) -> None:
    """Refuse a model with a NaN or infinite weight: it would evaluate to garbage (or 0.000) without a word."""
    import torch

    for parameter_name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise InputError(f"model '{name}' has NaN or infinite weights (first in {parameter_name}); "
                             "the checkpoint is broken")


def check_finite_loss(loss: Any, step: int, output: Path) -> None:
    """Stop a diverged run before its optimiser step writes NaN into the weights; the last saved state
    (OUTPUT/state) and checkpoint stay as they were."""
    import torch

    if not bool(torch.isfinite(loss.detach()).all()):
        raise ScoreBenchError(f"training diverged at step {step}: the loss is {float(loss.detach().sum())}; "
                              f"the weights were not updated and the last saved state in {output} is kept. "
                              "Lower learning_rate or set grad_clip")


def check_context(tokenizer: Any, context: tuple[int | None, str], conversations: Sequence[list[Mapping[str, str]]],
                  instruction_turn: Sequence[Mapping[str, str]], max_new_tokens: int, turns: int, model: str,
                  template: str = "the chat template") -> int:
    """The tokens of the longest conversation (returned), refusing before generating a run where they cannot fit
    the context: attempt-1 prompt + `turns` attempts of max_new_tokens + the correction instruction before each
    later attempt. `context` is the limit and what sets it (the model's max_position_embeddings, or a backend's
    own, e.g. vLLM's max_model_len). `conversations` are the attempt-1 prompts; `instruction_turn` the user turn
    of the correction instruction. Also renders them, so a chat template that cannot render the task's
    conversations fails here, not mid-run."""
    limit, limit_name = context
    longest, overhead = _conversation_tokens(tokenizer, conversations, instruction_turn, turns, template, True)
    need = longest + turns * max_new_tokens + (turns - 1) * overhead
    if limit and need > limit:
        raise InputError(f"a conversation needs up to {need} tokens (longest prompt {longest}, {turns} attempt(s) "
                         f"of max_new_tokens {max_new_tokens}, correction turns {overhead} each) but model "
                         f"'{model}' has a context of {limit} ({limit_name}); lower max_new_tokens or "
                         "turns, or shorten the prompts")
    return need


def fitting_max_new_tokens(tokenizer: Any, context: tuple[int | None, str],
                           conversations: Sequence[list[Mapping[str, str]]],
                           instruction_turn: Sequence[Mapping[str, str]], turns: int, cap: int, model: str,
                           template: str = "the chat template") -> int:
    """The largest max_new_tokens, at most `cap`, that check_context accepts for these conversations: what the
    context leaves after the longest prompt and the correction turns, split over `turns` attempts. `cap` when
    the context is unknown; an InputError when the prompts leave no token per attempt."""
    limit, limit_name = context
    longest, overhead = _conversation_tokens(tokenizer, conversations, instruction_turn, turns, template, bool(limit))
    if not limit:
        return cap
    room = (limit - longest - (turns - 1) * overhead) // turns
    if room < 1:
        raise InputError(f"the longest prompt ({longest} tokens) and {turns - 1} correction turn(s) of {overhead} "
                         f"leave no room for {turns} attempt(s) in the context of model '{model}' ({limit}, "
                         f"{limit_name}); lower turns or shorten the prompts")
    return min(cap, room)


def _conversation_tokens(tokenizer: Any, conversations: Sequence[list[Mapping[str, str]]],
                         instruction_turn: Sequence[Mapping[str, str]], turns: int, template: str,
                         measure: bool) -> tuple[int, int]:
    """(tokens of the longest rendered attempt-1 prompt, tokens a correction turn adds before a later attempt);
    renders every conversation, so a template that cannot fails here. The longest prompt is counted only when
    `measure` (0 otherwise: without a context limit nothing needs it)."""
    overhead = 0
    try:
        rendered = [tokenizer.apply_chat_template(list(m), tokenize=False, add_generation_prompt=True)
                    for m in conversations]
        if turns > 1 and conversations:
            base = list(conversations[0])
            follow = [*base, {"role": "assistant", "content": "x"}, *instruction_turn]
            full = tokenizer.apply_chat_template(follow, tokenize=False, add_generation_prompt=True)
            overhead = _count(tokenizer, full) - _count(tokenizer, rendered[0])
    except InputError:
        raise
    except Exception as err:  # jinja's syntax and runtime errors, a template that forbids a role
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{template} cannot render this task's conversation: {text}") from None
    longest = 0
    if measure and rendered:
        lengths = tokenizer(rendered, add_special_tokens=False)["input_ids"]
        longest = max(len(ids) for ids in lengths)
    return longest, max(overhead, 0)


def model_context(model: Any) -> tuple[int | None, str]:
    """A transformers model's context, in check_context's form."""
    return getattr(model.config, "max_position_embeddings", None), "max_position_embeddings"


def _count(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])
