"""Regenerate docs/viewer.png: the viewer on two committed SmolLM2 score-toy runs (free attempts vs repair of
given wrong attempts, 64 new tokens), in headless chromium with the i→c cell of the repair run clicked. Run from
the repo root: .venv/bin/python docs/make_viewer_png.py"""
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, "tests/harness")
from cdp_browser import Browser, find_chromium  # noqa: E402

from score_bench.harness.reports.viewer import write_report  # noqa: E402

RUNS = [Path("results/real/smollm2/score-toy-en-64tokens"), Path("results/real/smollm2/score-toy-en-repair-64tokens")]
with tempfile.TemporaryDirectory() as scratch:
    report = write_report(RUNS, Path(scratch) / "report.html")
    b = Browser(find_chromium(), width=1400, height=1100)
    try:
        b.open(report.as_uri())
        b.evaluate("document.querySelector('td.cell[data-run=\"1\"][data-cell=\"i2c\"]').click()")
        print(b.evaluate("document.getElementById('status').textContent"))
        b.screenshot(Path("docs/viewer.png"))
    finally:
        b.close()
