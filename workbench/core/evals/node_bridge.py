"""JavaScript for eval suites (promptfoo's ``javascript`` assertions and transforms), run in Node.

A run keeps ONE warm ``node`` process (:class:`NodeBridge`, started on the first call, stopped with the run)
running ``node_runner.js``: requests and replies are newline-delimited JSON on its stdin and stdout. Each
distinct function is compiled (or its module imported) once in that process. Calls go one at a time, so a
call's time limit is its own: a call over it (an endless loop included) kills the process, fails that call
alone with one line, and the next call starts a new process. A reply is bounded (:data:`MAX_RESULT_CHARS`);
an exception in the user's code is that call's failure. What the code prints goes to stderr, kept only as
the last lines for a process that dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
from collections import deque
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.errors import ConfigError, one_line

RUNNER = Path(__file__).with_name("node_runner.js")
DEFAULT_TIMEOUT_S = 10.0
MAX_RESULT_CHARS = 1 << 20
"""The longest reply a function may give (its result as JSON)."""
_READ_LIMIT = MAX_RESULT_CHARS + (1 << 16)
_CLOSE_WAIT_S = 2.0
_FILE_REF = re.compile(r"^file://(?P<path>.+?)(?::(?P<function>[A-Za-z_$][\w$]*))?$")
_active: ContextVar[NodeBridge | None] = ContextVar("node_bridge", default=None)


class JavaScriptError(Exception):
    """A function gave no usable result: it threw, timed out, returned nothing, or node failed. One line."""


@dataclass(frozen=True, slots=True)
class JsFunction:
    """Inline code (``param`` names its first argument; ``assertion``: promptfoo's assertion rules for one
    line) or a module file's function (its default export without ``function``)."""

    code: str | None = None
    file: str | None = None
    function: str | None = None
    param: str = "output"
    assertion: bool = False

    @property
    def shown(self) -> str:
        if self.file is None:
            return "inline code"
        return Path(self.file).name + (f":{self.function}" if self.function else "")

    def wire(self) -> dict[str, Any]:
        if self.file is not None:
            return {"file": self.file, "function": self.function}
        return {"code": self.code, "param": self.param, "assertion": self.assertion}


def js_function(value: str, base_dir: Path, *, param: str = "output", assertion: bool = False) -> JsFunction:
    """``value`` as a function: ``file://path.js[:name]`` (relative to ``base_dir``) or inline code."""
    match = _FILE_REF.match(value.strip())
    if match is None:
        return JsFunction(code=value, param=param, assertion=assertion)
    path = (base_dir / match["path"]).resolve()
    if not path.is_file():
        raise JavaScriptError(f"no such file: {path}")
    return JsFunction(file=str(path), function=match["function"])


def require_node(where: str, what: str) -> None:
    """Raise a :class:`ConfigError` at ``where`` (``file:line``) when ``node`` is not on PATH."""
    if shutil.which("node") is None:
        raise ConfigError(f"{where}: {what} needs Node.js, and node is not on PATH",
                          "install Node.js (e.g. apt-get install nodejs) or put node on PATH")


def current() -> NodeBridge:
    """The bridge of the run under way (:func:`node_session`)."""
    bridge = _active.get()
    if bridge is None:
        raise JavaScriptError("no JavaScript session: run the code inside node_session()")
    return bridge


@contextlib.asynccontextmanager
async def node_session(base_dir: Path) -> AsyncIterator[NodeBridge]:
    """A bridge for the calls made inside the block (tasks started there included), stopped at its end."""
    bridge = NodeBridge(base_dir)
    token = _active.set(bridge)
    try:
        yield bridge
    finally:
        _active.reset(token)
        await bridge.close()


class NodeBridge:
    """One warm ``node`` process, started on the first call; see the module docstring."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr: deque[str] = deque(maxlen=5)
        self._drain: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._ids = 0
        self.started = 0
        """How many node processes this bridge started (a timeout costs one)."""

    async def call(self, fn: JsFunction, args: list[Any], *, time_limit: float = DEFAULT_TIMEOUT_S) -> Any:
        """What ``fn(*args)`` returned (awaited), as JSON data; raises :class:`JavaScriptError`."""
        async with self._lock:
            proc = await self._process()
            assert proc.stdin is not None and proc.stdout is not None
            self._ids += 1
            request = {"id": self._ids, "fn": fn.wire(), "args": args, "max": MAX_RESULT_CHARS}
            try:
                line = json.dumps(request, ensure_ascii=False, default=str) + "\n"
            except ValueError as exc:
                raise JavaScriptError(f"its arguments cannot be sent to node: {exc}") from None
            try:
                proc.stdin.write(line.encode())
                answer = await asyncio.wait_for(self._reply(proc.stdin, proc.stdout), time_limit)
            except TimeoutError:
                await self._stop()
                raise JavaScriptError(f"timed out after {time_limit:g} s ({fn.shown})") from None
            except (ValueError, asyncio.LimitOverrunError):
                await self._stop()
                raise JavaScriptError(f"its reply is over {MAX_RESULT_CHARS} characters ({fn.shown})") from None
            except (ConnectionError, EOFError):
                await self._stop()
                tail = "; ".join(self._stderr) or "no message"
                raise JavaScriptError(f"node stopped ({fn.shown}): {tail}") from None
        return _result(answer, fn)

    @staticmethod
    async def _reply(stdin: asyncio.StreamWriter, stdout: asyncio.StreamReader) -> dict[str, Any]:
        await stdin.drain()
        line = await stdout.readline()
        if not line:
            raise EOFError
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def _process(self) -> asyncio.subprocess.Process:
        if self._proc is not None and self._proc.returncode is None:
            return self._proc
        node = shutil.which("node")
        if node is None:
            raise JavaScriptError("node is not on PATH (install Node.js)")
        self._proc = await asyncio.create_subprocess_exec(
            node, str(RUNNER), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=self.base_dir, limit=_READ_LIMIT)
        self.started += 1
        self._drain = asyncio.create_task(self._keep_stderr(self._proc))
        return self._proc

    async def _keep_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            self._stderr.append(line.decode(errors="replace").strip()[:200])

    async def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        if self._drain is not None:
            self._drain.cancel()
            await asyncio.gather(self._drain, return_exceptions=True)
            self._drain = None

    async def close(self) -> None:
        """Stop the process: its stdin closed (it exits), killed if it has not within a moment."""
        async with self._lock:
            proc = self._proc
            if proc is not None and proc.stdin is not None and proc.returncode is None:
                proc.stdin.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), _CLOSE_WAIT_S)
            await self._stop()


def _result(answer: dict[str, Any], fn: JsFunction) -> Any:
    if "error" in answer:
        raise JavaScriptError(one_line(f"{answer['error']} ({answer.get('where') or fn.shown})"))
    if answer.get("undefined"):
        raise JavaScriptError(f"returned undefined ({fn.shown})")
    if answer.get("result") is None:
        raise JavaScriptError(f"returned null ({fn.shown})")
    return answer["result"]
