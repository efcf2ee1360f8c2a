"""Where the team store is and how to log in: ``WORKBENCH_TEAM_URL``, else ``[team] url`` in the configuration.

    [team]
    url = "postgresql://alice@db.example.com:5432/workbench"

The password never sits in a configuration file (a URL with one there is refused): it comes from the keyring entry
``team`` (``workbench keys set team``), else libpq's own ``PGPASSFILE`` (``~/.pgpass``) or ``PGPASSWORD``. A URL in
``WORKBENCH_TEAM_URL`` may carry one (a CI secret). TLS is required (``sslmode=require``) unless the URL asks for
more (``verify-ca``, ``verify-full``), or, for a server on this machine (loopback, a Unix socket), less.

Pure Python: the configuration checks a ``[team] url`` with :func:`url_problem` without importing the driver.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from workbench.core.errors import ConfigError

ENV_VAR = "WORKBENCH_TEAM_URL"
KEYRING_ENTRY = "team"
"""The keyring entry (service ``workbench``) holding the team store's password: ``workbench keys set team``."""
SCHEMES = ("postgresql", "postgres")
_LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")
_WEAK_TLS = ("disable", "allow", "prefer")
_SSLMODES = (*_WEAK_TLS, "require", "verify-ca", "verify-full")
_CONFIG_HINT = 'write it as postgresql://USER@HOST:PORT/DATABASE (see "Team store" in the README)'


def url_problem(url: str, *, in_file: bool) -> str | None:
    """What is wrong with a team URL, in a few words (never quoting its password), or ``None``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"invalid URL ({str(exc).split(':')[0]})"
    if parts.scheme not in SCHEMES:
        return "not a postgresql:// URL"
    if in_file and parts.password is not None:
        return ("a password in the configuration file (store it in the keyring: workbench keys set team, or in "
                "PGPASSFILE)")
    if port is not None and not 0 < port < 65536:
        return f"port {port} out of range"
    query = parse_qs(parts.query)
    sslmode = query.get("sslmode", [None])[-1]
    if sslmode is not None and sslmode not in _SSLMODES:
        return f"unknown sslmode {sslmode}"
    host = parts.hostname or query.get("host", [""])[-1]  # ?host=/run/postgresql: a Unix socket
    if sslmode in _WEAK_TLS and not _local(host):
        return f"sslmode={sslmode} to {host or 'a remote server'}: the team store needs TLS off this machine"
    return None


def _local(host: str) -> bool:
    return host in _LOOPBACK or host.startswith("/") or host == ""


@dataclass(frozen=True)
class TeamTarget:
    """A team store to connect to: libpq's keywords (the password among them only when known here)."""

    params: dict[str, str] = field(repr=False)
    source: str
    """Where the URL came from (``WORKBENCH_TEAM_URL``, or ``FILE [team] url``), for messages."""

    @property
    def password(self) -> str | None:
        return self.params.get("password")

    @property
    def shown(self) -> str:
        """The server as messages name it: ``user@host:port/database``, never the password."""
        p = self.params
        return f"{p.get('user', '')}@{p.get('host', 'localhost')}:{p.get('port', '5432')}/{p.get('dbname', '')}"

    @property
    def identity(self) -> str:
        """What names the server in the local sync marks (pushing to another server starts again)."""
        p = self.params
        return f"{p.get('host', 'localhost')}:{p.get('port', '5432')}/{p.get('dbname', p.get('user', ''))}"


def parse_target(url: str, source: str, *, in_file: bool, keyring_password: str | None = None) -> TeamTarget:
    """A :class:`TeamTarget` from a URL; a :class:`ConfigError` (naming ``source``, never the password) when the URL
    is not one."""
    problem = url_problem(url, in_file=in_file)
    if problem is not None:
        raise ConfigError(f"{source}: team store URL: {problem}", _CONFIG_HINT)
    parts = urlsplit(url)
    params: dict[str, str] = {}
    if parts.hostname:
        params["host"] = parts.hostname
    if parts.port:
        params["port"] = str(parts.port)
    if parts.username:
        params["user"] = unquote(parts.username)
    if parts.password:
        params["password"] = unquote(parts.password)
    database = unquote(parts.path.lstrip("/"))
    if database:
        params["dbname"] = database
    for key, values in parse_qs(parts.query).items():
        params[key] = values[-1]
    params.setdefault("sslmode", "require")
    if "password" not in params and keyring_password:
        params["password"] = keyring_password
    params.setdefault("application_name", "workbench")
    return TeamTarget(params, source)


def _stored_password() -> str | None:
    """The keyring's ``team`` entry, if a keyring is usable and holds one."""
    from workbench.core.keys import KeyringUnavailable, stored_key

    try:
        return stored_key(KEYRING_ENTRY)
    except KeyringUnavailable:
        return None


def resolve_target(env: Mapping[str, str], url: str | None, url_source: str) -> TeamTarget:
    """The team store: ``WORKBENCH_TEAM_URL`` from ``env``, else ``url`` (``[team] url``, from ``url_source``).
    A :class:`ConfigError` when neither is set."""
    if env.get(ENV_VAR):
        return parse_target(env[ENV_VAR], ENV_VAR, in_file=False, keyring_password=_stored_password())
    if url:
        return parse_target(url, url_source, in_file=True, keyring_password=_stored_password())
    raise ConfigError("no team store configured", f'set [team] url = "postgresql://USER@HOST/DATABASE" in '
                                                  f"workbench.toml, or {ENV_VAR}")


def who() -> tuple[str, str]:
    """(user, host) a pushed row is attributed to: the login name and this machine's host name."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return user, socket.gethostname()
