"""YAML people write is read bounded: aliases nested to expand a small file into a billion nodes are refused at
once, with the file and the line of the alias, wherever workbench reads a YAML file (suites, prompts, sessions)."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
import yaml

from tests.test_cli import workbench
from workbench.core.evals.suite import load_suite
from workbench.core.yaml_lines import MAX_NODES, load

LEVELS = "abcdefghi"


def laughs(head: str) -> str:
    """``head``, then nine anchors of nine aliases each: 9^9 (387 million) strings once expanded. The second
    alias of ``g`` (the line after ``head`` and six anchors) takes it past a million nodes."""
    lines = [head, f'{LEVELS[0]}: &{LEVELS[0]} ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{name}: &{name} [{', '.join([f'*{prior}'] * 9)}]" for prior, name in itertools.pairwise(LEVELS)]
    return "\n".join(lines) + "\n"


def workspace(tmp_path: Path) -> Path:
    (tmp_path / "workbench.toml").write_text("", encoding="utf-8")
    for folder in ("evals", "prompts", "sessions"):
        (tmp_path / folder).mkdir()
    return tmp_path


def test_a_billion_laughs_suite_fails_at_once_with_its_line(tmp_path: Path) -> None:
    suite = workspace(tmp_path) / "evals" / "laughs.yaml"
    suite.write_text(laughs('description: laughs\nprompts: ["hi"]\nproviders: [fake/x]\ntests: [{vars: {}}]'),
                     encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(Exception, match="aliases expand the document past") as refused:
        load_suite(suite, tmp_path)
    assert time.perf_counter() - started < 0.5
    assert str(refused.value).startswith("evals/laughs.yaml:11: ")  # g's line: its aliases pass the cap

    result = workbench("eval", "evals/laughs.yaml", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[0].startswith(
        f"workbench: evals/laughs.yaml:11: YAML aliases expand the document past {MAX_NODES:,} nodes")
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) <= 2  # the line and its hint


def test_prompt_and_session_files_are_bounded_too(tmp_path: Path) -> None:
    folder = workspace(tmp_path)
    (folder / "prompts" / "laughs.yaml").write_text(laughs("name: laughs\nuser: hi"), encoding="utf-8")
    (folder / "sessions" / "laughs.yaml").write_text(laughs("name: laughs"), encoding="utf-8")
    prompts = workbench("prompts", "list", cwd=folder)
    assert prompts.returncode == 1 and "prompts/laughs.yaml:9: YAML aliases expand" in prompts.stderr
    sessions = workbench("sessions", "list", cwd=folder)
    assert sessions.returncode == 1 and "sessions/laughs.yaml:8: YAML aliases expand" in sessions.stderr


def test_ordinary_aliases_still_load_and_a_self_reference_is_refused() -> None:
    assert load("base: &b {model: fake/x}\nothers: [*b, *b]\n") == {
        "base": {"model": "fake/x"}, "others": [{"model": "fake/x"}, {"model": "fake/x"}]}
    with pytest.raises(yaml.YAMLError, match=r"alias \*a refers to the node it is in"):
        load("a: &a [1, *a]\n")
