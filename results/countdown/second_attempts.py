"""What the countdown models' attempts do, read from eval samples (samples.jsonl or .jsonl.gz): the numbers
results/countdown/README.md quotes. Run from the repo root:

    .venv/bin/python results/countdown/second_attempts.py results/countdown/laptop/samples/*.jsonl.gz

Per file, for each attempt-1 -> attempt-2 transition (i = incorrect, c = correct), how attempt 2 relates to
attempt 1:
- restate: the same text;
- recheck: attempt 2 answers with a try attempt 1 already wrote (re-judging it; an i->c recheck recovers a right
  expression that attempt 1 computed and then judged "no");
- new try: attempt 2 answers with a try attempt 1 did not write (a search that goes on).
After a wrong attempt 1: how many second attempts begin with "Check" (the corpus's check-then-continue) and how
many of those are right, against the rest. Then how often the models' own checks are right: of the tries ("... vs T yes|no"), the share whose yes/no says
whether the written last value equals T, and the tries whose written value equals the target but were judged
"no" (a found answer thrown away), in attempt 1 and attempt 2.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from collections import Counter
from pathlib import Path

from score_bench.embedded.countdown_corpus import CHECK

STEP = re.compile(r"(\d+)([-+*/])(\d+)=(\d+)")
TRY = re.compile(r"([^;]*?)\s*vs\s*(\d+)\s*(yes|no)")
# Not countdown_corpus.tries_of: it compares tries with their written values and verdicts, and a try that attempt 2
# re-judges must match its earlier self, so here only the operations are compared.


def tries(text: str) -> list[tuple[tuple[str, str, str], ...]]:
    """Each try's operations (operands and operator, not the values the model wrote for them)."""
    return [tuple(s[:3] for s in STEP.findall(m.group(1))) for m in TRY.finditer(text.removeprefix(CHECK))]


def judgements(text: str) -> tuple[int, int, int]:
    """(tries judged, judged right, written value equal to the target but judged 'no')."""
    judged = right = thrown = 0
    for m in TRY.finditer(text.removeprefix(CHECK)):
        values = [int(s[3]) for s in STEP.findall(m.group(1))]
        if not values:
            continue
        hit, said = values[-1] == int(m.group(2)), m.group(3) == "yes"
        judged, right, thrown = judged + 1, right + (hit == said), thrown + (hit and not said)
    return judged, right, thrown


def relation(first: str, second: str) -> str:
    if second.strip() == first.strip():
        return "restate"
    answering = tries(second)
    return "recheck" if answering and answering[-1] in tries(first) else "new try"


def read(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as lines:
        return [json.loads(line) for line in lines]


def report(path: Path) -> None:
    rows = read(path)
    moves: Counter = Counter()
    checks = {1: [0, 0, 0], 2: [0, 0, 0]}
    after_wrong: Counter = Counter()  # (begins with Check, attempt 2 right) after a wrong attempt 1
    for row in rows:
        first, second = row["attempts"][:2]
        move = ("c" if first["correct"] else "i") + "->" + ("c" if second["correct"] else "i")
        moves[(move, relation(first["text"], second["text"]))] += 1
        if not first["correct"]:
            after_wrong[(second["text"].startswith(CHECK), bool(second["correct"]))] += 1
        for attempt, text in ((1, first["text"]), (2, second["text"])):
            checks[attempt] = [a + b for a, b in zip(checks[attempt], judgements(text))]
    print(f"{path}: {len(rows)} problems")
    for (move, kind), count in sorted(moves.items()):
        print(f"  {move} {kind:8s} {count:4d}")
    for check, name in ((True, f"begin with '{CHECK.strip()}'"), (False, "do not")):
        total = after_wrong[(check, True)] + after_wrong[(check, False)]
        print(f"  after a wrong attempt 1, {total} second attempts {name}: {after_wrong[(check, True)]} right")
    for attempt, (judged, right, thrown) in checks.items():
        print(f"  attempt {attempt}: {judged} tries judged, {right / max(judged, 1):.3f} judged right, "
              f"{thrown} hits judged 'no'")


if __name__ == "__main__":
    for name in sys.argv[1:]:
        report(Path(name))
