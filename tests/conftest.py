"""Shared fixtures: a real fake-provider server on 127.0.0.1 and real HTTP clients."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx2
import pytest

from tests.postgres_server import PostgresServer, postgres_server
from workbench.core.httpclient import new_client
from workbench.fakeserver import FakeServer
from workbench.fakeserver.process import FakeServerProcess, fake_server_process


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (the default, pyproject.toml): one worker more than the CPUs this process may use. Many tests
    wait (on a `workbench` child, a paced stream, a timeout), and the spare worker keeps the cores busy meanwhile."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cpus + 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that declare a long timeout (the quickstart's fresh install) start first, so that under xdist they
    run beside the rest of the suite instead of alone at its end."""
    def long(item: pytest.Item) -> bool:
        marker = item.get_closest_marker("timeout")
        return bool(marker and marker.args and marker.args[0] > 60)

    items.sort(key=lambda item: not long(item))  # stable: otherwise the collection order


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
    """Every test (and every `workbench` it starts) writes traces to its own temporary store, and the
    network process's log beside it."""
    monkeypatch.setenv("WORKBENCH_TRACES", str(tmp_path / "traces.db"))
    monkeypatch.setenv("WORKBENCH_LOG_DIR", str(tmp_path / "logs"))


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


import dataclasses  # noqa: E402  (the TLS fixtures below)


@dataclasses.dataclass(frozen=True)
class Certs:
    """PEM files from a CA made for the test run (``cryptography``): trust ``ca`` to accept the others."""

    ca: Path
    server: Path
    """Certificate and key in one file, for 127.0.0.1 and localhost (server auth)."""
    wrong_host: Path
    """Certificate and key for ``elsewhere.test`` only."""
    client_cert: Path
    client_key: Path
    client_both: Path
    """The client's certificate and key in one file (client auth, CN ``workbench test client``)."""


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def cert(name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None = None,
             issuer_key: ec.EllipticCurvePrivateKey | None = None, usage: x509.ObjectIdentifier | None = None,
             names: tuple[x509.GeneralName, ...] = ()) -> x509.Certificate:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        is_ca = usage is None
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(issuer.subject if issuer else subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=is_ca,
                                         crl_sign=is_ca, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        if issuer_key is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        if usage is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
        return builder.sign(issuer_key or key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert("workbench test CA", ca_key)

    def issue(name: str, usage: x509.ObjectIdentifier, *names: x509.GeneralName) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        return (cert(name, key, ca, ca_key, usage, names).public_bytes(serialization.Encoding.PEM),
                key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))

    root = tmp_path_factory.mktemp("tls")

    def write(name: str, *data: bytes) -> Path:
        (root / name).write_bytes(b"".join(data))
        return root / name

    server = issue("localhost", ExtendedKeyUsageOID.SERVER_AUTH, x509.DNSName("localhost"),
                   x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    wrong = issue("elsewhere.test", ExtendedKeyUsageOID.SERVER_AUTH, x509.DNSName("elsewhere.test"))
    client = issue("workbench test client", ExtendedKeyUsageOID.CLIENT_AUTH)
    return Certs(ca=write("ca.pem", ca.public_bytes(serialization.Encoding.PEM)), server=write("server.pem", *server),
                 wrong_host=write("wrong-host.pem", *wrong), client_cert=write("client.pem", client[0]),
                 client_key=write("client.key", client[1]), client_both=write("client-both.pem", *client))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the run (one per xdist worker), on 127.0.0.1 with TLS: see
    :mod:`tests.postgres_server` (skipped without the server binaries, except in CI where that fails)."""
    with postgres_server() as server:
        yield server
