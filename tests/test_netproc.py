"""The network process: races run in a child interpreter and their records are mirrored here; a child
that dies or a reader that fails ends the open races at once with the reason, and the next race starts a
fresh child."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.timing_slack import until
from workbench.core import netlog, netmessages, netproc
from workbench.core.errors import ConfigError, ProviderHTTPError, ProviderTimeoutError, WorkbenchError
from workbench.core.events import FinishEvent, FinishReason
from workbench.core.netproc import NetworkProcess, RemoteRace, wait_bound
from workbench.core.policy import PolicySet
from workbench.core.pricing import PriceBook
from workbench.core.request import ChatRequest

PROMPT = ChatRequest.from_prompt("Mirror me.")
KILL_DEADLINE_S = 2.0


@pytest.fixture(autouse=True)
def _log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every network process a test starts (here or in a `workbench` it runs) logs under tmp_path."""
    monkeypatch.setenv(netlog.LOG_DIR_ENV, str(tmp_path / "logs"))
    return tmp_path / "logs"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetworkProcess]:
    with NetworkProcess(log_path=tmp_path_factory.mktemp("netlog") / netlog.LOG_NAME) as process:
        yield process


def streaming(fake_env: dict[str, str], marker: str) -> bool:
    """Whether the fake server has sent at least one token of the request whose model holds ``marker``."""
    with urllib.request.urlopen(f"{fake_env['WORKBENCH_FAKE_URL']}/_fake/log", timeout=5) as response:
        entries = json.load(response)
    return any(marker in (e.get("model") or "") and e["tokens_sent"] >= 1 for e in entries)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_records_arrive_with_their_types_intact(net: NetworkProcess, fake_env: dict[str, str]) -> None:
    race = net.race(PROMPT, ["fake/m@tokens=7", "fake-ollama/m@tokens=5,usage=0",
                             "fake-anthropic/m@status=529,id=netproc-529", "openai/gpt-4o"], fake_env,
                    PolicySet().with_defaults(retry={"max_retries": 0}))
    assert race.wait(timeout=30)
    ok, estimated, overloaded, no_key = race.records
    assert ok.status == "ok" and len(ok.text.split()) == 7 and ok.usage is not None and ok.usage.output_tokens == 7
    assert ok.timing.ttft_ms is not None and ok.timing.sent_ns is not None and ok.finish is FinishReason.STOP
    assert estimated.usage_estimated and estimated.usage is not None and estimated.usage.output_tokens >= 5
    assert isinstance(overloaded.error, ProviderHTTPError) and overloaded.error.status == 529
    assert overloaded.error.kind == "overloaded_error" and overloaded.error.hint
    assert isinstance(no_key.error, ConfigError)
    assert race.failure is None


def test_records_fill_in_while_the_stream_runs(net: NetworkProcess, fake_env: dict[str, str]) -> None:
    race = net.race(PROMPT, ["fake/slow@tokens=30,tps=40"], fake_env)
    seen_partial = False
    deadline = time.monotonic() + 30
    while not race.done and time.monotonic() < deadline:
        words = len(race.records[0].text.split())
        seen_partial |= 0 < words < 30
        time.sleep(0.01)
    assert seen_partial
    assert len(race.records[0].text.split()) == 30 and race.records[0].done


def test_cancel_stops_streams_and_keeps_partial_output(net: NetworkProcess, fake_env: dict[str, str]) -> None:
    race = net.race(PROMPT, ["fake-gemini/stuck@hang=stream", "fake/done@tokens=2"], fake_env)
    until(lambda: race.records[0].text and race.records[1].done, "the stuck stream's first token, the other done")
    race.cancel()
    assert race.wait(timeout=10)
    stuck, done = race.records
    assert stuck.text and stuck.error is not None and "cancelled" in str(stuck.error) and stuck.done
    assert done.status == "ok"


def test_a_dead_network_process_fails_running_calls_instead_of_hanging(fake_env: dict[str, str]) -> None:
    with NetworkProcess() as process:
        race = process.race(PROMPT, ["fake/stuck@hang=headers"], fake_env)
        process._child.kill()
        assert race.wait(timeout=10)
        assert race.records[0].error is not None and "network process stopped" in str(race.records[0].error)


def test_killing_the_child_mid_race_fails_what_was_running_and_the_next_race_respawns(
        fake_env: dict[str, str], _log_dir: Path) -> None:
    marker = f"kill-{uuid.uuid4().hex[:8]}"
    respawns: list[str] = []
    with NetworkProcess(on_respawn=respawns.append) as process:
        race = process.race(PROMPT, ["fake/quick@tokens=3", f"fake/{marker}@hang=stream"], fake_env)
        until(lambda: race.records[0].done and race.records[1].text, "one call done, the other streaming")
        first_pid = process.pid
        started = time.monotonic()
        os.kill(first_pid, signal.SIGKILL)
        assert race.wait(timeout=KILL_DEADLINE_S), "the race did not end when its network process was killed"
        assert time.monotonic() - started < KILL_DEADLINE_S
        quick, stuck = race.records
        assert quick.status == "ok" and len(quick.text.split()) == 3  # finished before the kill: kept as it was
        assert stuck.done and stuck.text  # the partial output stays
        reason = str(stuck.error)
        assert "the network process stopped (signal 9, SIGKILL)" in reason
        assert str(_log_dir / netlog.LOG_NAME) in reason and "\n" not in reason
        assert race.failure is not None and race.failure in reason
        assert not respawns  # only the next race starts a new child

        again = process.race(PROMPT, ["fake/again@tokens=4"], fake_env)
        assert again.wait(timeout=30)
        assert again.records[0].status == "ok" and len(again.records[0].text.split()) == 4
        assert process.pid != first_pid and respawns == [race.failure]
        third = process.race(PROMPT, ["fake/third@tokens=2"], fake_env)
        assert third.wait(timeout=30) and third.records[0].status == "ok"
        assert len(respawns) == 1  # said once, for the one respawn
    assert "signal 9, SIGKILL" in (_log_dir / netlog.LOG_NAME).read_text()


def test_an_exception_applying_a_message_fails_the_race_instead_of_hanging(
        fake_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, _log_dir: Path) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("boom")

    with NetworkProcess() as process:
        monkeypatch.setattr(netproc, "apply_event", broken)
        race = process.race(PROMPT, ["fake/m@tokens=5", "fake/n@tokens=5"], fake_env)
        assert race.wait(timeout=10), "the reader died silently"
        for record in race.records:
            assert record.done and record.error is not None
            assert "could not be applied (RuntimeError: boom)" in str(record.error) and "\n" not in str(record.error)
        pid = process.pid
        until(lambda: not alive(pid), "the broken child killed")
        log = (_log_dir / netlog.LOG_NAME).read_text()
        assert "Traceback" in log and "RuntimeError: boom" in log

        monkeypatch.undo()
        again = process.race(PROMPT, ["fake/m@tokens=3"], fake_env)
        assert again.wait(timeout=30) and again.records[0].status == "ok"


def test_the_childs_stderr_goes_to_the_log_file(_log_dir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    log = _log_dir / netlog.LOG_NAME
    with NetworkProcess() as process:
        pid = process.pid
        until(lambda: log.exists() and f"network process pid {pid}: ready" in log.read_text(), "the child's hello")
        os.kill(pid, signal.SIGUSR1)  # faulthandler writes every thread's stack to the child's stderr
        until(lambda: "most recent call first" in log.read_text(), "the child's stack dump")
    assert "netchild" in log.read_text()
    assert "most recent call first" not in capfd.readouterr().err  # not the terminal's


def test_an_abandoned_race_is_finished_here_and_its_late_messages_ignored(fake_env: dict[str, str]) -> None:
    with NetworkProcess() as process:
        race = process.race(PROMPT, ["fake/stuck@hang=stream"], fake_env)
        until(lambda: race.records[0].text, "the first token")
        race.abandon("gave up")
        assert race.done and race.failure == "gave up" and "gave up" in str(race.records[0].error)
        text = race.records[0].text
        ok = process.race(PROMPT, ["fake/m@tokens=2"], fake_env)
        assert ok.wait(timeout=30) and ok.records[0].status == "ok"
        assert race.records[0].text == text


def test_the_wait_bound_follows_the_policies() -> None:
    policies = PolicySet().with_defaults(timeouts={"total": 30, "connect": 5}, retry={"max_retries": 0})
    assert wait_bound(policies, ["fake/a"]) == 35 + netproc.SETTLE_SLACK_S
    retried = policies.with_defaults(retry={"max_retries": 2, "cap_s": 1, "rate_limit_cap_s": 4,
                                            "retry_after_cap_s": 3})
    assert wait_bound(retried, ["fake/a"]) == 3 * 35 + 2 * 4 + netproc.SETTLE_SLACK_S
    fallback = policies.with_defaults(fallbacks=("fake/b",))
    assert wait_bound(fallback, ["fake/a"]) == 2 * 35 + netproc.SETTLE_SLACK_S
    slow = PolicySet(defaults=policies.defaults, overrides={"fake/slow": {"timeouts": {"total": 100}}})
    assert wait_bound(slow, ["fake/a", "fake/slow"]) == 105 + netproc.SETTLE_SLACK_S


def test_errors_survive_pickling_with_their_attributes() -> None:
    for error in (ProviderHTTPError("openai/x", 429, "rate_limit_exceeded", "slow down", retry_after_s=2.0),
                  ProviderTimeoutError("anthropic/y", "read"), ConfigError("bad", "fix it")):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error) and copy.__dict__ == error.__dict__
        assert isinstance(copy, WorkbenchError)


def test_messages_are_typed_frames() -> None:
    events = netmessages.Events(3, ((0, FinishEvent(FinishReason.STOP, "stop", 1)),))
    copy = pickle.loads(netmessages.encode_frame(events)[4:])
    assert copy == events and isinstance(copy.events[0][1], FinishEvent)
    with pytest.raises(AttributeError):
        events.race_id = 4  # type: ignore[misc]


def children_of(pid: int) -> list[int]:
    """Process ids whose parent is ``pid``, from /proc (no psutil)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def network_child_of(pid: int) -> int | None:
    for child in children_of(pid):
        try:
            if b"workbench.core.netchild" in Path(f"/proc/{child}/cmdline").read_bytes():
                return child
        except OSError:
            continue
    return None


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the child through /proc")
def test_workbench_run_fails_fast_when_its_network_process_is_killed(fake_env: dict[str, str],
                                                                     _log_dir: Path) -> None:
    marker = f"cli-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    run = subprocess.Popen([sys.executable, "-m", "workbench", "run", "hi", "-m", f"fake/{marker}@hang=stream"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**env, **fake_env})
    try:
        child: list[int] = []
        until(lambda: child.append(network_child_of(run.pid) or 0) or child[-1], "the network child", 30)
        until(lambda: streaming(fake_env, marker) or run.poll() is not None, "the stream started", 30)
        assert run.poll() is None, run.stderr.read() if run.stderr else ""
        started = time.monotonic()
        os.kill(child[-1], signal.SIGKILL)
        _, err = run.communicate(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode != 0
    assert elapsed < KILL_DEADLINE_S, f"took {elapsed:.2f} s"
    lines = [line for line in err.splitlines() if "network process stopped" in line]
    assert lines == [f"workbench: the network process stopped (signal 9, SIGKILL); see {_log_dir / netlog.LOG_NAME}"]
    assert "Traceback" not in err


async def test_the_tui_says_once_that_it_started_a_new_network_process(fake_env: dict[str, str],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.ui.app import WorkbenchApp

    app = WorkbenchApp(env=fake_env, targets=["fake/demo@tokens=3"])
    said: list[str] = []
    async with app.run_test(size=(140, 40)) as pilot:
        original = app.notify

        def notify(message: str, **kwargs: object) -> None:
            said.append(message)
            original(message, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(app, "notify", notify)

        async def until_async(condition: Callable[[], object], what: str) -> None:
            deadline = time.monotonic() + 20
            while not condition():
                assert time.monotonic() < deadline, f"not within 20 s: {what}"
                await pilot.pause(0.02)

        app.start_race(PROMPT, [f"fake/tui-{uuid.uuid4().hex[:6]}@hang=stream"])
        await until_async(lambda: app.race is not None and app.race.records[0].text, "the stream")
        first: RemoteRace = app.race  # type: ignore[assignment]
        os.kill(app.network().pid, signal.SIGKILL)
        await until_async(lambda: first.done, "the race failed")
        assert "network process stopped" in str(first.records[0].error)
        assert not [m for m in said if "new network process" in m]
        app.start_race(PROMPT, ["fake/demo@tokens=3"])
        await until_async(lambda: app.race is not first and app.race is not None and app.race.done, "the next race")
        assert app.race is not None and app.race.records[0].status == "ok"
        await until_async(lambda: [m for m in said if "new network process" in m], "the notification")
        app.start_race(PROMPT, ["fake/demo@tokens=2"])
        await until_async(lambda: app.race is not None and app.race.records[0].target == "fake/demo@tokens=2"
                          and app.race.done, "a third race")
        notes = [m for m in said if "new network process" in m]
        assert len(notes) == 1 and "signal 9, SIGKILL" in notes[0]


async def test_the_child_loop_never_blocks_on_a_full_pipe(fake_env: dict[str, str]) -> None:
    """The child's loop in this process, its stdout a pipe nobody reads until the race is over: the loop
    keeps turning, the race completes, and what piled up meanwhile went out coalesced, in order."""
    import asyncio

    from workbench.core.call_record import CallRecord, apply_event
    from workbench.core.netchild import ChildLoop

    commands_r, commands_w = os.pipe()
    out_r, out_w = os.pipe()
    tokens = 5000
    request = PROMPT.with_max_tokens(tokens)
    child = ChildLoop(os.fdopen(commands_r, "rb", buffering=0), os.fdopen(out_w, "wb", buffering=0))
    running = asyncio.create_task(child.run())
    os.write(commands_w, netmessages.encode_frame(netmessages.StartRace(
        1, request, (f"fake/big@tokens={tokens},tps=5000",), fake_env, PolicySet(), PriceBook(), None)))
    started = paused = False
    longest_gap, last = 0.0, time.monotonic()
    deadline = last + 30
    while time.monotonic() < deadline and not running.done():  # until the race is over; nobody reads its frames
        await asyncio.sleep(0.002)
        now = time.monotonic()
        longest_gap, last = max(longest_gap, now - last), now
        pipe = getattr(child, "pipe", None)  # set once the child loop has connected its pipes
        paused |= pipe is not None and not pipe.writable.is_set()
        started |= 1 in child.tasks
        if started and not child.tasks:
            break
    assert started and not child.tasks, "the race did not finish while the parent was not reading"
    assert paused, "the pipe never filled: the test proves nothing"
    assert longest_gap < 0.5, f"the loop was blocked for {longest_gap:.3f} s"

    frames: list[object] = []
    reader = os.fdopen(out_r, "rb")

    def read_all() -> None:
        while not frames or not isinstance(frames[-1], netmessages.Done):
            frames.append(netmessages.read_frame(reader))

    await asyncio.wait_for(asyncio.to_thread(read_all), 30)
    record = CallRecord("fake/big", request)
    for frame in frames:
        if isinstance(frame, netmessages.Events):
            for _, event in frame.events:
                apply_event(record, event)
    finals = [f for f in frames if isinstance(f, netmessages.Final)]
    assert finals and finals[-1].record.status == "ok"
    assert record.text == finals[-1].record.text and len(record.text.split()) == tokens
    events = sum(isinstance(f, netmessages.Events) for f in frames)
    chunks = len(finals[-1].record.timing.chunk_ns)
    assert events < chunks / 2, f"{events} event frames for {chunks} chunks: not coalesced while paused"
    os.write(commands_w, netmessages.encode_frame(netmessages.Stop()))
    await asyncio.wait_for(running, 10)
    os.close(commands_w)
    reader.close()


def test_each_call_is_settled_once_from_its_final_state_not_an_attempts(fake_env: dict[str, str]) -> None:
    """A retried call sends the parent its record after each attempt: only the final one is settled (usage
    estimated, priced) and handed to ``on_settled``, once."""
    settled: list[tuple[int, bool, bool]] = []
    targets = ["fake-ollama/x@status=500,fail=1,usage=0,id=settle-once", "fake/y@tokens=3"]
    with NetworkProcess() as process:
        race = process.race(PROMPT, targets, fake_env,
                            on_settled=lambda i, r: settled.append((i, r.done, r.usage is not None)))
        assert race.wait(timeout=60)
    retried = race.records[0]
    assert [a.kind for a in retried.attempts] == ["first", "retry"] and retried.status == "ok"
    assert retried.settled and retried.usage_estimated and retried.usage is not None
    assert sorted(settled) == [(0, True, True), (1, True, True)]
