"""``workbench sync`` against a real PostgreSQL server (tests/postgres_server.py): push and pull of every table, two
clones at once, a connection killed mid-push then resumed, redaction checked in the server's rows, roles, errors."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.postgres_server import ADMIN_PASSWORD, PostgresServer
from tests.team_clones import TEAM_TABLES, Clone, fresh_database, make_clone, server_rows
from tests.test_cli import json_lines, workbench
from workbench.core.errors import WorkbenchError
from workbench.core.team.connection import TeamUnreachable, team_session
from workbench.core.team.marks import SyncMarks
from workbench.core.team.migrations import MIGRATIONS
from workbench.core.team.push import LocalStores
from workbench.core.team.sync import sync
from workbench.core.team.tables import ATTRIBUTION
from workbench.core.team.tables import columns as columns_of
from workbench.core.team.target import parse_target
from workbench.core.traces.columns import CALL_COLUMNS, PAYLOAD_COLUMNS
from workbench.core.traces.redact import Redactor

CANARY = "sk-canary-4f9a1c2e8b7d6a5f3e2d1c0b"


def _synced(clone: Clone, *args: str, **env: str) -> dict[str, object]:
    result = clone.cli("sync", "--json", *args, **env)
    assert result.returncode == 0, result.stderr
    report: dict[str, object] = json_lines(result.stdout)[0]
    return report


def _rows(clone: Clone, query: str, store: str = "traces.db", folder: Path | None = None) -> list[dict[str, object]]:
    return [dict(r) for r in clone.local(query, store, folder)]


@pytest.mark.timeout(180)  # several `workbench` processes, on a busy machine
def test_push_then_pull_round_trips_every_table(tmp_path: Path, postgres: PostgresServer,
        fake_env: dict[str, str]) -> None:
    url = fresh_database(postgres)
    alice = make_clone(tmp_path / "alice", url, fake_env)
    alice.run("Hello there", "fake/a@tokens=5", "fake/b@tokens=3", tag="exp-1")
    alice.eval()
    alice.save_prompt("greet", "You greet people.")

    tags = len(alice.local("SELECT * FROM call_tags"))  # the run's tag, and the eval's own on its calls
    assert tags >= 2
    pushed = _synced(alice, "--push")
    expected = {"calls": 4, "call_tags": tags, "eval_results": 2, "eval_runs": 1, "prompt_versions": 1}
    assert pushed["pushed"] == expected
    counts = {t: server_rows(url, f"SELECT count(*) FROM {t}")[0][0] for t in TEAM_TABLES}
    assert counts == {**expected, "payloads": 4}
    for table in TEAM_TABLES:  # every row says who pushed it, from where
        assert server_rows(url, f"SELECT count(*) FROM {table} WHERE team_user = '' OR team_host = ''")[0][0] == 0
    assert {r[0] for r in server_rows(url, "SELECT team_host FROM calls")} == {os.uname().nodename}

    again = _synced(alice, "--push")  # the marks: nothing is sent twice
    assert again["pushed"] == {}

    bob = make_clone(tmp_path / "bob", url, fake_env)
    pulled = _synced(bob, "--pull")
    assert pulled["pulled"] == expected
    cache = bob.cache
    columns = ", ".join(f"c.{c}" for c in CALL_COLUMNS) + ", " + ", ".join(f"p.{c}" for c in PAYLOAD_COLUMNS)
    query = f"SELECT {columns} FROM calls c JOIN payloads p ON p.call_id = c.id ORDER BY c.id"
    assert _rows(bob, query, folder=cache) == _rows(alice, query)
    assert _rows(bob, "SELECT * FROM call_tags ORDER BY call_id", folder=cache) == \
        _rows(alice, "SELECT * FROM call_tags ORDER BY call_id")
    run_query = f"SELECT {', '.join(c for c in columns_of('eval_runs') if c not in ATTRIBUTION)} FROM eval_runs"
    assert _rows(bob, run_query, "evals.db", cache) == _rows(alice, run_query, "evals.db")
    theirs = _rows(bob, "SELECT * FROM eval_results ORDER BY seq", "evals.db", cache)
    ours = _rows(alice, "SELECT * FROM eval_results ORDER BY seq", "evals.db")
    for row in (*theirs, *ours):
        row["observation"], row["gradings"] = json.loads(str(row["observation"])), json.loads(str(row["gradings"]))
    assert theirs == ours
    prompt = _rows(bob, "SELECT name, number, text, team_user FROM prompt_versions", "prompts.db", cache)
    assert len(prompt) == 1 and prompt[0]["name"] == "greet" and "You greet people." in str(prompt[0]["text"])
    pushers = _rows(bob, "SELECT kind, id, team_user, team_host FROM pushers ORDER BY kind, id", "pushers.db", cache)
    alice_rows = server_rows(url, "SELECT 'call', id, team_user, team_host FROM calls UNION ALL "
                                  "SELECT 'run', id, team_user, team_host FROM eval_runs ORDER BY 1, 2")
    assert [tuple(r.values()) for r in pushers] == alice_rows and len(pushers) == 5
    assert {r["team_host"] for r in pushers} == {os.uname().nodename}

    listed = bob.cli("traces", "list", "--json", "--tag", "exp-1", WORKBENCH_TRACES=str(cache / "traces.db"))
    assert listed.returncode == 0, listed.stderr
    assert sorted(r["target"] for r in json_lines(listed.stdout)) == ["fake/a@tokens=5", "fake/b@tokens=3"]
    runs = bob.cli("evals", "list", "--json", WORKBENCH_TRACES=str(cache / "traces.db"))
    assert [r["suite"] for r in json_lines(runs.stdout)] == ["smoke"]
    assert _synced(bob, "--pull")["pulled"] == {}  # from the mark on
    assert not bob.traces.exists()  # the local stores are never written by a pull


@pytest.mark.timeout(180)  # several `workbench` processes, on a busy machine
def test_a_key_in_a_traced_request_never_reaches_the_server(tmp_path: Path, postgres: PostgresServer,
        fake_env: dict[str, str]) -> None:
    url = fresh_database(postgres)
    clone = make_clone(tmp_path / "c", url, fake_env, '[traces]\nredact = []\n')  # the local store keeps it as written
    clone.run(f"my key is {CANARY}, keep it", "fake/echo@tokens=20", tag=f"leak-{CANARY}")
    clone.eval(topic=CANARY)  # in a test's variables, its rendered prompt and the traced request
    clone.save_prompt("leaky", f"Call the API with {CANARY}.")
    assert any(CANARY in str(r["request_json"]) for r in clone.local("SELECT request_json FROM payloads"))
    assert any(CANARY in str(r[0]) for r in clone.local("SELECT observation FROM eval_results", "evals.db"))

    _synced(clone, "--push")
    found = []
    for table in TEAM_TABLES:  # every column of every row, as text
        found += [table for (text,) in server_rows(url, f"SELECT t::text FROM {table} t") if "canary" in str(text)]
    assert found == []
    assert server_rows(url, "SELECT count(*) FROM payloads WHERE request_json LIKE '%[redacted:api_key]%'") == [(2,)]
    assert server_rows(url, "SELECT count(*) FROM eval_results WHERE observation LIKE '%[redacted:api_key]%'") == [(1,)]
    assert server_rows(url, "SELECT count(*) FROM prompt_versions WHERE text LIKE '%[redacted:api_key]%'") == [(1,)]
    assert server_rows(url, "SELECT tag FROM call_tags WHERE tag LIKE 'leak-%'") == [("leak-[redacted:api_key]",)]


@pytest.mark.timeout(180)  # several `workbench` processes, on a busy machine
def test_metadata_only_sends_counts_and_timings_but_no_text(tmp_path: Path, postgres: PostgresServer,
        fake_env: dict[str, str]) -> None:
    url = fresh_database(postgres)
    clone = make_clone(tmp_path / "c", url, fake_env)
    clone.run("a private prompt", "fake/a@tokens=5")
    clone.eval()
    (clone.root / "workbench.toml").write_text("[traces]\nmetadata_only = true\n")
    _synced(clone, "--push")
    payload = server_rows(url, "SELECT request_json, response_text, attempts_json FROM payloads")
    assert payload and all(value is None for row in payload for value in row)
    calls = server_rows(url, "SELECT output_tokens, latency_ms FROM calls")
    assert all(tokens is not None and latency is not None for tokens, latency in calls)
    for (observation,) in server_rows(url, "SELECT observation FROM eval_results"):
        kept = json.loads(str(observation))
        assert kept["text"] == "[metadata only]" and all(v == "[metadata only]" for v in kept["vars"].values())


@pytest.mark.timeout(180)  # several `workbench` processes, on a busy machine
def test_two_clones_syncing_at_once_each_get_the_other_s_rows(tmp_path: Path, postgres: PostgresServer,
        fake_env: dict[str, str]) -> None:
    url = fresh_database(postgres)  # new: both race to create the tables too
    clones = [make_clone(tmp_path / name, url, fake_env) for name in ("one", "two")]
    for n, clone in enumerate(clones):
        clone.run(f"from clone {n}", f"fake/c{n}a@tokens=4", f"fake/c{n}b@tokens=4")
        clone.save_prompt("shared", "Same text in both clones.")
    base = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    procs = [subprocess.Popen([sys.executable, "-m", "workbench", "sync", "--json"], cwd=c.root, text=True,
                              env={**base, **c.env()}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for c in clones]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    assert server_rows(url, "SELECT count(*), count(DISTINCT id) FROM calls") == [(4, 4)]
    assert server_rows(url, "SELECT count(*) FROM prompt_versions") == [(1,)]  # same name and content: one version
    applied = [name for (name,) in server_rows(url, "SELECT name FROM team_migrations")]
    assert sorted(applied) == sorted(m.name for m in MIGRATIONS)  # each once
    for clone in clones:
        _synced(clone, "--pull")
        targets = {r["target"] for r in clone.local("SELECT target FROM calls", folder=clone.cache)}
        assert targets == {"fake/c0a@tokens=4", "fake/c0b@tokens=4", "fake/c1a@tokens=4", "fake/c1b@tokens=4"}


@pytest.mark.timeout(180)  # several `workbench` processes, on a busy machine
def test_a_connection_killed_mid_push_resumes_with_nothing_lost_or_twice(tmp_path: Path,
                                                                         postgres: PostgresServer,
        fake_env: dict[str, str]) -> None:
    url = fresh_database(postgres)
    clone = make_clone(tmp_path / "c", url, fake_env)
    clone.run("many calls", *[f"fake/m{i}@tokens=2" for i in range(12)])
    target = parse_target(url, "test", in_file=False)
    stores = LocalStores(clone.traces, None)
    batches: list[int] = []

    def kill_after_two(table: str, rows: int) -> None:
        batches.append(rows)
        if len(batches) == 2:  # from another connection, as an admin or a network cut would
            with psycopg.connect(postgres.admin()) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE application_name = 'workbench' AND pid <> pg_backend_pid()")

    with pytest.raises(TeamUnreachable) as cut:
        sync(target, stores, Redactor.build(), pull=False, batch=5, progress=kill_after_two)
    assert "the connection was cut" in str(cut.value) and "terminat" in str(cut.value)
    assert "admin-secret" not in str(cut.value)
    assert server_rows(url, "SELECT count(*) FROM calls") == [(10,)]  # the two committed batches

    report = sync(target, stores, Redactor.build(), pull=False, batch=5)
    assert report.pushed is not None and report.pushed.rows["calls"] == 2  # from the mark: only the rest
    local_ids = {r["id"] for r in clone.local("SELECT id FROM calls")}
    assert {r[0] for r in server_rows(url, "SELECT id FROM calls")} == local_ids
    assert server_rows(url, "SELECT count(*) FROM payloads") == [(12,)]

    stores.marks_path.unlink()  # a batch committed on the server whose mark was never stored: sent again, lands once
    again = sync(target, stores, Redactor.build(), pull=False, batch=5)
    assert again.pushed is not None and again.pushed.rows["calls"] == 12 and again.pushed.new["calls"] == 0
    assert server_rows(url, "SELECT count(*), count(DISTINCT id) FROM calls") == [(12, 12)]


@pytest.mark.timeout(180)  # several `workbench` processes, on a busy machine
def test_a_trace_store_replaced_after_a_push_is_pushed_again(tmp_path: Path, postgres: PostgresServer,
                                                             fake_env: dict[str, str]) -> None:
    url = fresh_database(postgres)
    clone = make_clone(tmp_path / "c", url, fake_env)
    clone.run("first store", "fake/r1@tokens=2", "fake/r2@tokens=2", "fake/r3@tokens=2")
    _synced(clone, "--push")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{clone.traces}{suffix}").unlink(missing_ok=True)
    clone.run("a new store, its rowids from 1 again", "fake/r4@tokens=2")
    assert _synced(clone, "--push")["pushed"] == {"calls": 1, "call_tags": 0}
    assert server_rows(url, "SELECT count(*) FROM calls") == [(4,)]


def test_a_pull_mark_from_another_server_at_the_same_address_is_not_trusted(tmp_path: Path,
                                                                            postgres: PostgresServer) -> None:
    url = fresh_database(postgres)
    target = parse_target(url, "test", in_file=False)
    with team_session(target, write=True) as conn, conn.transaction():
        conn.execute("INSERT INTO prompt_versions (name, hash, number, created, text, team_user, team_host) "
                     "VALUES ('p', 'h', 1, 'now', 'text', 'u', 'host')")
    stores = LocalStores(tmp_path / "traces.db", None)
    marks = SyncMarks(stores.marks_path, target.identity)
    marks.put("pull:prompt_versions", str(10**15))  # a mark of a server whose transaction ids ran far ahead
    marks.close()
    report = sync(target, stores, Redactor.build(), push=False)
    assert report.pulled is not None and report.pulled.rows == {"prompt_versions": 1}


@pytest.mark.timeout(180)  # several `workbench` processes, on a busy machine
def test_since_is_a_one_off_window_that_leaves_the_marks(tmp_path: Path, postgres: PostgresServer,
                                                          fake_env: dict[str, str]) -> None:
    url = fresh_database(postgres)
    clone = make_clone(tmp_path / "c", url, fake_env)
    clone.run("now", "fake/s1@tokens=2", "fake/s2@tokens=2")
    assert _synced(clone, "--push", "--since", "2099-01-01")["pushed"] == {}  # nothing started since then
    assert _synced(clone, "--push", "--since", "1h")["pushed"] == {"calls": 2, "call_tags": 0}
    assert _synced(clone, "--push")["pushed"] == {"calls": 2, "call_tags": 0}  # the marks were neither read nor moved
    assert server_rows(url, "SELECT count(*) FROM calls") == [(2,)]
    bad = clone.cli("sync", "--since", "last tuesday")
    assert bad.returncode == 2 and "neither a date nor an age" in bad.stderr


@pytest.mark.timeout(180)  # several `workbench` processes, on a busy machine
def test_a_run_that_ends_again_is_pushed_again_with_its_new_values(tmp_path: Path, postgres: PostgresServer,
                                                                    fake_env: dict[str, str]) -> None:
    url = fresh_database(postgres)
    clone = make_clone(tmp_path / "c", url, fake_env)
    clone.eval()
    assert _synced(clone, "--push")["pushed"] == {"calls": 2, "call_tags": 2, "eval_results": 2, "eval_runs": 1}
    assert _synced(clone, "--push")["pushed"] == {}
    reader = make_clone(tmp_path / "r", url, fake_env)
    _synced(reader, "--pull")
    evals = sqlite3.connect(clone.traces.with_name("evals.db"))
    with evals:  # as a run resumed and ended again leaves it: a later end, another verdict, a result graded anew
        evals.execute("UPDATE eval_runs SET finished_at = finished_at + 60, verdict = 'failed', exit_code = 1")
        evals.execute("UPDATE eval_results SET passed = 0, score = 0 WHERE seq = 0")
    evals.close()
    assert _synced(clone, "--push")["pushed"] == {"eval_results": 2, "eval_runs": 1}
    assert server_rows(url, "SELECT count(*), min(verdict), min(exit_code) FROM eval_runs") == [(1, "failed", 1)]
    assert server_rows(url, "SELECT seq, passed FROM eval_results ORDER BY seq") == [(0, 0), (1, 1)]
    assert _synced(reader, "--pull")["pulled"] == {"eval_results": 2, "eval_runs": 1}  # changed: pulled again
    assert _rows(reader, "SELECT verdict FROM eval_runs", "evals.db", reader.cache) == [{"verdict": "failed"}]


@pytest.mark.timeout(180)  # several `workbench` processes, on a busy machine
def test_eval_sync_pushes_the_run_when_it_ends(tmp_path: Path, postgres: PostgresServer,
        fake_env: dict[str, str]) -> None:
    url = fresh_database(postgres)
    clone = make_clone(tmp_path / "c", url, fake_env)
    suite = clone.root / "evals" / "smoke.yaml"
    clone.eval()  # writes the suite; a first run, pushed by the second's --sync with it
    result = clone.cli("eval", str(suite), "--json", "--sync")
    assert result.returncode == 0, result.stderr
    assert "pushed" in result.stderr
    assert server_rows(url, "SELECT count(*), min(status) FROM eval_runs") == [(2, "done")]
    assert server_rows(url, "SELECT count(*) FROM eval_results") == [(4,)]


@pytest.mark.timeout(180)  # several `workbench` processes, on a busy machine
def test_bad_configurations_and_unreachable_servers_are_one_line(tmp_path: Path, postgres: PostgresServer,
                                                                 unreachable_port: int,
                                                                 fake_env: dict[str, str]) -> None:
    clone = make_clone(tmp_path / "c", "", fake_env)
    cases = {
        "mysql://u:hunter2-secret@127.0.0.1/db": (2, "not a postgresql:// URL"),
        f"postgresql://u:hunter2-secret@127.0.0.1:{unreachable_port}/db": (1, "cannot reach the server"),
        postgres.url(password="hunter2-secret"): (2, "the login was refused"),
        "postgresql://u:hunter2-secret@db.example.com/db?sslmode=disable": (2, "needs TLS"),
    }
    for url, (code, words) in cases.items():
        result = workbench("sync", cwd=clone.root, env={"WORKBENCH_TEAM_URL": url})
        assert (result.returncode, words in result.stderr) == (code, True), (url, result.stderr)
        assert "hunter2" not in result.stderr + result.stdout and "Traceback" not in result.stderr
        assert result.stderr.startswith("workbench: ")

    (clone.root / "workbench.toml").write_text('[team]\nurl = "postgresql://u:hunter2-secret@db.example.com/x"\n')
    in_file = workbench("sync", cwd=clone.root)
    assert in_file.returncode == 2 and f"{clone.root / 'workbench.toml'}:2: team.url: a password" in in_file.stderr
    assert "hunter2" not in in_file.stderr

    (clone.root / "workbench.toml").write_text("")
    unset = workbench("sync", cwd=clone.root, env={"WORKBENCH_TEAM_URL": ""})
    assert unset.returncode == 2 and "no team store configured" in unset.stderr


@pytest.mark.timeout(180)  # several `workbench` processes, on a busy machine
def test_the_password_comes_from_the_keyring(tmp_path: Path, postgres: PostgresServer,
        fake_env: dict[str, str]) -> None:
    url = fresh_database(postgres)
    bare = url.replace(f":{url.split(':')[2].split('@')[0]}@", "@")  # the same URL without its password
    assert "@" in bare and "admin-secret" not in bare
    clone = make_clone(tmp_path / "c", bare, fake_env)
    (clone.root / "workbench.toml").write_text(f'[team]\nurl = "{bare}"\n')
    refused = workbench("sync", "--push", cwd=clone.root, env={"WORKBENCH_TEAM_URL": ""})
    assert refused.returncode == 2 and "no password supplied" in refused.stderr
    password = url.split(":")[2].split("@")[0]
    stored = workbench("keys", "set", "team", "--stdin", stdin=password + "\n", cwd=clone.root)
    assert stored.returncode == 0, stored.stderr
    listed = workbench("keys", "list", "--json", cwd=clone.root)
    assert {"provider": "team", "env_var": "", "source": "keyring", "key": None,
            "overrides_keyring": False} in json_lines(listed.stdout)
    shown = workbench("keys", "list", cwd=clone.root)
    assert any(line.split()[:2] == ["team", "keyring"] for line in shown.stdout.splitlines())
    assert password not in listed.stdout + shown.stdout and password[-4:] not in listed.stdout + shown.stdout
    synced = workbench("sync", "--push", cwd=clone.root, env={"WORKBENCH_TEAM_URL": ""})
    assert synced.returncode == 0, synced.stderr


@pytest.mark.timeout(180)  # several `workbench` processes, on a busy machine
def test_the_password_comes_from_pgpassfile(tmp_path: Path, postgres: PostgresServer,
                                            fake_env: dict[str, str]) -> None:
    url = fresh_database(postgres)
    database = url.rsplit("/", 1)[1]
    clone = make_clone(tmp_path / "c", postgres.url(database=database), fake_env)  # no password in the URL
    clone.run("hello", "fake/p@tokens=2")
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{postgres.port}:{database}:postgres:{ADMIN_PASSWORD}\n")
    passfile.chmod(0o600)
    assert clone.cli("sync", "--push").returncode == 2  # no password anywhere: the login is refused
    synced = clone.cli("sync", "--push", PGPASSFILE=str(passfile))
    assert synced.returncode == 0, synced.stderr
    assert server_rows(url, "SELECT count(*) FROM calls") == [(1,)]


README_ROLES = (
    "CREATE ROLE workbench_writer LOGIN PASSWORD 'writer-password';",
    "CREATE DATABASE workbench OWNER workbench_writer;",
    "CREATE ROLE workbench_reader LOGIN PASSWORD 'reader-password' IN ROLE pg_read_all_data;",
)


@pytest.mark.timeout(180)  # several `workbench` processes, on a busy machine
def test_the_readme_s_roles_a_writer_pushes_a_reader_pulls_but_cannot_push(tmp_path: Path,
                                                                           postgres: PostgresServer,
        fake_env: dict[str, str]) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert all(statement in readme for statement in README_ROLES)
    with psycopg.connect(postgres.admin(), autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS workbench")
        for role in ("workbench_reader", "workbench_writer"):
            admin.execute(f"DROP ROLE IF EXISTS {role}".encode())
        for statement in README_ROLES:
            admin.execute(statement.encode())
    writer = make_clone(tmp_path / "w", postgres.url("workbench_writer", "workbench", "writer-password"), fake_env)
    writer.run("written", "fake/w@tokens=3")
    _synced(writer, "--push")

    reader = make_clone(tmp_path / "r", postgres.url("workbench_reader", "workbench", "reader-password"), fake_env)
    assert _synced(reader, "--pull")["pulled"] == {"calls": 1}
    reader.run("not allowed", "fake/r@tokens=3")
    refused = reader.cli("sync", "--push")
    assert refused.returncode == 2 and "this role may not do that" in refused.stderr, refused.stderr


def test_describe_never_shows_the_password() -> None:
    target = parse_target("postgresql://u:pa55-w0rd-zz@127.0.0.1:1/db", "test", in_file=False)
    error = psycopg.OperationalError("connection failed: password=pa55-w0rd-zz rejected")
    from workbench.core.team.connection import describe

    described: WorkbenchError = describe(error, target)
    assert "pa55-w0rd-zz" not in str(described) and "127.0.0.1:1/db" in str(described)


@pytest.mark.parametrize("metadata_only", [False, True])
def test_a_batch_is_redacted_as_each_of_its_rows_alone(metadata_only: bool) -> None:
    from workbench.core.team.outgoing import Outgoing, local_columns, sync_redactor

    outgoing = Outgoing(sync_redactor(Redactor.build(metadata_only=metadata_only)), "dev", "box")
    width = len(local_columns("payloads"))
    secrets = {3: f"key {CANARY}", 400: "mail ann@example.com", 401: "card 4111 1111 1111 1111", 999: CANARY}
    rows = [(f"c{n}", *[secrets.get(n, f"plain text {n}") if i == 1 else (None if i == 2 else f"t{n}-{i}")
                        for i in range(1, width)]) for n in range(1_000)]
    batch = outgoing.many("payloads", rows)
    assert batch == [outgoing.values("payloads", r) for r in rows]
    assert not any(CANARY in str(v) or "ann@example.com" in str(v) for row in batch for v in row)
    assert batch[0][-2:] == ("dev", "box")
