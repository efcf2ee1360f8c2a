"""The local/team switch (``t``) of the Traces and Evals screens, against a real PostgreSQL server: alice pushes her
calls and an eval run with ``workbench sync --push``; bob's app shows his own, then the team's with who pushed them,
and says so when no team store is configured."""

from __future__ import annotations

import getpass
import socket
from pathlib import Path

import pytest

from tests.postgres_server import PostgresServer
from tests.team_clones import Clone, fresh_database, make_clone
from tests.test_ui import SIZE, wait_for
from tests.test_ui_evals import open_evals
from tests.test_ui_more import messages
from tests.test_ui_snapshots import NO_KEYS
from workbench.ui.app import WorkbenchApp

PUSHED_BY = f"pushed by {getpass.getuser()}@{socket.gethostname()}"
pytestmark = pytest.mark.timeout(300)  # each test runs a dozen CLI processes: slow on a busy machine


def alice_and_bob(tmp_path: Path, postgres: PostgresServer, fake_env: dict[str, str]) -> tuple[Clone, Clone]:
    """alice: a call and a run of the smoke suite, pushed; bob: a run of the same suite, local only."""
    url = fresh_database(postgres)
    alice = make_clone(tmp_path / "alice", url, fake_env)
    alice.run("Tell me about zebras", "fake/alice@tokens=4")
    alice.eval()
    pushed = alice.cli("sync", "--push")
    assert pushed.returncode == 0, pushed.stderr
    bob = make_clone(tmp_path / "bob", url, fake_env)
    bob.eval()
    return alice, bob


def app_of(clone: Clone, **env: str) -> WorkbenchApp:
    return WorkbenchApp(env={**NO_KEYS, **clone.env(**env)}, config_path=str(clone.root / "workbench.toml"))


async def test_traces_switch_between_the_local_and_the_team_store(tmp_path: Path, postgres: PostgresServer,
                                                                  fake_env: dict[str, str]) -> None:
    _, bob = alice_and_bob(tmp_path, postgres, fake_env)
    app = app_of(bob)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        traces = app.get_screen("traces")
        await wait_for(pilot, lambda: len(traces.rows) == 2 and traces.detail is not None)  # type: ignore[attr-defined]
        assert not traces.sub_title
        await pilot.press("t")
        await wait_for(pilot, lambda: len(traces.rows) == 3)  # type: ignore[attr-defined]
        assert all("user" in row for row in traces.rows)  # type: ignore[attr-defined]
        assert traces.sub_title.startswith("team store ") and "/team_" in traces.sub_title
        assert traces.rows[-1]["target"] == "fake/alice@tokens=4"  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: traces.totals is not None and traces.totals["calls"] == 3)  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: "pushed by" in str(traces.query_one("#detail").render()))
        assert PUSHED_BY in str(traces.query_one("#detail").render())

        await pilot.press("ctrl+f")
        await pilot.press(*"zebras", "enter")
        await wait_for(pilot, lambda: [r["target"] for r in traces.rows] == ["fake/alice@tokens=4"])  # type: ignore[attr-defined]
        await pilot.press("f")  # follow mode watches the local log: refused while the team store shows
        await wait_for(pilot, lambda: any("follow mode watches the local" in m for m in messages(app)))
        assert not traces.following  # type: ignore[attr-defined]

        traces.query_one("#calls").focus()
        await pilot.press("t")
        await wait_for(pilot, lambda: traces.sub_title == "local store")
        await wait_for(pilot, lambda: not traces.switch.on and traces.rows == [])  # type: ignore[attr-defined]
        assert traces.query_text == "zebras"  # type: ignore[attr-defined]


async def test_evals_diff_switches_to_the_team_s_latest_run(tmp_path: Path, postgres: PostgresServer,
                                                            fake_env: dict[str, str]) -> None:
    alice, bob = alice_and_bob(tmp_path, postgres, fake_env)
    theirs = str(alice.local("SELECT id FROM eval_runs", "evals.db")[0]["id"])
    mine = str(bob.local("SELECT id FROM eval_runs", "evals.db")[0]["id"])
    app = app_of(bob)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_evals(app, pilot, "evals/smoke.yaml")
        await pilot.press("t")
        diff = screen.query_one("#diff-text")
        await wait_for(pilot, lambda: theirs in str(diff.render()))
        text = str(diff.render())
        assert f"run {mine} against the team's latest run ({PUSHED_BY}) {theirs}" in text
        assert "2 unchanged cells" in text
        assert screen.sub_title.startswith("team store ")
        await pilot.press("t")
        await wait_for(pilot, lambda: "No earlier run of this suite" in str(diff.render()))
        assert screen.sub_title == "local store"


async def test_the_switch_says_when_no_team_store_is_configured(tmp_path: Path, fake_env: dict[str, str]) -> None:
    clone = make_clone(tmp_path / "solo", "", fake_env)
    app = app_of(clone)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        traces = app.get_screen("traces")
        await pilot.press("t")
        await wait_for(pilot, lambda: any("no team store configured" in m for m in messages(app)))
        assert not traces.switch.on and not traces.sub_title  # type: ignore[attr-defined]
        assert any("WORKBENCH_TEAM_URL" in m for m in messages(app))
