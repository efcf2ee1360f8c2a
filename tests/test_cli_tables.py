"""The CLI's tables in a pipe (every cell whole, however wide) and in an 80-column terminal (numbers on one line,
long target names shortened in the middle)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_cli import workbench
from workbench.figures import short_target

LONG = "fake/gpt-4o-mini-2024-07-18-with-a-rather-long-fine-tune-suffix@tokens=5,ttft=150"
OTHER = "fake-anthropic/claude-3-5-sonnet-20241022@tokens=5"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
TERMINAL_80 = {"TTY_COMPATIBLE": "1", "COLUMNS": "80", "NO_COLOR": "1"}
"""rich's documented switches: a terminal of 80 columns, whatever stdout is."""
PIPED = {"TTY_COMPATIBLE": "", "FORCE_COLOR": "", "COLUMNS": "80"}


@pytest.fixture
def traced() -> None:
    result = workbench("run", "hi", "-m", LONG, "-m", OTHER, "--json")
    assert result.returncode == 0, result.stderr


def lines_of(out: str) -> list[str]:
    return [ANSI.sub("", line).rstrip() for line in out.splitlines()]


def test_a_piped_table_keeps_every_target_whole_and_every_number_on_its_line(traced: None) -> None:
    listed = workbench("traces", "list", env=PIPED)
    stats = workbench("traces", "stats", "--by", "model", env=PIPED)
    assert listed.returncode == stats.returncode == 0, listed.stderr + stats.stderr
    for out in (listed.stdout, stats.stdout):
        rows = [line for line in lines_of(out) if "fake" in line]
        assert len(rows) == 2 and "…" not in out
        assert any(LONG in row for row in rows) and any(OTHER in row for row in rows)
        assert max(len(line) for line in lines_of(out)) > 80  # wider than COLUMNS: nothing cut to fit
    ttft = next(row for row in lines_of(stats.stdout) if LONG in row)
    assert re.search(r" \d{3,4}/\d{3,4} ms ", ttft), ttft  # both percentiles and their unit, on the row's line
    assert re.search(r"\d{3,4} ms", next(row for row in lines_of(listed.stdout) if LONG in row))


def test_an_80_column_terminal_keeps_numbers_whole_and_shortens_targets_in_the_middle(traced: None) -> None:
    stats = workbench("traces", "stats", "--by", "model", env=TERMINAL_80)
    assert stats.returncode == 0, stats.stderr
    lines = lines_of(stats.stdout)
    assert max(len(line) for line in lines) <= 80
    rows = [line for line in lines if line.startswith("fake")]
    assert len(rows) == 2  # one line per group: nothing wrapped
    long_row = next(row for row in rows if row.startswith("fake/"))
    name = long_row.split("  ")[0]
    assert "…" in name and name.startswith("fake/gpt") and name.endswith("ttft=150")
    assert re.search(r" \d{3,4}/\d{3,4} ms ", long_row) and long_row.endswith("0%")
    estimate = workbench("tokens", "-m", LONG, "-m", OTHER, stdin="hello there", env=TERMINAL_80)
    assert estimate.returncode == 0, estimate.stderr
    rows = [line for line in lines_of(estimate.stdout) if line.startswith("fake")]
    assert len(rows) == 2 and all(len(row) <= 80 and "→" in row for row in rows)


def test_a_target_is_shortened_in_the_middle_keeping_its_provider_and_its_tail() -> None:
    assert short_target("openai/gpt-4o-2024-08-06", 40) == "openai/gpt-4o-2024-08-06"
    assert short_target("openai/gpt-4o-2024-08-06", 20) == "openai/gpt-4o…-08-06"
    assert all(len(short_target("openai/gpt-4o-2024-08-06", width)) == width for width in range(0, 24))
    assert short_target("a-very-long-provider-name/m", 10) == "a-ve…ame/m"  # no room for both ends of the model


def test_run_panels_break_between_figures_and_shorten_their_titles_in_the_middle() -> None:
    result = workbench("run", "hi", "-m", LONG, "-m", OTHER, "-m", "fake-ollama/llama3.1-8b-instruct-q4@ttft=150",
                       env=PIPED)
    assert result.returncode == 0, result.stderr
    lines = lines_of(result.stdout)
    assert all(len(line) <= 80 for line in lines)
    title = lines[0].split("╮")[0]
    assert "fake/gpt-4o-" in title and "…" in title and "tft=150 ─" in title
    assert re.search(r"TTFT \d{3,4} ms ", lines[1]) and re.search(r"time \d{3,4} ms ", "\n".join(lines))
    assert not re.search(r"(TTFT|tok/s|time) *│", "\n".join(lines))  # no figure's label apart from its value


def test_eval_tables_keep_long_targets_whole_in_a_pipe_and_shorten_them_in_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "workbench.toml").write_text("", encoding="utf-8")
    (tmp_path / "evals").mkdir()
    wide = "fake/an-eval-target-with-a-very-long-model-name-2024-08-06@tokens=3,ttft=150"
    (tmp_path / "evals" / "wide.yaml").write_text(
        f'prompts: ["Say {{{{x}}}}"]\nproviders: ["{wide}", "{OTHER}"]\ntests:\n  - vars: {{x: hi}}\n',
        encoding="utf-8")
    piped = workbench("eval", "evals/wide.yaml", cwd=tmp_path, env=PIPED)
    assert piped.returncode == 0, piped.stderr
    assert wide in piped.stderr and OTHER in piped.stderr and "…" not in piped.stderr
    listed = workbench("evals", "list", cwd=tmp_path, env=PIPED)
    assert listed.returncode == 0 and wide in listed.stdout and "…" not in listed.stdout
    narrow = workbench("eval", "evals/wide.yaml", "--no-cache", cwd=tmp_path, env={**TERMINAL_80, "COLUMNS": "60"})
    assert narrow.returncode == 0, narrow.stderr
    lines = lines_of(narrow.stderr)
    header = next(line for line in lines if line.startswith("test"))
    assert "fake/an-" in header and "…" in header and "=150" in header and len(header) <= 60
    row = next(line for line in lines if "✓" in line)
    assert re.search(r"✓ \d\.\d\d \d{3,4} ms", row), row  # each cell whole on the row's line
