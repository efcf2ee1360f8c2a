"""Every folder workbench creates is private (0700), as its files are (0600): the workspace's ``.workbench/``, the
data and log directories, prompt versions, sessions, the folders ``workbench init`` makes, report folders and the
folders of exported files. A folder that exists already is never changed."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_cli import workbench
from workbench.core.folders import private_folder

PROMPT = ("name: greet\nmessages:\n  - role: user\n    content: Say hi to {{who}}\n"
          "variables:\n  who:\n    default: Ada\n")
SUITE = "prompts: [greet]\ntargets: [fake/x@tokens=3]\ntests:\n  - vars: {who: Bob}\n"


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The usual umask (022), for this process and the commands it starts: a folder made without a mode is 0755."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def folders_under(root: Path) -> list[Path]:
    return [root, *(p for p in root.rglob("*") if p.is_dir() and ".git" not in p.parts)]


@pytest.mark.usefixtures("usual_umask")
def test_every_folder_workbench_makes_is_0700_and_existing_ones_keep_their_mode(tmp_path: Path,
                                                                               fake_env: dict[str, str]) -> None:
    mine = tmp_path / "mine"  # the user's own folders, made before workbench runs
    (mine / "reports").mkdir(parents=True, mode=0o755)
    mine.chmod(0o755)
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for key, value in (("user.email", "ci@example.com"), ("user.name", "CI")):
        subprocess.run(["git", "-C", str(repo), "config", key, value], check=True)
    repo.chmod(0o755)
    ws = tmp_path / "new" / "deeper" / "ws"
    env = {**fake_env, "WORKBENCH_TRACES": "", "XDG_DATA_HOME": str(tmp_path / "xdg-data"),
           "WORKBENCH_LOG_DIR": str(tmp_path / "logs" / "network")}
    runs = [workbench("init", str(ws), env=env, cwd=tmp_path)]
    (ws / "prompts" / "greet.yaml").write_text(PROMPT, encoding="utf-8")
    (ws / "evals" / "greet.yaml").write_text(SUITE, encoding="utf-8")
    for folder in ("sessions", "reports"):
        (ws / folder).rmdir()  # made again by what writes into them
    runs += [
        workbench("prompts", "save", "greet", env=env, cwd=ws),
        workbench("run", "--prompt", "greet", "-m", "fake/x@tokens=3", "--save-session", "s1", env=env, cwd=ws),
        workbench("eval", "evals/greet.yaml", "--report", "md", "--out", str(ws / "reports" / "nightly" / "md"),
                  env=env, cwd=ws),
        workbench("eval", "evals/greet.yaml", "--report", "json", "--out", str(mine / "reports"), env=env, cwd=ws),
        workbench("export", "report", "last", "--to", str(repo), "--commit", env=env, cwd=ws),
        workbench("export", "session", "s1", "--to", str(repo), "--commit", env=env, cwd=ws),
        workbench("run", "hi", "-m", "fake/x@tokens=2", env=env, cwd=tmp_path),  # outside a workspace: the data dir
    ]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs if r.returncode]
    made = [*folders_under(tmp_path / "new"), *folders_under(tmp_path / "xdg-data"), *folders_under(tmp_path / "logs"),
            repo / "evals", repo / "evals" / "reports", repo / "sessions"]
    expected = [ws / ".workbench" / "prompts" / "greet", ws / "sessions", ws / "reports" / "nightly" / "md",
                tmp_path / "xdg-data" / "workbench", tmp_path / "logs" / "network"]
    assert all(path in made for path in expected), made
    assert {str(p.relative_to(tmp_path)): oct(mode(p)) for p in made if mode(p) != 0o700} == {}
    assert (ws / ".workbench" / "traces.db").is_file() and (tmp_path / "xdg-data" / "workbench" / "traces.db").is_file()
    assert mode(mine) == mode(mine / "reports") == mode(repo) == 0o755  # the user's own folders are left as they are
    assert len(list((mine / "reports").iterdir())) == 1


@pytest.mark.usefixtures("usual_umask")
def test_private_folder_leaves_an_existing_folder_alone_and_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    assert private_folder(existing) == existing and mode(existing) == 0o755
    made = private_folder(existing / "a" / "b")
    assert mode(existing) == 0o755 and mode(existing / "a") == mode(made) == 0o700
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(FileExistsError):
        private_folder(tmp_path / "file" / "below")
