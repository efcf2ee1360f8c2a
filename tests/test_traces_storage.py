"""Storage trouble: a full disk, a read-only store, damaged pages or header. Each is one line on stderr (with
the right next step) and the right exit code, never a traceback; a read-only store is read; a damaged one
can be checked and recovered into a new store."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.test_cli import json_lines, workbench
from tests.test_traces import synthetic
from tests.test_traces_prune import assert_whole
from workbench.core.traces.context import CallContext
from workbench.core.traces.store import TraceStore
from workbench.core.traces.writer import TraceWriter

ROOT = Path(__file__).resolve().parents[1]
Run = Callable[..., subprocess.CompletedProcess[str]]


def env_for(db: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    return {**base, "WORKBENCH_TRACES": str(db)}


def one_clear_line(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> list[str]:
    """The result failed with ``code`` and said why in one line (and a hint), no traceback."""
    lines = result.stderr.splitlines()
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and lines and lines[0].startswith("workbench: "), result.stderr
    assert len(lines) <= 2 and all(line.startswith("  hint: ") for line in lines[1:]), result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)
    return lines


def store_of(path: Path, count: int, text: str = "apricot reply") -> list[str]:
    records = synthetic(count, time.time() - 10_000)
    for record in records:
        record.text_parts = [text]
    writer = TraceWriter(path)
    ids = [writer.write(record, CallContext(tags=("t",))) for record in records]
    writer.close()
    return ids


# -- a full disk --------------------------------------------------------------------------------------

def limited(max_bytes: int) -> Callable[[], None]:
    """A child whose files cannot grow past ``max_bytes`` (as on a full disk, without root): writes past it
    fail with EFBIG instead of killing the child with SIGXFSZ."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    return apply


def run_limited(db: Path, max_bytes: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True,
                          env=env_for(db), cwd=ROOT, timeout=60, preexec_fn=limited(max_bytes))


def test_a_full_disk_is_one_line_and_exit_1_and_no_result_is_lost(tmp_path: Path) -> None:
    db = tmp_path / "full.db"
    store_of(db, 3)
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("apricot " * 60_000)  # ~480 kB: its row cannot fit under the limit
    ran = run_limited(db, 200_000, "run", "-f", str(prompt), "-m", "fake/a@tokens=3", "--json")
    one_clear_line(ran, 1, "not written to the trace log", "hint: ")
    [row] = json_lines(ran.stdout)
    assert row["status"] == "ok" and row["text"] and row["trace_id"] is None  # the result is all there
    assert len(TraceStore(db).page()) == 3

    pruned = run_limited(db, 1_000, "traces", "prune", "--before", "2999-01-01")
    one_clear_line(pruned, 1, str(db))
    assert len(TraceStore(db).page()) == 3
    assert_whole(db)


# -- a read-only store -------------------------------------------------------------------------------

@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[Run]:
    """Commands run against ``folder`` made read-only. Not as root: the file and the folder lose their write
    permission. As root (permissions do not stop root) each command runs in a private mount namespace where
    ``folder`` is a read-only bind mount, so the store really is on a read-only mount; where that is not
    allowed either, the test is skipped."""
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in (*folder.iterdir(), folder)}
        for path in modes:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield lambda *args, db: workbench(*args, env={"WORKBENCH_TRACES": str(db)})
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    unshare = shutil.which("unshare")
    mount = ["sh", "-c", 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"', str(folder)]
    if unshare is None or subprocess.run([unshare, "-m", *mount, "true"], capture_output=True).returncode:
        pytest.skip("root without the right to mount: no way to make a read-only store here")

    def run(*args: str, db: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([unshare, "-m", *mount, sys.executable, "-m", "workbench", *args], capture_output=True,
                              text=True, env=env_for(db), cwd=ROOT, timeout=60)

    yield run


def test_a_read_only_store_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "t.db"
    ids = store_of(db, 4)
    assert sorted(p.name for p in folder.iterdir()) == ["t.db"]  # closed cleanly: no -wal, no -shm
    before = db.read_bytes()
    with read_only(folder) as run:
        listed = run("traces", "list", "--json", db=db)
        assert listed.returncode == 0, listed.stderr
        assert sorted(str(r["id"]) for r in json_lines(listed.stdout)) == sorted(ids)
        shown = run("traces", "show", ids[0], "--json", db=db)
        assert shown.returncode == 0 and json.loads(shown.stdout)["response"] == "apricot reply", shown.stderr
        found = run("traces", "search", "apricot", "--json", db=db)
        assert found.returncode == 0 and len(json_lines(found.stdout)) == 4, found.stderr
        stats = run("traces", "stats", "--by", "status", "--json", db=db)
        assert stats.returncode == 0 and json_lines(stats.stdout)[0]["calls"] == 4, stats.stderr
        exported = run("traces", "export", db=db)
        assert exported.returncode == 0 and len(json_lines(exported.stdout)) == 4, exported.stderr
        checked = run("traces", "check", db=db)
        assert checked.returncode == 0 and "ok" in checked.stdout, checked.stderr
        pruned = run("traces", "prune", "--before", "2999-01-01", db=db)
        one_clear_line(pruned, 1, "read-only", "make the file and its folder writable")
        ran = run("run", "hi", "-m", "fake/a@tokens=2", "--json", db=db)
        assert ran.returncode == 1 and "read-only" in ran.stderr and "Traceback" not in ran.stderr
        assert json_lines(ran.stdout)[0]["status"] == "ok" and json_lines(ran.stdout)[0]["trace_id"] is None
    assert db.read_bytes() == before and sorted(p.name for p in folder.iterdir()) == ["t.db"]


# -- damaged pages, a damaged header --------------------------------------------------------------------

def damage(path: Path, table: str, which: Callable[[list[int]], int] | None = None) -> None:
    """Overwrite one page of ``table`` with garbage: its root page, or ``which`` of its leaf pages (SQLite's
    ``dbstat`` table lists them)."""
    conn = sqlite3.connect(path)
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    if which is None:
        page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    else:
        try:
            leaves = [r[0] for r in conn.execute("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' "
                                                 "ORDER BY pageno", (table,))]
        except sqlite3.OperationalError:
            pytest.skip("this SQLite has no dbstat table to find a leaf page with")
        page = which(leaves)
    conn.close()
    with path.open("r+b") as file:
        file.seek((page - 1) * size)
        file.write(b"\xee" * size)


def test_damaged_pages_are_one_line_then_check_and_recover(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    ids = store_of(db, 30)
    healthy = workbench("traces", "--db", str(db), "check")
    assert healthy.returncode == 0 and "ok" in healthy.stdout
    damage(db, "calls")
    for args in (["list"], ["stats"], ["export"], ["show", ids[0]], ["search", "apricot"],
                 ["prune", "--before", "1d"]):
        failed = workbench("traces", "--db", str(db), *args)
        one_clear_line(failed, 1, "is damaged", "workbench traces check", "workbench traces recover")
        assert "permission" not in failed.stderr
    checked = workbench("traces", "--db", str(db), "check")
    assert checked.returncode == 1 and "damaged" in checked.stdout and "Traceback" not in checked.stderr
    new = tmp_path / "new.db"
    recovered = workbench("traces", "--db", str(db), "recover", "--to", str(new))
    assert recovered.returncode == 0 and "recovered" in recovered.stdout, recovered.stderr
    assert workbench("traces", "--db", str(new), "check").returncode == 0
    assert workbench("traces", "--db", str(new), "list").returncode == 0
    again = workbench("traces", "--db", str(db), "recover", "--to", str(new))
    one_clear_line(again, 2, "exists already")


def test_a_damaged_header_is_one_line_without_a_permissions_hint(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    store_of(db, 3)
    with db.open("r+b") as file:
        file.write(b"not a database!!")
    for args in (["list"], ["stats"], ["prune", "--before", "1d"]):
        failed = workbench("traces", "--db", str(db), *args)
        one_clear_line(failed, 1, "not a trace store", "its header is damaged", "workbench traces recover")
        assert "permission" not in failed.stderr
    checked = workbench("traces", "--db", str(db), "check")
    assert checked.returncode == 1 and "header is damaged" in checked.stdout
    ran = workbench("run", "hi", "-m", "fake/a@tokens=2", "--json", env={"WORKBENCH_TRACES": str(db)})
    assert ran.returncode == 1 and "not a trace store" in ran.stderr and "Traceback" not in ran.stderr
    assert json_lines(ran.stdout)[0]["status"] == "ok"


def test_recover_keeps_every_row_that_can_be_read(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    ids = store_of(db, 400, "apricot " * 300)  # one payload a page or so, a dozen pages of calls
    whole = tmp_path / "whole.db"
    copied = workbench("traces", "--db", str(db), "recover", "--to", str(whole))
    assert copied.returncode == 0 and "recovered 400 calls (400 with their text)" in copied.stdout, copied.stdout
    assert_whole(whole)

    damage(db, "payloads", lambda leaves: leaves[len(leaves) // 2])
    damage(db, "calls", lambda leaves: leaves[len(leaves) // 2])
    before = db.read_bytes()
    new = tmp_path / "new.db"
    recovered = workbench("traces", "--db", str(db), "recover", "--to", str(new))
    assert recovered.returncode == 0, recovered.stderr
    assert db.read_bytes() == before  # the damaged store is left as it was
    assert oct(new.stat().st_mode & 0o777) == "0o600"
    assert_whole(new)
    store = TraceStore(new)
    calls = store.page(limit=1000)
    assert 300 < len(calls) < 400 and {c["id"] for c in calls} <= set(ids)
    assert len(store.search("apricot", limit=1000)) > 300
    assert sum(r["calls"] for r in store.stats("model")) == len(calls)
    store.close()
    more = store_of(new, 2, "cherry reply")  # the new store takes new calls, searchable
    assert sorted(r["id"] for r in TraceStore(new).search("cherry")) == sorted(more)
