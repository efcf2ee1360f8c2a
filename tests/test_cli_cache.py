"""`workbench run` against the fake server's prompt cache (``cache=1``): the second call of a prompt reads its
prefix from the cache, ``--json`` shows the reads and writes, and ``traces stats`` the hit ratio."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

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
