"""``workbench.services``: what both faces use around the core, once."""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from workbench.core.errors import WorkbenchError
from workbench.services import FAKE_URL_ENV, Services, needs_fake_server, providers_of


def refused(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=2).close()
    except OSError:
        return True
    return False


def test_target_env_starts_the_fake_server_once_for_two_calls_and_close_stops_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != FAKE_URL_ENV}
    services = Services(env, config_path=None)
    try:
        first = services.target_env(["fake/a", "openai/gpt-4.1-mini"])
        second = services.target_env([" FAKE-anthropic/b "])
        assert first[FAKE_URL_ENV] == second[FAKE_URL_ENV]
        assert list(services.servers()) == ["fake"]
        url = first[FAKE_URL_ENV]
        assert not refused(url)
    finally:
        services.close()
    assert refused(url)
    with pytest.raises(WorkbenchError):
        services.target_env(["fake/c"])
    services.close()  # idempotent


def test_a_set_url_starts_no_server() -> None:
    with Services({FAKE_URL_ENV: "http://127.0.0.1:9"}) as services:
        assert services.target_env(["fake/a"])[FAKE_URL_ENV] == "http://127.0.0.1:9"
        assert services.servers() == {}


def test_targets_providers() -> None:
    assert providers_of([" OpenAI/x", "fake/y@ttft=1", "openai/z"]) == ["fake", "openai"]
    assert needs_fake_server(["openai/x", " Fake-gemini/y"]) and not needs_fake_server(["openai/x"])


def test_the_writer_opened_soon_is_the_writer_and_close_commits(tmp_path: Path) -> None:
    from workbench.core.call_record import CallRecord
    from workbench.core.request import ChatRequest
    from workbench.core.traces.store import TraceStore

    path = tmp_path / "traces.db"
    with Services({"WORKBENCH_TRACES": str(path)}) as services:
        services.open_writer_soon()
        writer = services.writer()
        assert services.writer() is writer
        record = CallRecord("fake/x", ChatRequest.from_prompt("hi"), done=True)
        call_id = writer.write(record)
    store = TraceStore(path)
    try:
        assert [row["id"] for row in store.page(limit=10)] == [call_id]
    finally:
        store.close()


def test_a_writer_that_cannot_open_raises_in_the_callers_thread(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with Services({"WORKBENCH_TRACES": str(blocker / "traces.db")}) as services:
        services.open_writer_soon()
        with pytest.raises(WorkbenchError):
            services.writer()


def test_a_trace_log_that_fails_to_open_unexpectedly_is_said_never_silent(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.core.call_record import CallRecord
    from workbench.core.request import ChatRequest
    from workbench.core.traces.context import NO_CONTEXT
    from workbench.services import CallTracer

    services = Services({"WORKBENCH_TRACES": str(tmp_path / "t.db")}, config_path=None)

    def broken() -> None:
        raise RuntimeError("import lock deadlock")

    monkeypatch.setattr(services, "writer", broken)
    said: list[WorkbenchError] = []
    tracer = CallTracer(services, NO_CONTEXT, 2, said.append)
    request = ChatRequest.from_prompt("hi")
    tracer(0, CallRecord("fake/a", request))
    tracer(1, CallRecord("fake/b", request))
    assert tracer.ids == [None, None]
    assert [str(e) for e in said] == ["the trace log could not be opened: RuntimeError('import lock deadlock')"]
    assert said[0].hint == "the calls of this race are not traced"


def test_an_early_open_in_the_background_that_failed_is_tried_again_by_the_caller(tmp_path: Path) -> None:
    services = Services({"WORKBENCH_TRACES": str(tmp_path / "missing" / "t.db")}, config_path=None)
    (tmp_path / "missing").write_text("a file where the folder should be")  # the early open fails
    services.open_writer_soon()
    assert services._opening is not None
    services._opening.join()
    (tmp_path / "missing").unlink()  # then the folder can be made: the caller's open works
    writer = services.writer()
    assert writer.path == tmp_path / "missing" / "t.db"
    services.close()


def test_the_early_open_is_published_only_once_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another thread (a race's settling thread) joins the opening thread as soon as it sees it: joining a
    thread not yet started raises ``RuntimeError`` and the calls would go untraced."""
    services = Services({"WORKBENCH_TRACES": str(tmp_path / "t.db")}, config_path=None)
    seen_before_start: list[object] = []
    start = threading.Thread.start

    def watched(thread: threading.Thread) -> None:
        if thread.name == "workbench-open-traces":
            seen_before_start.append(services._opening)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", watched)
    services.open_writer_soon()
    assert seen_before_start == [None]
    assert services.writer().path == tmp_path / "t.db"
    services.close()
