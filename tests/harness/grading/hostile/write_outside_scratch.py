# Tries to leave files outside its scratch directory: the test's own directory, host /tmp, the repo, home.
import os

WROTE = []
for path in ("@@OUTSIDE@@/escaped.txt", "/tmp/../escaped-@@TOKEN@@", "@@REPO@@/escaped-@@TOKEN@@",
             "@@HOME@@/escaped-@@TOKEN@@", "/opt/python/escaped-@@TOKEN@@", "/usr/escaped-@@TOKEN@@",
             "/escaped-@@TOKEN@@", "/dev/shm/escaped-@@TOKEN@@", "/proc/self/escaped"):
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write("escaped")
        WROTE.append(path)
    except OSError:
        pass
WROTE = [p for p in WROTE if not p.startswith("/tmp/")]  # its own scratch tmpfs is allowed


def solve(xs):
    return WROTE
