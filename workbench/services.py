"""What both faces need around the core, written once: settings, the environment targets resolve against
(keyring keys, the fake server and the local model server started on first use), the trace writer and
store, the workspace, the default targets.

Face-neutral: no textual, no rich, no ``workbench.ui``, no ``workbench.cli`` (an import-linter contract
says so). Not in core, because it starts the fake server (``workbench.fakeserver``), which core never
imports. The CLI makes one :class:`Services` per command, the TUI one per app; ``close()`` (or leaving
the ``with`` block) commits the traces and stops the servers it started.

Light to import: ``workbench run`` imports it before its request is out, so everything heavy (the trace
writer, sqlite, the configuration, the fake server) is imported where it is first used.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from workbench.core.errors import WorkbenchError, one_line

if TYPE_CHECKING:
    from workbench.core.call_record import CallRecord
    from workbench.core.config import Settings
    from workbench.core.registry import ProviderSpec
    from workbench.core.targets import DefaultTargets
    from workbench.core.traces.context import CallContext
    from workbench.core.traces.store import TraceStore
    from workbench.core.traces.writer import TraceWriter

FAKE_URL_ENV = "WORKBENCH_FAKE_URL"
"""The fake server's base URL; when unset and a ``fake*`` target needs it, :meth:`Services.target_env` starts one."""

Discover = Callable[[Mapping[str, str], Mapping[str, "ProviderSpec"]], Sequence[str]]
"""Local server discovery: the environment (with keyring keys) and the provider specs → targets found."""


def providers_of(targets: Sequence[str]) -> list[str]:
    """The providers of ``targets`` (``provider/model[@...]``), lower-cased, sorted, once each."""
    return sorted({target.strip().partition("/")[0].lower() for target in targets})


def needs_fake_server(targets: Sequence[str]) -> bool:
    return any(target.strip().lower().startswith("fake") for target in targets)


class Services:
    """Settings, target environment, trace writer and store, workspace: created on first use (thread-safe),
    kept until :meth:`close`.

    ``env`` is the environment (default: the process's); ``settings`` a loaded configuration (default: loaded on
    first use from ``config_path``, else the nearest workspace); ``announce`` is told, in one line, before a slow
    server (the local model) starts."""

    def __init__(self, env: Mapping[str, str] | None = None, *, settings: Settings | None = None,
                 config_path: str | Path | None = None, announce: Callable[[str], None] | None = None) -> None:
        self.env: dict[str, str] = dict(os.environ if env is None else env)
        self.config_path = Path(config_path) if config_path else None
        self.announce = announce
        self._settings = settings
        self._lock = threading.RLock()
        self._writer: TraceWriter | None = None
        self._store: TraceStore | None = None
        self._opening: threading.Thread | None = None
        self._servers = contextlib.ExitStack()
        self._server_urls: dict[str, str] = {}
        self._servers_lock = threading.Lock()
        self._closed = False

    # -- configuration -----------------------------------------------------------------------------

    def settings(self) -> Settings:
        """The configuration (user file + workspace file), loaded once."""
        with self._lock:
            if self._settings is None:
                from workbench.core.config import load_settings

                self._settings = load_settings(self.config_path)
            return self._settings

    def workspace(self) -> Path:
        """The configuration's workspace folder, else the current directory."""
        return self.settings().workspace or Path.cwd()

    def trace_path(self) -> Path:
        return self.settings().trace_path(self.env)

    # -- the environment targets resolve against -------------------------------------------------------

    def keyed_env(self, providers: Sequence[str] | None = None) -> dict[str, str]:
        """:attr:`env` plus keyring keys for ``providers`` (default: every configured provider); the
        environment wins over the keyring."""
        from workbench.core.keys import with_stored_keys

        specs = self.settings().config.provider_specs()
        return with_stored_keys(self.env, sorted(specs) if providers is None else list(providers), specs)

    def target_env(self, targets: Sequence[str]) -> dict[str, str]:
        """The environment ``targets`` resolve against: :attr:`env`, keyring keys for their providers, and the URLs
        of the fake server and of the local model server when a target needs one and no URL is set. A server is
        started on first use (blocking) and kept until :meth:`close`: two calls share it."""
        from workbench.core.local_model import LOCAL_URL_ENV, local_models

        env = self.keyed_env(providers_of(targets))
        if needs_fake_server(targets) and not env.get(FAKE_URL_ENV):
            env[FAKE_URL_ENV] = self.server_url("fake", _start_fake_server)
        local = local_models(targets)
        if local and not env.get(LOCAL_URL_ENV):
            name = "local:" + ",".join(local)
            if name not in self._server_urls and self.announce is not None:
                self.announce(f"starting the local model server for {', '.join(local)} (it runs until you quit)")
            env[LOCAL_URL_ENV] = self.server_url(name, _local_server(local))
        return env

    def server_url(self, name: str, start: Callable[[contextlib.ExitStack], str]) -> str:
        """The URL of the child-process server ``name``, started with ``start`` (which enters it into the stack
        it is given) on first use and kept until :meth:`close` (blocking)."""
        with self._servers_lock:
            if self._closed:
                raise WorkbenchError("closing: no server is started any more")
            if name not in self._server_urls:
                self._server_urls[name] = start(self._servers)
                if self._closed:  # closed while it started: stop it now
                    self._servers.close()
            return self._server_urls[name]

    def servers(self) -> dict[str, str]:
        """The servers started so far: name → URL."""
        with self._servers_lock:
            return dict(self._server_urls)

    def default_targets(self, discover: Discover | None = None) -> DefaultTargets:
        """The targets of a race that names none (:func:`workbench.core.targets.default_targets`) over :attr:`env`
        and every keyring key; ``discover`` finds local servers (default: :func:`workbench.core.discovery.discover`
        with the configuration's network settings). Blocking: discovery waits for local servers."""
        from workbench.core.targets import default_targets

        settings = self.settings()
        specs = settings.config.provider_specs()
        env = self.keyed_env()

        def found() -> Sequence[str]:
            if discover is not None:
                return discover(env, specs)
            from workbench.core.discovery import discover as probe

            return probe(env, specs, settings.network(env))

        return default_targets(env, settings, found)

    # -- traces ------------------------------------------------------------------------------------

    def open_writer_soon(self) -> None:
        """Start opening the trace writer in a thread (importing and opening the store take longer than a short
        stream); :meth:`writer` waits for it and raises what it raised."""
        with self._lock:
            if self._writer is not None or self._opening is not None:
                return
            opening = threading.Thread(target=self._open_writer, name="workbench-open-traces", daemon=True)
            opening.start()  # started before it is published: another thread may join it as soon as it sees it
            self._opening = opening

    def _open_writer(self) -> None:
        with contextlib.suppress(Exception):  # met again by writer() in the caller's thread, which says it
            self.writer()

    def writer(self) -> TraceWriter:
        """The background trace writer (created on first use); closed, with every write committed, by :meth:`close`."""
        opening = self._opening
        if opening is not None and opening is not threading.current_thread():
            opening.join()  # an early open that failed (even by a fluke of two threads importing) is tried again here
        with self._lock:
            if self._writer is None:
                if self._closed:
                    raise WorkbenchError("closing: the trace log is not opened any more")
                from workbench.core.traces.writer import TraceWriter

                settings = self.settings()
                self._writer = TraceWriter(settings.trace_path(self.env), settings.redactor())
            return self._writer

    def store(self) -> TraceStore:
        """The trace store for reading (created on first use; one connection: callers serialise its use)."""
        with self._lock:
            if self._store is None:
                from workbench.core.traces.store import TraceStore

                self._store = TraceStore(self.trace_path())
            return self._store

    # -- lifetime ----------------------------------------------------------------------------------

    def close(self) -> None:
        """Commit and close the trace writer, close the store, stop the servers started here. Idempotent;
        nothing is opened or started afterwards."""
        self._closed = True  # not under the servers' lock: a server still starting stops once it has started
        opening = self._opening
        if opening is not None and opening is not threading.current_thread():
            opening.join()
        with self._lock:
            writer, store = self._writer, self._store
            self._writer = self._store = None
        errors: list[BaseException] = []
        for closer in (writer, store, self._servers):
            if closer is None:
                continue
            try:
                closer.close()
            except Exception as exc:  # the others are closed all the same
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> Services:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


class CallTracer:
    """Writes each call of a race to the trace log as soon as it is final and settled (pass it as the race's
    ``on_settled``; it runs on the race's settling thread), so that a face interrupted or killed keeps every
    call that had finished. ``services`` ``None``: not traced. A trace log that cannot be opened is reported
    once through ``on_error``, never raised."""

    def __init__(self, services: Services | None, context: CallContext, count: int,
                 on_error: Callable[[WorkbenchError], None]) -> None:
        self.services, self.context, self.on_error = services, context, on_error
        self.ids: list[str | None] = [None] * count
        """Each call's trace id once it is written (``None`` before, or when not traced)."""
        self._lock = threading.Lock()
        self._writer: TraceWriter | None = None
        self._failed = services is None

    def __call__(self, index: int, record: CallRecord) -> None:
        with self._lock:
            if self._writer is None and not self._failed:
                self._open()
            if self._writer is not None:
                self.ids[index] = self._writer.write(record, self.context)


    def _open(self) -> None:
        """Open the trace writer, or say once why the calls are not traced."""
        assert self.services is not None
        try:
            self._writer = self.services.writer()
        except WorkbenchError as exc:
            self._failed = True
            self.on_error(exc)
        except Exception as exc:  # never silent: the face says the calls are not traced, and why
            self._failed = True
            self.on_error(WorkbenchError(f"the trace log could not be opened: {one_line(repr(exc), 200)}",
                                         "the calls of this race are not traced"))


def _start_fake_server(stack: contextlib.ExitStack) -> str:
    from workbench.fakeserver.process import fake_server_process

    return stack.enter_context(fake_server_process()).base_url


def _local_server(models: Sequence[str]) -> Callable[[contextlib.ExitStack], str]:
    """A starter for :meth:`Services.server_url`: the local model server for ``models``."""

    def start(stack: contextlib.ExitStack) -> str:
        from workbench.core.local_model import local_server

        return stack.enter_context(local_server(list(models)))

    return start

