"""``--team`` on ``traces list|search|stats`` and ``evals list|show|diff``: a clone pushes with ``sync --push``
to a real PostgreSQL server, then reads the team store through the CLI and gets what the local store gives, with who
pushed each row."""

from __future__ import annotations

import getpass
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.postgres_server import PostgresServer
from tests.team_clones import Clone, fresh_database, make_clone
from tests.test_cli import json_lines
from workbench.fakeserver.process import FakeServerProcess

ME = (getpass.getuser(), socket.gethostname())
pytestmark = pytest.mark.timeout(300)  # each test runs a dozen CLI processes: slow on a busy machine


@dataclass(frozen=True)
class Pushed:
    clone: Clone
    run_id: str


@pytest.fixture(scope="module")
def pushed(postgres: PostgresServer, fake_server: FakeServerProcess,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pushed]:
    """A clone with calls on two targets (some tagged), an eval run, all pushed to a fresh team store."""
    clone = make_clone(tmp_path_factory.mktemp("team-read") / "alice", fresh_database(postgres),
                       {"WORKBENCH_FAKE_URL": fake_server.base_url})
    clone.run("Tell me about zebras", "fake/a@tokens=4", "fake-anthropic/b@tokens=6", tag="prod")
    clone.run("Tell me about otters", "fake/a@tokens=5")
    clone.run("Tell me about lions", "fake/c@tokens=3", tag="dev")
    clone.eval()
    result = clone.cli("sync", "--push")
    assert result.returncode == 0, result.stderr
    run_id = json_lines(clone.cli("evals", "list", "--json").stdout)[0]["id"]
    yield Pushed(clone, str(run_id))


def _rows(clone: Clone, *args: str) -> list[dict[str, object]]:
    result = clone.cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json_lines(result.stdout)


FILTERS = ([], ["--model", "fake/a@tokens=4"], ["--provider", "fake"], ["--tag", "prod"], ["--status", "ok"],
           ["--since", "1h"], ["--until", "2000-01-01"], ["--min-latency-ms", "0"], ["-n", "2"])


@pytest.mark.parametrize("words", FILTERS, ids=lambda w: " ".join(w) or "no filter")
def test_traces_list_team_gives_the_local_rows_with_who_pushed_them(pushed: Pushed, words: list[str]) -> None:
    local = _rows(pushed.clone, "traces", "list", *words)
    team = _rows(pushed.clone, "traces", "list", "--team", *words)
    assert [{k: v for k, v in row.items() if k not in ("user", "host")} for row in team] == local
    assert all((row["user"], row["host"]) == ME for row in team)
    if words == ["--tag", "prod"]:
        assert len(team) == 2
    if words == ["--until", "2000-01-01"]:
        assert team == []


def test_traces_list_team_pages_by_id(pushed: Pushed) -> None:
    every = [row["id"] for row in _rows(pushed.clone, "traces", "list", "--team")]
    assert len(every) == 6
    first = [row["id"] for row in _rows(pushed.clone, "traces", "list", "--team", "-n", "2")]
    after = [row["id"] for row in _rows(pushed.clone, "traces", "list", "--team", "-n", "2", "--before", first[-1])]
    assert first + after == every[:4]


def test_traces_list_team_table_has_a_pushed_by_column(pushed: Pushed) -> None:
    result = pushed.clone.cli("traces", "list", "--team", COLUMNS="200")
    assert result.returncode == 0, result.stderr
    assert "pushed by" in result.stdout and f"{ME[0]}@{ME[1]}" in result.stdout
    assert "fake/a@tokens=4" in result.stdout


def test_traces_search_team_finds_every_word_as_the_local_search_does(pushed: Pushed) -> None:
    for words in (["otters"], ["ZEBRAS", "tell"], ["zebras", "otters"]):
        local = [row["id"] for row in _rows(pushed.clone, "traces", "search", " ".join(words))]
        team = _rows(pushed.clone, "traces", "search", " ".join(words), "--team")
        # The same calls, newest first: the team store by id, the local one by write order (two calls of one race
        # can be written in the other order than their ids), so both are compared by id.
        assert [row["id"] for row in team] == sorted(local, reverse=True)
    assert len(_rows(pushed.clone, "traces", "search", "zebras", "--team", "--tag", "prod")) == 2
    refused = pushed.clone.cli("traces", "search", "zebras", "--fts", "--team")
    assert refused.returncode == 2 and "--fts" in refused.stderr and len(refused.stderr.strip().splitlines()) <= 2


@pytest.mark.parametrize("by", ["model", "provider", "tag", "day", "status"])
def test_traces_stats_team_gives_the_local_figures(pushed: Pushed, by: str) -> None:
    local = _rows(pushed.clone, "traces", "stats", "--by", by)
    team = _rows(pushed.clone, "traces", "stats", "--by", by, "--team")
    assert [row[by] for row in team] == [row[by] for row in local]
    for mine, theirs in zip(local, team, strict=True):
        assert set(mine) == set(theirs)
        for key, value in mine.items():
            if isinstance(value, float):
                assert theirs[key] == pytest.approx(value), key
            else:
                assert theirs[key] == value, key


def test_traces_stats_team_groups_by_who_pushed(pushed: Pushed) -> None:
    rows = _rows(pushed.clone, "traces", "stats", "--by", "user", "--team")
    assert [(row["user"], row["calls"]) for row in rows] == [(ME[0], 6)]
    assert _rows(pushed.clone, "traces", "stats", "--by", "host", "--team")[0]["host"] == ME[1]
    local = pushed.clone.cli("traces", "stats", "--by", "user")
    assert local.returncode == 2 and "--team" in local.stderr


def test_evals_list_and_show_team(pushed: Pushed) -> None:
    local = _rows(pushed.clone, "evals", "list")
    team = _rows(pushed.clone, "evals", "list", "--team")
    assert [{k: v for k, v in row.items() if k not in ("user", "host")} for row in team] == local
    assert (team[0]["user"], team[0]["host"]) == ME
    assert _rows(pushed.clone, "evals", "list", "--team", "--suite", str(team[0]["suite"])) == team
    assert _rows(pushed.clone, "evals", "list", "--team", "--suite", "no-such-suite") == []
    table = pushed.clone.cli("evals", "list", "--team", COLUMNS="200")
    assert table.returncode == 0 and "pushed by" in table.stdout and pushed.run_id in table.stdout
    shown = pushed.clone.cli("evals", "show", pushed.run_id[:10], "--team", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == pushed.clone.cli("evals", "show", pushed.run_id, "--format", "json").stdout
    prefixed = pushed.clone.cli("evals", "show", f"team:{pushed.run_id}", "--format", "json")
    assert prefixed.stdout == shown.stdout
    missing = pushed.clone.cli("evals", "show", "team:NOPE")
    assert missing.returncode == 2 and "team store" in missing.stderr


def test_evals_diff_a_local_run_against_the_team_copy(pushed: Pushed) -> None:
    run = pushed.run_id
    result = pushed.clone.cli("evals", "diff", run, f"team:{run}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"local:{run} → team:{run}: 2 unchanged"
    both = pushed.clone.cli("evals", "diff", f"local:{run}", "last", "--team", "--json")
    assert both.returncode == 0, both.stderr
    assert [row["change"] for row in json_lines(both.stdout)] == ["unchanged", "unchanged"]
    team_only = pushed.clone.cli("evals", "diff", run, "last", "--team")
    assert team_only.stdout.strip().splitlines()[-1] == f"{run} → {run}: 2 unchanged"


def test_team_reads_fail_in_one_line(pushed: Pushed, postgres: PostgresServer, tmp_path: Path) -> None:
    nowhere = pushed.clone.cli("traces", "list", "--team", WORKBENCH_TEAM_URL="postgresql://x@127.0.0.1:1/db")
    assert nowhere.returncode == 1 and nowhere.stderr.startswith("workbench: team store")
    assert "Traceback" not in nowhere.stderr and "cannot reach" in nowhere.stderr
    fresh = pushed.clone.cli("evals", "list", "--team", WORKBENCH_TEAM_URL=fresh_database(postgres))
    assert fresh.returncode == 2 and "not set up" in fresh.stderr
    bare = make_clone(tmp_path / "bare", "", pushed.clone.extra)
    unset = bare.cli("traces", "list", "--team", WORKBENCH_TEAM_URL="")
    assert unset.returncode == 2 and "no team store configured" in unset.stderr
    both = pushed.clone.cli("traces", "--db", str(pushed.clone.traces), "list", "--team")
    assert both.returncode == 2 and "--db" in both.stderr


def test_a_read_only_role_browses_but_cannot_push(postgres: PostgresServer, tmp_path: Path,
                                                  pushed: Pushed) -> None:
    """The README's roles (a writer, a read-only reader): the writer pushes, the reader browses every --team command
    and its push is refused in one line."""
    import psycopg

    from tests.test_team_sync import README_ROLES

    with psycopg.connect(postgres.admin(), autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS workbench")
        for role in ("workbench_reader", "workbench_writer"):
            admin.execute(f"DROP ROLE IF EXISTS {role}".encode())
        for statement in README_ROLES:
            admin.execute(statement.encode())
    env = pushed.clone.extra
    writer = make_clone(tmp_path / "w", postgres.url("workbench_writer", "workbench", "writer-password"), env)
    writer.run("Tell me about herons", "fake/w@tokens=3", tag="ci")
    writer.eval()
    assert writer.cli("sync", "--push").returncode == 0
    reader = make_clone(tmp_path / "r", postgres.url("workbench_reader", "workbench", "reader-password"), env)
    calls = _rows(reader, "traces", "list", "--team")
    assert len(calls) == 3 and {row["target"] for row in calls} == {"fake/w@tokens=3", "fake/smoke@tokens=6"}
    assert [row["id"] for row in _rows(reader, "traces", "list", "--team", "--tag", "ci")] == [calls[-1]["id"]]
    assert len(_rows(reader, "traces", "search", "herons", "--team")) == 1
    assert sum(int(str(row["calls"])) for row in _rows(reader, "traces", "stats", "--team")) == 3
    runs = _rows(reader, "evals", "list", "--team")
    assert len(runs) == 1
    shown = reader.cli("evals", "show", str(runs[0]["id"]), "--team")
    assert shown.returncode == 0 and "smoke" in shown.stdout
    reader.run("Tell me about owls", "fake/r@tokens=3")
    refused = reader.cli("sync", "--push")
    assert refused.returncode == 2 and "this role may not do that" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) <= 2 and "Traceback" not in refused.stderr


def test_team_search_pages_by_cursor_and_a_call_reads_whole_by_an_id_prefix(pushed: Pushed) -> None:
    """What the TUI's team switch reads: search pages after a cursor, a call with its payload and tags."""
    import psycopg

    from workbench.core.team.queries import TeamTraces

    with psycopg.connect(pushed.clone.team_url) as conn:
        store = TeamTraces(conn)
        every = [row["id"] for row in store.search("about", limit=50)]
        first = store.search("about", limit=4)
        rest = store.search("about", before=first[-1]["_cursor"], limit=50)
        assert len(every) == 6 and [row["id"] for row in first + rest] == every
        lions = store.page(limit=50)
        tagged = next(row for row in lions if row["target"] == "fake/c@tokens=3")
        call = store.get(tagged["id"][:20])
        assert call is not None and call["id"] == tagged["id"] and call["tags"] == ["dev"]
        assert call["payload"] is not None and "lions" in call["payload"]["request_json"]
        assert (call["user"], call["host"]) == ME
        assert store.get("0") is None  # every id starts with 0: not one call
