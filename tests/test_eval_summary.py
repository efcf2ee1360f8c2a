"""What ``workbench eval`` says of a run's cost and time: an unknown cost is never a made-up $0, a run partly
unpriced says so, and a short run's time estimate is never ``0 s``."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.test_cli import json_lines, workbench


def _suite(tmp_path: Path, prices: str, *providers: str) -> Path:
    (tmp_path / "workbench.toml").write_text(prices, encoding="utf-8")
    (tmp_path / "evals").mkdir()
    suite = tmp_path / "evals" / "costs.yaml"
    targets = "\n".join(f"  - {provider}" for provider in providers)
    suite.write_text(f"""description: costs
prompts:
  - "Say something about {{{{topic}}}}"
providers:
{targets}
tests:
  - vars: {{topic: boats}}
  - vars: {{topic: trains}}
""", encoding="utf-8")
    return suite


def test_a_run_whose_every_cost_is_unknown_says_unknown_never_zero(tmp_path: Path) -> None:
    suite = _suite(tmp_path, "", "fake/unpriced@tokens=4")
    shown = workbench("eval", str(suite), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    summary = next(line for line in shown.stderr.splitlines() if "passed (" in line)
    assert "cost unknown" in summary and "$" not in summary
    preflight = shown.stderr.splitlines()[0]  # said before the run: no "?–?"
    assert "cost unknown (no price for fake/unpriced@tokens=4)" in preflight, preflight
    report = workbench("evals", "show", "last", cwd=tmp_path).stdout  # the stored report says the same
    assert "cost unknown" in report.splitlines()[0] and "$0" not in report.splitlines()[0], report
    stored = json.loads(workbench("evals", "show", "last", "--format", "json", cwd=tmp_path).stdout)
    assert stored["totals"]["cost_usd"] is None and stored["totals"]["unpriced_calls"] == 2
    as_json = workbench("eval", str(suite), "--json", "--no-cache", cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    result = json_lines(as_json.stdout)[-1]
    assert result["cost_usd"] is None and result["unpriced_calls"] == 2


def test_a_run_partly_unpriced_says_how_many_calls_have_no_cost(tmp_path: Path) -> None:
    prices = '[prices."fake/priced*"]\ninput_per_mtok = 1000\noutput_per_mtok = 2000\n'
    suite = _suite(tmp_path, prices, "fake/priced@tokens=4", "fake/unpriced@tokens=4")
    shown = workbench("eval", str(suite), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    summary = next(line for line in shown.stderr.splitlines() if "passed (" in line)
    assert re.search(r"\$0\.0\d+ \(\+2 calls of unknown cost\)", summary), summary
    result = json_lines(workbench("eval", str(suite), "--json", "--no-cache", cwd=tmp_path).stdout)[-1]
    assert isinstance(result["cost_usd"], float) and result["cost_usd"] > 0 and result["unpriced_calls"] == 2


def test_a_sub_second_time_estimate_keeps_its_decimal(tmp_path: Path) -> None:
    suite = _suite(tmp_path, "", "fake/slow@tokens=2,ttft=700")
    first = workbench("eval", str(suite), "--concurrency", "2", cwd=tmp_path)  # the trace log learns 0.7 s calls
    assert first.returncode == 0, first.stderr
    again = workbench("eval", str(suite), "--dry-run", "--no-cache", "--concurrency", "2", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert re.search(r"≈(0\.[6-9]|[1-9]\.\d) s at concurrency 2", again.stderr), again.stderr  # 0.7 s, 1.2 s under load
    assert "≈0 s" not in again.stderr
