"""Placeholders copied from an answer format are not answers.

Instructions name their slot ("Answer: <number>", "The final answer is $answer$"), and small models copy the
slot verbatim. Read as an answer it would count as extracted, hiding that nothing was answered (MATH: 5 of 8
"extracted" answers of SmolLM2-135M were the word "answer"). Each task lists its slots; both extractions
(strict and flexible) drop a candidate that is one of them, whatever its wrapping (\\boxed{}, $...$, <...>,
**...**, \\text{}).
"""

from __future__ import annotations

import re

_WRAPPERS = re.compile(r"\\(?:boxed|fbox|text|textbf|mathrm|mbox)\s*|[\s${}<>*_`\"'\[\]().:]")


def is_placeholder(answer: str, placeholders: frozenset[str]) -> bool:
    """Whether `answer`, stripped of LaTeX/markdown wrapping and case, is one of the format's slot names."""
    return _WRAPPERS.sub("", answer).casefold() in placeholders
