"""The environment the suite runs in holds exactly the versions locked in requirements/ (what `make setup` and CI
install), so a result or a passing run here is one of the locked set. `make test-latest` runs the suite against
the newest releases instead and says so through SCORE_BENCH_UNLOCKED."""

from __future__ import annotations

import os
import re
from importlib import metadata
from pathlib import Path

import pytest

LOCK = Path(__file__).resolve().parents[1] / "requirements" / "main.txt"


def locked() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", LOCK.read_text(encoding="utf-8"), flags=re.M)
    return {name: version for name, version in pins}


@pytest.mark.skipif(bool(os.environ.get("SCORE_BENCH_UNLOCKED")), reason="make test-latest: newest releases")
@pytest.mark.skipif(not (Path(__file__).resolve().parents[1] / "requirements").is_dir(), reason="not a checkout")
def test_installed_versions_are_the_locked_ones():
    pins = locked()
    assert len(pins) > 50  # the lock parsed: the project and its extras pull in about 90 packages
    wrong = {name: (version, _installed(name)) for name, version in pins.items() if _installed(name) != version}
    assert not wrong, f"installed versions differ from requirements/main.txt (name: (locked, installed)): {wrong}"


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
