"""``workbench export prompt|session``: exact files, stable bytes, and exactly one git commit per change."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.test_cli import workbench
from tests.test_run_prompt import GREET
from workbench.core.errors import ConfigError
from workbench.core.export import export_files

GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "prompts").mkdir(parents=True)
    (root / "workbench.toml").write_text("")
    (root / "prompts" / "greet.yaml").write_text(GREET)
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    return root


def export(ws: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return workbench("export", *argv, cwd=ws, env=GIT_ENV)


def commits(repo: Path) -> list[str]:
    return git(repo, "log", "--format=%s").splitlines()


def test_export_twice_gives_identical_files(ws: Path, tmp_path: Path) -> None:
    first = export(ws, "prompt", "greet", "--to", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    files = {p.name: p.read_bytes() for p in (tmp_path / "a" / "prompts").iterdir()}
    assert set(files) == {"greet.yaml", "greet.meta.json"}
    assert files["greet.yaml"] == (ws / ".workbench" / "prompts" / "greet" / "1.yaml").read_bytes()
    meta = json.loads(files["greet.meta.json"])
    assert list(meta) == ["name", "version", "hash", "labels"] and meta["version"] == 1 and len(meta["hash"]) == 64
    again = export(ws, "prompt", "greet@1", "--to", str(tmp_path / "a"))
    assert "unchanged" in again.stdout
    export(ws, "prompt", "greet", "--to", str(tmp_path / "b"))
    assert {p.name: p.read_bytes() for p in (tmp_path / "b" / "prompts").iterdir()} == files


def test_commit_holds_exactly_the_exported_files_once(ws: Path, repo: Path) -> None:
    (repo / "unrelated.txt").write_text("staged by someone else")
    git(repo, "add", "unrelated.txt")
    first = export(ws, "prompt", "greet", "--to", str(repo), "--commit")
    assert first.returncode == 0, first.stderr
    assert commits(repo) == ["prompts: greet v1"]
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["prompts/greet.meta.json",
                                                                            "prompts/greet.yaml"]
    assert "A  unrelated.txt" in git(repo, "status", "--porcelain")  # still staged, not committed

    second = export(ws, "prompt", "greet", "--to", str(repo), "--commit")
    assert second.returncode == 0 and "nothing to commit" in second.stdout
    assert len(commits(repo)) == 1


def test_a_label_move_shows_in_the_commit_message(ws: Path, repo: Path) -> None:
    workbench("prompts", "save", "greet", cwd=ws)
    (ws / "prompts" / "greet.yaml").write_text(GREET.replace("Be kind.", "Be brief."))
    workbench("prompts", "save", "greet", cwd=ws)
    workbench("prompts", "label", "greet", "production", "1", cwd=ws)
    assert export(ws, "prompt", "greet@production", "--to", str(repo), "--commit").returncode == 0
    workbench("prompts", "label", "greet", "production", "2", cwd=ws)
    moved = export(ws, "prompt", "greet@production", "--to", str(repo), "--commit")
    assert moved.returncode == 0, moved.stderr
    assert commits(repo) == ["prompts: greet v2 (production)", "prompts: greet v1 (production)"]
    assert "Be brief." in (repo / "prompts" / "greet.yaml").read_text()
    workbench("prompts", "label", "greet", "staging", "2", cwd=ws)  # only the meta file changes
    assert export(ws, "prompt", "greet@2", "--to", str(repo), "--commit").returncode == 0
    assert commits(repo)[0] == "prompts: greet v2 (production, staging)"
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["prompts/greet.meta.json"]


def test_export_session(ws: Path, repo: Path) -> None:
    run = workbench("run", "--prompt", "greet", "--var", "name=Ada", "--save-session", "demo", "--json", cwd=ws)
    assert run.returncode == 0, run.stderr
    result = export(ws, "session", "demo", "--to", str(repo), "--commit")
    assert result.returncode == 0, result.stderr
    assert commits(repo) == ["sessions: demo (greet v1)"]
    assert (repo / "sessions" / "demo.yaml").read_bytes() == (ws / "sessions" / "demo.yaml").read_bytes()


def test_not_a_repository_is_a_clear_error(ws: Path, tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    result = export(ws, "prompt", "greet", "--to", str(tmp_path / "plain"), "--commit")
    assert result.returncode == 2 and "is not inside a git repository" in result.stderr and "git init" in result.stderr
    assert not (tmp_path / "plain" / "prompts").exists()  # nothing written before the check
    assert "Traceback" not in result.stderr


def test_paths_must_stay_inside_the_destination(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a path inside"):
        export_files(tmp_path, [("../escape.txt", b"x")], "m")
    result = export_files(tmp_path, [("reports/r.md", b"# report\n")], "reports: r")
    assert result.written == ("reports/r.md",) and (tmp_path / "reports" / "r.md").read_bytes() == b"# report\n"


def test_commit_into_a_folder_the_repository_does_not_have_yet(ws: Path, repo: Path) -> None:
    run = workbench("run", "--prompt", "greet", "--var", "name=Ada", "--save-session", "demo", "--json", cwd=ws)
    assert run.returncode == 0, run.stderr
    for what, to in (("prompt", repo / "team" / "prompts-v2"), ("session", repo / "team" / "races" / "2026")):
        assert not to.exists()
        result = export(ws, what, {"prompt": "greet", "session": "demo"}[what], "--to", str(to), "--commit")
        assert result.returncode == 0, result.stderr
        assert result.stderr == "" and f"committed {git(repo, 'rev-parse', '--short', 'HEAD').strip()}" in result.stdout
    assert commits(repo) == ["sessions: demo (greet v1)", "prompts: greet v1"]
    assert sorted(git(repo, "ls-files").split()) == ["team/prompts-v2/prompts/greet.meta.json",
                                                     "team/prompts-v2/prompts/greet.yaml",
                                                     "team/races/2026/sessions/demo.yaml"]
    assert git(repo, "status", "--porcelain") == ""
