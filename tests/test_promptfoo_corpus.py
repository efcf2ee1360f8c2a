"""promptfoo configs written from promptfoo's documentation and examples (tests/data/promptfoo_corpus/NAME/), each
retargeted only in its providers to the fake server, run end to end with ``workbench eval CONFIG --json``: each
loads, and each test gets the verdict promptfoo's documented behaviour gives for the fake server's replies (words
of its vocabulary, ``tokens=N`` of them: lower case, no digits, never JSON; a grader's reply is such words too).

A config's ``expected.yaml`` holds the number of cells and each test's verdict (``pass``/``fail``, or one per
provider label). A config that points at a fixed base URL names the fake server's default address,
``http://127.0.0.1:8765``, which the copy run here points at the test's server instead."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_cli import json_lines, workbench
from workbench.fakeserver.process import FakeServerProcess

CORPUS = Path(__file__).parent / "data" / "promptfoo_corpus"
DEFAULT_ADDRESS = "http://127.0.0.1:8765"
NAMES = sorted(path.name for path in CORPUS.iterdir() if (path / "promptfooconfig.yaml").is_file())
_SUFFIX = re.compile(r"( #\d+| \([^()]*=[^()]*\))$")
"""What a test's shown name adds to its description: ``#2`` for a second test of the same description, the
expanded value of a list variable."""

PENDING: dict[str, str] = {}
"""Configs using what is not supported yet: each must fail until it is (strict), then be un-marked."""

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")


def test_the_corpus_covers_at_least_25_configs() -> None:
    assert len(NAMES) >= 25
    assert all((CORPUS / name / "expected.yaml").is_file() for name in NAMES)


def _copy(name: str, tmp_path: Path, server: FakeServerProcess) -> Path:
    folder = shutil.copytree(CORPUS / name, tmp_path / name)
    config = folder / "promptfooconfig.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace(DEFAULT_ADDRESS, server.base_url), encoding="utf-8")
    (folder / "workbench.toml").write_text("", encoding="utf-8")
    return config


def _expected(name: str, label: str, description: str, verdicts: dict[str, Any]) -> bool:
    verdict = verdicts[_SUFFIX.sub("", description)]
    if isinstance(verdict, dict):
        verdict = verdict[label]
    assert verdict in ("pass", "fail"), f"{name}: {description}: {verdict!r}"
    return bool(verdict == "pass")


def _label(result: dict[str, Any]) -> str:
    """A result's provider by its label, else its id (promptfoo writes an empty label for a provider given none)."""
    return str(result["provider"].get("label") or result["provider"]["id"])


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=PENDING[name])) if name in PENDING else name
    for name in NAMES])
def test_config_runs_with_promptfoos_verdicts(name: str, tmp_path: Path, fake_server: FakeServerProcess) -> None:
    expected = yaml.safe_load((CORPUS / name / "expected.yaml").read_text(encoding="utf-8"))
    config = _copy(name, tmp_path, fake_server)
    env = {"OPENAI_BASE_URL": f"{fake_server.base_url}/v1", "ANTHROPIC_BASE_URL": fake_server.base_url,
           "OPENAI_API_KEY": "sk-corpus-openai-0000", "ANTHROPIC_API_KEY": "sk-corpus-anthropic-0000"}
    result = workbench("eval", config.name, "--json", "--no-cache", "-o", "results.json", cwd=config.parent, env=env)
    assert result.returncode in (0, 1), result.stderr
    results = json.loads((config.parent / "results.json").read_text(encoding="utf-8"))["results"]["results"]
    assert len(results) == expected["cells"]
    got = {(r["testCase"]["description"], _label(r), r["promptIdx"], r["repeat"]): r["success"] for r in results}
    want = {cell: _expected(name, cell[1], cell[0], expected["verdicts"]) for cell in got}
    assert got == want, [(r["testCase"]["description"], _label(r), r["gradingResult"]["reason"])
                         for r in results]
    summary = json_lines(result.stdout)[-1]
    assert summary["verdict"] == ("passed" if all(want.values()) else "failed")
    assert result.returncode == (0 if all(want.values()) else 1)
