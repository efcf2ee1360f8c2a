"""``workbench traces tail``: a running tail prints each call as another process writes it, and Ctrl-C ends it
with exit 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_cli import json_lines, workbench
from workbench.core.traces.filters import Filters
from workbench.core.traces.follow import Follower, follow
from workbench.core.traces.store import TraceStore


def run_traced(*args: str) -> list[dict[str, object]]:
    ran = workbench("run", "Tell me about plums", *args, "--json")
    assert ran.returncode in (0, 1), ran.stderr
    return json_lines(ran.stdout)


class Tail:
    """``workbench traces tail ARGS`` in the background, read once it said it follows the log."""

    def __init__(self, *args: str) -> None:
        base = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        self.process = subprocess.Popen([sys.executable, "-m", "workbench", "traces", "tail", *args], env=base,
                                        text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.process.stderr is not None and self.process.stdout is not None
        said = self.process.stderr.readline()
        assert said.startswith("workbench: following "), said + self.process.stderr.read()

    def line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, self.process.stderr.read() if self.process.stderr else ""
        return line

    def interrupt(self) -> tuple[int, str, str]:
        """Ctrl-C: the exit code and what was left to read."""
        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=30)
        return self.process.returncode, out, err


@pytest.fixture
def tails() -> Iterator[list[Tail]]:
    started: list[Tail] = []
    yield started
    for tail in started:
        if tail.process.poll() is None:
            tail.process.kill()
            tail.process.wait(timeout=10)


def test_tail_json_prints_each_matching_call_as_another_process_writes_it_and_ctrl_c_exits_0(
        tails: list[Tail]) -> None:
    run_traced("-m", "fake/before@tokens=3")  # written before the tail started: not printed
    tail = Tail("--json", "--status", "error")
    tails.append(tail)
    ran = run_traced("-m", "fake/ok@tokens=3", "-m", "fake/bad@status=500,fail=9")
    failed = next(r for r in ran if r["status"] == "error")
    row = json.loads(tail.line())
    assert (row["id"], row["target"], row["status"], row["error_class"]) == (
        failed["trace_id"], "fake/bad@status=500,fail=9", "error", "http_500")
    assert not any(k.startswith("_") for k in row) and row["time"].endswith("+00:00")
    more = run_traced("-m", "fake/bad2@status=429,fail=9")
    assert json.loads(tail.line())["id"] == more[0]["trace_id"]
    code, rest, err = tail.interrupt()
    assert code == 0 and rest == "" and "Traceback" not in err


def test_tail_prints_the_list_tables_columns_one_line_per_call_and_last_n_first(tails: list[Tail]) -> None:
    first = run_traced("-m", "fake/one@tokens=3")
    second = run_traced("-m", "fake/two@tokens=4")
    tail = Tail("--last", "2")
    tails.append(tail)
    assert tail.line().split() == ["id", "time", "target", "status", "TTFT", "latency", "in/out", "USD"]
    shown = [tail.line().split() for _ in range(2)]
    assert [(cells[0], cells[3], cells[4]) for cells in shown] == [
        (first[0]["trace_id"], "fake/one@tokens=3", "ok"), (second[0]["trace_id"], "fake/two@tokens=4", "ok")]
    third = run_traced("-m", "fake/three@tokens=5")
    cells = tail.line().split()
    assert cells[0] == third[0]["trace_id"] and cells[3] == "fake/three@tokens=5" and cells[-2].endswith("/5")
    code, rest, _ = tail.interrupt()
    assert code == 0 and rest == ""


def test_a_follower_reads_calls_in_the_order_they_were_written_and_each_once(tmp_path: Path) -> None:
    run_traced("-m", "fake/a@tokens=2")
    store = TraceStore(Path(os.environ["WORKBENCH_TRACES"]))
    follower = Follower(store, Filters(model="fake/c@tokens=2"))
    assert follower.poll() == []
    run_traced("-m", "fake/b@tokens=2", "-m", "fake/c@tokens=2")
    rows = follower.poll()
    assert [r["target"] for r in rows] == ["fake/c@tokens=2"] and follower.poll() == []
    batches = follow(store, last=5, wait=lambda s: pytest.fail("nothing to wait for"))
    assert sorted(r["target"] for r in next(batches)) == ["fake/a@tokens=2", "fake/b@tokens=2", "fake/c@tokens=2"]
    store.close()


def test_tail_refuses_a_bad_last_in_one_line() -> None:
    result = workbench("traces", "tail", "--last", "x")
    assert result.returncode == 2 and "Traceback" not in result.stderr and "--last" in result.stderr
