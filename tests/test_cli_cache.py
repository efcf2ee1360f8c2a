"""`workbench run` against the fake server's prompt cache (``cache=1``): the second call of a prompt reads its
prefix from the cache, ``--json`` shows the reads and writes, and ``traces stats`` the hit ratio."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.conftest import prompt_workspace
from tests.test_cli import json_lines, workbench

SYSTEM = "You are a meticulous support agent for a large retailer; answer with the policy that applies and why."


def test_second_call_reads_the_cache_and_stats_report_the_hit_ratio(fake_env: dict[str, str],
                                                                   tmp_path: Path) -> None:
    env = {**fake_env, "WORKBENCH_TRACES": str(tmp_path / "t.db")}
    name = f"cli-{uuid.uuid4().hex[:8]}@cache=1"
    targets = [f"fake-anthropic/{name}", f"fake/{name}", f"fake-ollama/{name}"]
    args = ["run", "My parcel arrived damaged", "-s", SYSTEM, "--cache-breakpoint", "system", "--json"]
    for target in targets:
        args += ["-m", target]
    runs = []
    for _ in range(2):
        ran = workbench(*args, env=env)
        assert ran.returncode == 0, ran.stderr
        runs.append({row["target"]: row for row in json_lines(ran.stdout)})
    first, second = runs
    anthropic, openai, ollama = targets
    system_tokens = second[openai]["cache_read_tokens"]
    assert isinstance(system_tokens, int) and system_tokens > 0
    assert (first[anthropic]["cache_read_tokens"], first[anthropic]["cache_write_tokens"]) == (0, system_tokens)
    assert (second[anthropic]["cache_read_tokens"], second[anthropic]["cache_write_tokens"]) == (system_tokens, 0)
    assert (first[openai]["cache_read_tokens"], first[openai]["cache_write_tokens"]) == (0, None)
    assert all(run[ollama]["cache_read_tokens"] is None and run[ollama]["cache_write_tokens"] is None
               for run in runs)  # Ollama reports no cache: unknown, not 0

    stats = {row["model"]: row for row in json_lines(workbench("traces", "stats", "--by", "model", "--json",
                                                              env=env).stdout)}
    for target in (anthropic, openai):
        inputs = first[target]["input_tokens"] + second[target]["input_tokens"]  # type: ignore[operator]
        assert stats[target]["cache_hit_ratio"] == pytest.approx(system_tokens / inputs)
    table = workbench("traces", "stats", "--by", "model", env=env)
    assert table.returncode == 0 and "cache" in table.stdout

    shown = workbench("traces", "show", str(first[anthropic]["trace_id"]), env=env).stdout
    assert f"cache read 0  write {system_tokens}" in shown
    assert "cache read –  write –" in workbench("traces", "show", str(first[ollama]["trace_id"]), env=env).stdout
    panes = workbench(*[a for a in args if a != "--json"], env=env)  # a third call: the columns show the read
    assert panes.returncode == 0 and f"cache read {system_tokens}" in panes.stdout


@pytest.mark.parametrize(("args", "problem"), [
    (["--cache-breakpoint", "3"], "--cache-breakpoint 3: the request has 1 message"),
    (["--cache-breakpoint", "first"], "--cache-breakpoint first: not a place in the prompt"),
    (["--cache-breakpoint", "system"], "no system prompt"),
    (["--cache-breakpoint", "tools"], "no tools"),
    (["-s", "S", "--cache-breakpoint", "system", "--cache-breakpoint", "last", "--cache-breakpoint", "1",
      "--cache-breakpoint", "-1"], None),
])
def test_bad_breakpoints_are_one_line_and_exit_2(args: list[str], problem: str | None,
                                                 fake_env: dict[str, str]) -> None:
    ran = workbench("run", "hello", "-m", "fake-anthropic/a", "--no-trace", "--json", *args, env=fake_env)
    if problem is None:  # the same message named three ways is one breakpoint
        assert ran.returncode == 0, ran.stderr
        return
    assert ran.returncode == 2 and problem in ran.stderr and "Traceback" not in ran.stderr
    assert len(ran.stderr.strip().splitlines()) <= 2  # the problem, and its hint


SUPPORT = """\
name: support
system: You are a meticulous support agent for a large retailer; answer with the policy that applies and why.
cache:
  system: true
  ttl: 1h
messages:
  - role: user
    content: My parcel arrived damaged, what now?
  - role: assistant
    content: Sorry to hear that, send a photo and we will replace it.
    cache: true
  - role: user
    content: "{{question}}"
variables:
  question: {default: And if I would rather have a refund?}
"""


def test_a_prompt_files_breakpoints_are_sent_kept_in_sessions_and_stats_group_by_prompt_version(
        fake_env: dict[str, str], tmp_path: Path) -> None:
    ws = prompt_workspace(tmp_path, support=SUPPORT)
    target = f"fake-anthropic/prompt-{uuid.uuid4().hex[:8]}@cache=1"
    rows = []
    for args in (["--prompt", "support", "--save-session", "s1"], ["--session", "s1"]):
        ran = workbench("run", *args, "-m", target, "--json", env=fake_env, cwd=ws)
        assert ran.returncode == 0, ran.stderr
        rows.append(json_lines(ran.stdout)[0])
    written, read = rows
    assert written["cache_read_tokens"] == 0 and isinstance(written["cache_write_tokens"], int)
    assert read["cache_read_tokens"] == written["cache_write_tokens"] > 0 and read["cache_write_tokens"] == 0
    session = (ws / "sessions" / "s1.yaml").read_text()
    assert "cache:\n    system: true\n    ttl: 1h" in session and "    cache: true" in session
    assert "cache_write_tokens:" in session  # the saved result keeps the counts

    for by in ("prompt", "prompt-version"):
        stats = json_lines(workbench("traces", "stats", "--by", by, "--json", cwd=ws).stdout)
        assert [row[by] for row in stats] == ["support" if by == "prompt" else "support@1"]
        inputs = written["input_tokens"] + read["input_tokens"]  # type: ignore[operator]
        assert stats[0]["cache_hit_ratio"] == pytest.approx(read["cache_read_tokens"] / inputs)  # type: ignore[operator]

    code = workbench("export", "code", "support", "--target", "anthropic/claude-sonnet-4-5", "--lang", "curl", cwd=ws)
    assert code.returncode == 0, code.stderr
    assert code.stdout.count('"cache_control": {\n') == 2 and '"ttl": "1h"' in code.stdout


def test_a_bad_cache_entry_in_a_prompt_file_is_its_file_and_line(tmp_path: Path) -> None:
    ws = prompt_workspace(tmp_path, support="\n".join(line for line in SUPPORT.splitlines()
                                                     if not line.startswith("system: You")))
    ran = workbench("run", "--prompt", "support", "-m", "fake/a", "--no-trace", cwd=ws)
    assert ran.returncode == 2 and "support.yaml:2: cache:" in ran.stderr and "no system prompt" in ran.stderr
    assert "Traceback" not in ran.stderr
    (ws / "prompts" / "support.yaml").write_text(SUPPORT.replace("system: true", "system: true\n  tools: true"))
    ran = workbench("run", "--prompt", "support", "-m", "fake/a", "--no-trace", cwd=ws)
    assert ran.returncode == 2 and "support.yaml:3: cache:" in ran.stderr and "no tools" in ran.stderr


def test_tokens_prices_cold_and_warm_with_the_same_breakpoints(tmp_path: Path) -> None:
    doc = tmp_path / "doc.txt"
    doc.write_text("Here is the quarterly report, line by line. " * 120)  # over the 1024-token cache minimum
    base = ["tokens", str(doc), "-s", SYSTEM, "-m", "anthropic/claude-sonnet-4-5", "-m", "openai/gpt-4.1-mini",
            "--offline", "--json"]
    plain = {row["target"]: row for row in json_lines(workbench(*base).stdout)}
    marked = {row["target"]: row for row in json_lines(workbench(*base, "--cache-breakpoint", "last",
                                                                 "--cache-ttl", "1h").stdout)}
    claude, gpt = plain["anthropic/claude-sonnet-4-5"], marked["anthropic/claude-sonnet-4-5"]
    assert claude["cache_prefix_tokens"] == 0 and claude["cost_input_warm_usd"] == claude["cost_input_usd"]
    assert gpt["cache_prefix_tokens"] == gpt["input_tokens"]  # the whole prompt, up to the last message
    assert gpt["cost_input_warm_usd"] < claude["cost_input_usd"] < gpt["cost_input_usd"]  # type: ignore[operator]
    # OpenAI caches the system prompt by itself, breakpoints or not
    assert plain["openai/gpt-4.1-mini"] == marked["openai/gpt-4.1-mini"]
    assert 0 < plain["openai/gpt-4.1-mini"]["cache_prefix_tokens"] < plain["openai/gpt-4.1-mini"]["input_tokens"]  # type: ignore[operator]
