"""Two-attempt conversations as token ids with per-attempt masks, and per-token log-probabilities under a model.

The masks and the log-probabilities are where public SCoRe reproductions went wrong (no attention mask on
left-padded batches, pad tokens trained when pad == eos), so both are built from the structure of the
conversation, never by comparing token ids with the pad id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from score_bench.harness.contracts.errors import InputError
from score_bench.harness.contracts.types import Message
from score_bench.harness.generation.rollout import Attempt, Trace

__all__ = ["TwoAttempts", "two_attempts_of", "EncodedBatch", "encode_two_attempts", "sampled_content", "token_logprobs",
           "masked_sum"]


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
