"""Shared fixtures: a real fake-provider server on 127.0.0.1 and real HTTP clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from workbench.core.httpclient import new_client
from workbench.fakeserver import FakeServer
from workbench.fakeserver.process import FakeServerProcess, fake_server_process


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeServerProcess]:
    """One fake server for the whole run, in its own process (as a remote provider would be)."""
    with fake_server_process() as server:
        yield server


@pytest.fixture
def fake_env(fake_server: FakeServerProcess) -> dict[str, str]:
    """An environment that points every ``fake*`` provider at the test server and holds no real keys."""
    return {"WORKBENCH_FAKE_URL": fake_server.base_url}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with new_client() as c:
        yield c


@pytest.fixture
async def server() -> AsyncIterator[FakeServer]:
    """A fake server on the test's own event loop, for tests of the server itself."""
    srv = FakeServer(port=0)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture(autouse=True)
def _isolated_trace_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test (and every `workbench` it starts) writes traces to its own temporary store."""
    monkeypatch.setenv("WORKBENCH_TRACES", str(tmp_path / "traces.db"))
