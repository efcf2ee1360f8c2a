"""Clones of a workspace for the team-store tests: each its own folder, trace store and eval store, filled by the real
CLI (``workbench run`` on the built-in fake provider, ``workbench eval``, ``workbench prompts save``)."""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.postgres_server import ADMIN_PASSWORD, PostgresServer
from tests.test_cli import workbench

SUITE = """description: smoke
prompts:
  - "Write one line about {{topic}}"
providers:
  - id: fake/smoke@tokens=6
tests:
  - description: first
    vars: {topic: 'cats'}
    assert:
      - type: regex
        value: '\\w+'
  - description: second
    vars: {topic: 'dogs'}
    assert:
      - type: regex
        value: '\\w+'
"""

TEAM_TABLES = ("calls", "payloads", "call_tags", "eval_runs", "eval_results", "prompt_versions")


@dataclass(frozen=True)
class Clone:
    root: Path
    team_url: str
    extra: dict[str, str] = field(default_factory=dict)
    """More environment for every command (the fake server's URL)."""

    @property
    def traces(self) -> Path:
        return self.root / ".workbench" / "traces.db"

    @property
    def cache(self) -> Path:
        return self.root / ".workbench" / "team"

    def env(self, **more: str) -> dict[str, str]:
        return {"WORKBENCH_TRACES": str(self.traces), "WORKBENCH_TEAM_URL": self.team_url, **self.extra, **more}

    def cli(self, *args: str, **env: str):  # type: ignore[no-untyped-def]
        return workbench(*args, cwd=self.root, env=self.env(**env))

    def run(self, prompt: str, *targets: str, tag: str | None = None) -> None:
        args = ["run", prompt, "--json", *[a for t in targets for a in ("-m", t)]]
        result = self.cli(*args, *(("--tag", tag) if tag else ()))
        assert result.returncode == 0, result.stderr

    def eval(self, topic: str = "cats") -> None:
        """Run the smoke suite (its first test's topic ``topic``) to its end."""
        suite = self.root / "evals" / "smoke.yaml"
        suite.parent.mkdir(exist_ok=True)
        suite.write_text(SUITE.replace("{topic: 'cats'}", f"{{topic: '{topic}'}}"), encoding="utf-8")
        result = self.cli("eval", str(suite), "--json")
        assert result.returncode == 0, result.stderr

    def save_prompt(self, name: str, system: str) -> None:
        for args in (("prompts", "new", name, "--system", system, "--user", "Hi {{who}}"), ("prompts", "save", name)):
            result = self.cli(*args)
            assert result.returncode == 0, result.stderr

    def local(self, query: str, store: str = "traces.db", folder: Path | None = None) -> list[sqlite3.Row]:
        with sqlite3.connect((folder or self.traces.parent) / store) as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute(query).fetchall()


def make_clone(root: Path, team_url: str, env: dict[str, str], config: str = "") -> Clone:
    """A workspace at ``root`` (its ``workbench.toml`` holding ``config``) syncing with ``team_url``; ``env``: the
    fake server's (the ``fake_env`` fixture)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "workbench.toml").write_text(config, encoding="utf-8")
    return Clone(root, team_url, env)


def fresh_database(server: PostgresServer) -> str:
    """A new empty database on ``server``; the admin's URL to it (password in it, as a CI secret would be)."""
    name = server.create_database(f"team_{uuid.uuid4().hex[:10]}")
    return server.url(database=name, password=ADMIN_PASSWORD)


def server_rows(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query.encode()).fetchall()
