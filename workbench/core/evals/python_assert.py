"""The ``python`` assertion: user code run in a subprocess, with a timeout.

The parent (:func:`run_python`) starts this very file as a script with ``sys.executable``, writes the
request (the code or file reference, ``output``, ``context``) as JSON on its stdin, and reads one JSON
object back from its stdout: ``{"result": ...}`` or ``{"error": ..., "where": "file:line"}``. While the
user code runs its ``print`` output goes to stderr, so it cannot corrupt the reply. The script imports
the standard library only.

The value is an inline expression (``len(output) < 100``), an inline function body with ``return``
statements (several lines), or ``file://path.py`` / ``file://path.py:function_name`` relative to the
suite's folder, calling ``get_assert(output, context)`` by default. Inline code sees ``output``,
``context``, ``json``, ``math`` and ``re``.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import json
import math
import re
import sys
import traceback
from pathlib import Path
from typing import Any

DEFAULT_FUNCTION = "get_assert"
_INLINE = "<assertion>"
_FILE_REF = re.compile(r"^file://(?P<path>.+?)(?::(?P<function>[A-Za-z_]\w*))?$")


class PythonAssertionError(Exception):
    """The code could not give a verdict: it raised, timed out, or returned something unusable."""


async def run_python(
    value: str, output: Any, context: dict[str, Any], *, base_dir: Path, time_limit: float,
    function: str = DEFAULT_FUNCTION, args: list[Any] | None = None,
) -> Any:
    """Run the code on ``output`` and return what it returned (JSON-decoded); ``function``: the one a
    ``file://`` reference without a name calls (``get_assert``; promptfoo's transforms: ``get_transform``;
    its providers: ``call_api``); ``args``: the file's function is called with these instead of (output, context)."""
    code = _code_request(value, base_dir, function)
    where = code.get("file", "inline code")
    request = {**code, "output": output, "context": context, **({} if args is None else {"args": args})}
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-P", __file__,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            cwd=base_dir,
        )
    except OSError as exc:
        raise PythonAssertionError(f"cannot start the assertion process in {base_dir}: {exc}") from None
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(json.dumps(request).encode()), time_limit)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise PythonAssertionError(f"timed out after {time_limit:g} s ({where})") from None
    return _reply(stdout, stderr, where)


def _code_request(value: str, base_dir: Path, function: str) -> dict[str, str]:
    match = _FILE_REF.match(value.strip())
    if match is None:
        return {"code": value}
    path = (base_dir / match["path"]).resolve()
    if not path.is_file():
        raise PythonAssertionError(f"no such file: {path}")
    return {"file": str(path), "function": match["function"] or function}


def _reply(stdout: bytes, stderr: bytes, where: str) -> Any:
    try:
        reply = json.loads(stdout)
    except ValueError:
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no reply"]
        raise PythonAssertionError(f"the assertion process failed ({where}): {tail[0]}") from None
    if "error" in reply:
        raise PythonAssertionError(f"{reply['error']} ({reply['where'] or where})")
    return reply["result"]


def interpret(result: Any, threshold: float | None) -> tuple[bool, float, str]:
    """Pass, score and reason from a returned bool, number or ``{pass, score, reason}`` dict.

    As in promptfoo, a number is the score: it passes when it reaches the threshold or, without one,
    when it is above 0. Scores are clamped to [0, 1].
    """
    if isinstance(result, bool):
        return result, float(result), f"returned {result}"
    if isinstance(result, int | float):
        return _score_passes(result, threshold), _clamp(result), f"returned {result:g}"
    if isinstance(result, dict):
        return _interpret_dict(result, threshold)
    raise PythonAssertionError(f"returned {type(result).__name__}; expected a bool, a number or a dict")


def _interpret_dict(result: dict[str, Any], threshold: float | None) -> tuple[bool, float, str]:
    score = result.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
        raise PythonAssertionError(f"returned a score that is not a number: {score!r}")
    passed = result.get("pass")
    if passed is None:
        passed = _score_passes(score if score is not None else 0, threshold)
    reason = str(result.get("reason") or f"returned pass={bool(passed)}")
    return bool(passed), _clamp(score if score is not None else float(bool(passed))), reason


def _score_passes(score: float, threshold: float | None) -> bool:
    return score >= threshold if threshold is not None else score > 0


def _clamp(score: float) -> float:
    return min(1.0, max(0.0, float(score)))


# The subprocess side: standard library only from here on.


def _serve() -> None:
    request = json.load(sys.stdin)
    reply_to, sys.stdout = sys.stdout, sys.stderr
    try:
        reply: dict[str, Any] = {"result": _call(request)}
    except BaseException as exc:  # the user's code may raise anything; all of it is the verdict
        reply = {"error": f"{type(exc).__name__}: {exc}", "where": _where(exc, request)}
    try:
        text = json.dumps(reply)
    except (TypeError, ValueError):
        text = json.dumps({"error": f"returned an unserializable {type(reply['result']).__name__}", "where": ""})
    reply_to.write(text)


def _call(request: dict[str, Any]) -> Any:
    output, context = request["output"], request["context"]
    if "file" in request:
        args = request.get("args", [output, context])
        return _load_function(request["file"], request["function"])(*args)
    return _run_inline(request["code"], output, context)


def _load_function(file: str, function: str) -> Any:
    sys.path.insert(0, str(Path(file).parent))
    spec = importlib.util.spec_from_file_location(Path(file).stem, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {file}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, function, None)):
        raise AttributeError(f"{Path(file).name} defines no function {function}()")
    return getattr(module, function)


def _run_inline(code: str, output: str, context: dict[str, Any]) -> Any:
    names: dict[str, Any] = {"output": output, "context": context, "json": json, "math": math, "re": re}
    try:
        expression = compile(code.strip(), _INLINE, "eval")
    except SyntaxError:
        exec(compile(_as_function(code), _INLINE, "exec"), names)
        return names["_assertion"](output, context)
    return eval(expression, names)


def _as_function(code: str) -> ast.Module:
    """``code`` as the body of ``_assertion(output, context)``, keeping its line numbers."""
    function = ast.parse("def _assertion(output, context): pass").body[0]
    assert isinstance(function, ast.FunctionDef)
    function.body = ast.parse(code, _INLINE).body
    return ast.fix_missing_locations(ast.Module(body=[function], type_ignores=[]))


def _where(exc: BaseException, request: dict[str, Any]) -> str:
    """``file:line`` of the innermost frame in the user's code, or ``""``."""
    user_files = {request.get("file"), _INLINE}
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename in user_files]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else ""


if __name__ == "__main__":
    _serve()
