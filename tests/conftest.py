"""Shared fixtures: a real fake-provider server on 127.0.0.1 and real HTTP clients."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx2
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
async def client() -> AsyncIterator[httpx2.AsyncClient]:
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


@pytest.fixture(autouse=True)
def _test_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A file keyring per test, for this process and any `workbench` it starts (real Secret Service: test_keys)."""
    import keyring

    from tests.keyring_backend import FileKeyring

    root = str(Path(__file__).resolve().parents[1])
    monkeypatch.setenv("WORKBENCH_TEST_KEYRING", str(tmp_path / "keyring.json"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "tests.keyring_backend.FileKeyring")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    previous = keyring.get_keyring()
    keyring.set_keyring(FileKeyring())
    yield
    keyring.set_keyring(previous)


def prompt_workspace(root: Path, **prompts: str) -> Path:
    """``root`` as a workspace (an empty workbench.toml) with ``prompts/NAME.yaml`` files of the given texts."""
    (root / "workbench.toml").write_text("")
    (root / "prompts").mkdir()
    for name, text in prompts.items():
        (root / "prompts" / f"{name}.yaml").write_text(text)
    return root


@pytest.fixture
def unreachable_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]  # bound but not listening: connections are refused
