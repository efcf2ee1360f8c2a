"""Evals over reasoning and the prompt cache: ``max-reasoning-tokens`` grades the reply's reasoning tokens (unknown
fails); ``min-cache-hit-ratio`` gates the run on each target's cache reads ÷ input tokens (a target whose provider
reports no cache reads fails, its ratio unknown)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.eval_suites import workspace_suite
from tests.test_cli import json_lines, workbench
from workbench.core.evals.assertions import grade
from workbench.core.evals.cache_gate import cache_failures, cache_hits
from workbench.core.evals.model import AssertionSpec, CellKey, CellResult, CellSummary, Observation

SYSTEM = " ".join(f"rule{i} keep answers short and polite." for i in range(60))


def _eval(suite: Path, env: dict[str, str] | None, *args: str):  # type: ignore[no-untyped-def]
    return workbench("eval", str(suite), "--json", "--no-cache", *args, cwd=suite.parent.parent, env=env)


def test_max_reasoning_tokens_passes_under_the_bound_and_fails_over_it(
        tmp_path: Path, fake_env: dict[str, str]) -> None:
    suite = workspace_suite(tmp_path, """\
        prompts: ["Think, then say hi"]
        targets: ["fake/thinker@reasoning=40,tokens=3"]
        tests:
          - description: roomy
            assert:
              - {type: max-reasoning-tokens, value: 100}
              - type: javascript  # promptfoo's tokenUsage.completionDetails
                value: context.providerResponse.tokenUsage.completionDetails.reasoning === 40
          - description: tight
            assert: [{type: not-max-reasoning-tokens, value: 100}, {type: max-reasoning-tokens, value: 10}]
        """)
    out = tmp_path / "out.json"
    result = _eval(suite, fake_env, "-o", str(out))
    assert result.returncode == 1, result.stderr
    summary = json_lines(result.stdout)[-1]
    assert (summary["runs"], summary["passes"]) == (2, 1)
    rows = json.loads(out.read_text(encoding="utf-8"))["results"]["results"]
    assert [row["response"]["tokenUsage"]["completionDetails"] for row in rows] == [
        {"reasoning": 40, "cacheReadInputTokens": 0}] * 2  # OpenAI chat reports its cache reads (none here)


async def test_unknown_reasoning_tokens_fail_saying_so() -> None:
    spec = AssertionSpec("max-reasoning-tokens", 100)
    grading = await grade(spec, Observation("hi", reasoning_tokens=None), base_dir=Path("."))
    assert not grading.passed and "reasoning tokens unknown" in grading.reason
    negated = await grade(AssertionSpec("max-reasoning-tokens", 100, negate=True), Observation("hi"),
                          base_dir=Path("."))
    assert not negated.passed  # unknown fails whatever the polarity


def _cell(target: str, *observations: Observation) -> CellSummary:
    key = CellKey("t", "p", target)
    results = [CellResult(key, i, obs, [], True, 1.0) for i, obs in enumerate(observations)]
    return CellSummary(key, "", len(results), len(results), (0.0, 1.0), 1.0, None, None, results)


def test_the_ratio_counts_every_answered_cell_of_a_target() -> None:
    cells = [
        _cell("warm", Observation("a", input_tokens=100, cache_read_tokens=0),
              Observation("b", input_tokens=100, cache_read_tokens=80), Observation("c", input_tokens=100)),
        _cell("failed", Observation("", input_tokens=50, cache_read_tokens=50, error="boom")),
        _cell("silent", Observation("d", input_tokens=40)),
    ]
    hits = cache_hits(cells)
    assert (hits["warm"].read_tokens, hits["warm"].input_tokens) == (80, 300)
    assert hits["warm"].ratio == pytest.approx(80 / 300)
    assert "failed" not in hits and hits["silent"].ratio is None
    assert cache_failures(cells, None) == []
    (silent,) = cache_failures(cells, 0.25)
    assert silent.startswith("target 'silent': cache hit ratio unknown")
    warm, _ = cache_failures(cells, 0.5)
    assert warm == ("target 'warm': cache hit ratio 26.7% (80 of 300 input tokens read from the cache) is under "
                    "the minimum of 50%")


def test_min_cache_hit_ratio_gates_the_exit_code_with_each_target_short_of_it(
        tmp_path: Path, fake_env: dict[str, str]) -> None:
    marker = uuid.uuid4().hex[:8]

    def run(floor: float, model: str):  # type: ignore[no-untyped-def]
        suite = workspace_suite(tmp_path, f"""\
            prompts:
              - system: "{SYSTEM}"
                messages: [{{role: user, content: "Question {{{{n}}}}"}}]
            targets: ["fake/{model}@cache=1,tokens=2", "fake-ollama/{model}@tokens=2"]
            concurrency: 1
            min-cache-hit-ratio: {floor}
            tests:
              - vars: {{n: "1"}}
              - vars: {{n: "2"}}
              - vars: {{n: "3"}}
            """)
        return _eval(suite, fake_env)

    low = run(0.3, f"low-{marker}")
    assert low.returncode == 1, low.stderr
    failures = json_lines(low.stdout)[-1]["failures"]
    assert isinstance(failures, list) and len(failures) == 1
    assert failures[0].startswith(f"target 'fake-ollama/low-{marker}@tokens=2': cache hit ratio unknown")
    high = run(0.95, f"high-{marker}")
    assert high.returncode == 1
    failures = json_lines(high.stdout)[-1]["failures"]
    assert isinstance(failures, list) and len(failures) == 2
    assert failures[0].startswith(f"target 'fake/high-{marker}@cache=1,tokens=2': cache hit ratio ")
    assert "is under the minimum of 95%" in failures[0]


def test_a_bad_min_cache_hit_ratio_stops_the_load_at_its_line(tmp_path: Path) -> None:
    suite = workspace_suite(tmp_path, """\
        prompts: ["Hi"]
        targets: [fake/m]
        min-cache-hit-ratio: 1.5
        tests:
          - assert: [{type: contains, value: x}]
        """)
    result = _eval(suite, None)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith(
        "workbench: evals/suite.yaml:3: min-cache-hit-ratio 1.5 is not between 0 and 1")
