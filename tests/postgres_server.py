"""A real, throwaway PostgreSQL server for the team-store tests: ``initdb`` in a temporary folder, ``pg_ctl``
on 127.0.0.1 at a free port, TLS on (a certificate made for the run), password authentication over TCP.

As root (CI) ``initdb`` refuses to run, so the server runs as the ``postgres`` user (``runuser``) in a folder
it owns. Where no server binary is found the tests are skipped with the reason, except in CI (``CI`` or
``WORKBENCH_REQUIRE_POSTGRES`` set), where that is a failure: `.ci/run` installs the ``postgresql`` package.
"""

from __future__ import annotations

import contextlib
import datetime
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ADMIN = "postgres"
ADMIN_PASSWORD = "admin-secret-Zq7"


def server_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: on PATH, else Debian's /usr/lib/postgresql/N/bin (newest)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(candidates[-1]).parent if candidates else None


def required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("WORKBENCH_REQUIRE_POSTGRES"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (the server's TLS)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "workbench test postgres")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    crt, pem = folder / "server.crt", folder / "server.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption()))
    pem.chmod(0o600)
    return crt, pem


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    root: Path

    def url(self, user: str = ADMIN, database: str = "postgres", password: str | None = None,
            sslmode: str | None = None) -> str:
        """A ``postgresql://`` URL (with the password only when given; TLS as the client defaults unless
        ``sslmode``)."""
        auth = f"{user}:{password}@" if password else f"{user}@"
        query = f"?sslmode={sslmode}" if sslmode else ""
        return f"postgresql://{auth}{self.host}:{self.port}/{database}{query}"

    def admin(self, database: str = "postgres") -> str:
        """The superuser's connection string (with its password: for the tests' own connections only)."""
        return self.url(ADMIN, database, ADMIN_PASSWORD, "require")

    def create_database(self, name: str) -> str:
        """A new empty database; its name."""
        import psycopg

        with psycopg.connect(self.admin(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name


def _run(argv: list[str], owner: str | None) -> None:
    """Run a server tool, as ``owner`` when given (``runuser``: root may not run initdb or the server)."""
    subprocess.run(["runuser", "-u", owner, "--", *argv] if owner else argv, check=True, capture_output=True,
                   text=True)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """Start a server, yield it, stop it and remove its folder."""
    bin_dir = server_bin()
    if bin_dir is None:
        reason = "no PostgreSQL server binaries (initdb) on this machine"
        if required():
            pytest.fail(f"{reason}: CI needs them (.ci/run installs the postgresql package)")
        pytest.skip(f"{reason}; install the postgresql package to run the team-store tests")
    owner = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="workbench-pg-"))
    data = root / "data"
    pwfile = root / "pw"
    pwfile.write_text(ADMIN_PASSWORD + "\n")
    crt, key = _certificate(root)
    if owner:
        record = pwd.getpwnam(owner)
        for path in (root, pwfile, crt, key):
            os.chown(path, record.pw_uid, record.pw_gid)
    port = _free_port()
    try:
        _run([str(bin_dir / "initdb"), "-D", str(data), "-U", ADMIN, "--pwfile", str(pwfile), "--auth-local=trust",
              "--auth-host=scram-sha-256", "-E", "UTF8", "--no-instructions", "--no-sync"], owner)
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} -c fsync=off "
                   f"-c shared_buffers=16MB -c max_connections=40 -c ssl=on -c ssl_cert_file={crt} "
                   f"-c ssl_key_file={key}")
        _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-t", "60", "-o", options,
              "start"], owner)
    except subprocess.CalledProcessError as exc:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc.stderr or exc.stdout}{log}")
    try:
        yield PostgresServer("127.0.0.1", port, root)
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], owner)
        shutil.rmtree(root, ignore_errors=True)
