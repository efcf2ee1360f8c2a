"""The repository root is an example workspace: its prompts load, its suite runs green on fake targets, its
saved session loads back."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema

from tests.test_cli import workbench
from workbench.core.config import load_settings
from workbench.core.evals.suite import load_suite
from workbench.core.prompts import get_version, resolve_ref
from workbench.core.prompts.model import load_prompts, prompt_files, to_request
from workbench.core.sessions import load_sessions, session_request

ROOT = Path(__file__).resolve().parents[1]


def copy_of_workspace(tmp_path: Path) -> Path:
    """The example workspace's files in a folder of their own (loading a suite saves prompt versions)."""
    for folder in ("prompts", "evals", "sessions"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    shutil.copy(ROOT / "workbench.toml", tmp_path)
    return tmp_path


def test_the_configuration_is_valid() -> None:
    settings = load_settings(ROOT / "workbench.toml", user_file=ROOT / "no-user-config.toml")
    assert settings.workspace == ROOT


def test_every_prompt_loads_and_renders() -> None:
    prompts, errors = load_prompts(ROOT / "prompts")
    assert not errors
    assert len(prompts) == len(prompt_files(ROOT / "prompts")) == 3
    for prompt in prompts:
        needed = {name: "a value" for name, variable in prompt.variables.items() if variable.default is None}
        request = to_request(prompt, needed)  # a variable used but not declared would have no value
        assert "{{" not in (request.system or "") + "".join(m.content for m in request.messages)
        if prompt.output_schema is not None:
            jsonschema.Draft202012Validator.check_schema(prompt.output_schema)


def test_the_suite_loads_without_warnings_and_passes_on_a_fake_target(tmp_path: Path) -> None:
    workspace = copy_of_workspace(tmp_path)
    suites = sorted((workspace / "evals").glob("*.yaml"))
    assert suites
    for path in suites:
        suite = load_suite(path, workspace)
        assert suite.tests and suite.prompts and not suite.warnings
        result = workbench("eval", str(path.relative_to(workspace)), "-t", "fake/example", "--json", cwd=workspace)
        assert result.returncode == 0, result.stdout + result.stderr
        summary = json.loads(result.stdout.splitlines()[-1])
        assert summary["pass_rate"] == 1 and summary["runs"] == len(suite.tests)


def test_the_saved_session_loads_and_names_a_prompt_of_the_workspace() -> None:
    sessions, errors = load_sessions(ROOT)
    assert sessions and not errors
    prompts = {p.name for p in load_prompts(ROOT / "prompts")[0]}
    for _, session in sessions:
        request, targets = session_request(session)
        assert request.messages and len(targets) == len(session.results) >= 2
        assert all(r.status == "ok" and r.text for r in session.results)
        assert session.prompt is None or session.prompt.name in prompts


def shipped_copy(tmp_path: Path) -> Path:
    """What a fresh clone holds of the example workspace: the files git tracks, and nothing made since."""
    listed = subprocess.run(["git", "ls-files", "-z", "--", "workbench.toml", "prompts", "sessions", ".workbench"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, tmp_path / name)
    return tmp_path


def test_every_shipped_session_pins_a_version_a_fresh_clone_has(tmp_path: Path) -> None:
    workspace = shipped_copy(tmp_path)
    sessions, errors = load_sessions(workspace)
    assert sessions and not errors
    pinned = [session for _, session in sessions if session.prompt is not None]
    assert pinned
    for session in pinned:
        assert session.prompt is not None
        version = resolve_ref(workspace, f"{session.prompt.name}@{session.prompt.version}")
        prompt = get_version(workspace, session.prompt.name, version.number)
        assert to_request(prompt, session.variables) == session_request(session)[0]  # the version the race ran
    shown = workbench("sessions", "list", "--json", cwd=workspace)
    assert shown.returncode == 0, shown.stderr
    listed = workbench("prompts", "list", "--json", cwd=workspace)
    assert {row["name"]: row["version"] for row in map(json.loads, listed.stdout.splitlines())} == {
        "classify-ticket": 1, "summarise": 1, "support-reply": 1}  # the working files are those versions
