"""promptfoo's variables computed by code: ``context: file://load_context.py`` (its ``get_var``, or
``file://x.py:name``) or ``file://x.js[:name]``, called for each cell as ``(var_name, prompt, other_vars)``
with the prompt as written, returning ``{output}`` (the value) or ``{error}`` (the cell fails with it).

At load the variable holds a :class:`ComputedVar`: the reference as written (what test names, digests and stores
see) and the file to call; :func:`computed_vars` replaces it with what the code returned."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workbench.core.evals.node_bridge import DEFAULT_TIMEOUT_S, JavaScriptError, current, js_function, require_node
from workbench.core.evals.python_assert import PythonAssertionError, run_python
from workbench.core.evals.suite_promptfoo import Context, Src
from workbench.core.evals.suite_sources import CODE_REF
from workbench.core.templating import StructuredVar, template_values
from workbench.core.yaml_lines import Loc

GET_VAR = "get_var"
"""The function a Python file without ``:name`` is called by, as promptfoo calls it."""


class ComputedVarError(Exception):
    """The code failed, or returned an error or no output (one line)."""


class ComputedVar(str):
    """A variable whose value code computes: its text is the reference as written."""

    __slots__ = ("code", "python")
    code: str
    python: bool

    def __new__(cls, written: str, code: str, python: bool) -> ComputedVar:
        value = super().__new__(cls, written)
        value.code, value.python = code, python
        return value


def computed_var(ctx: Context, src: Src, loc: Loc, written: str) -> ComputedVar | None:
    """The :class:`ComputedVar` ``written`` names (None when it names no code file): the file must exist; a
    TypeScript one is refused; a JavaScript one needs node."""
    match = CODE_REF.match(written.strip())
    if match is None:
        return None
    path = Path(match["path"])
    full = (path if path.is_absolute() else ctx.folder / path).resolve()
    if not full.is_file():
        raise src.error(loc, f"no file '{match['path']}' (for the variable '{written}')",
                        f"paths are relative to {ctx.shown(ctx.folder)}")
    if match["ext"] == "ts":
        raise src.error(loc, f"variable from '{written}': TypeScript files are not supported", "use a .py or .js file")
    if match["ext"] != "py":
        require_node(src.at(loc), f"the variable '{written}' is JavaScript: it")
    function = match["function"]
    return ComputedVar(written, f"file://{full}" + (f":{function}" if function else ""), match["ext"] == "py")


async def computed_vars(variables: Mapping[str, str], prompt: str, base_dir: Path) -> Mapping[str, str]:
    """``variables`` with each :class:`ComputedVar` replaced by what its code returned for ``prompt``."""
    computed = [name for name, value in variables.items() if isinstance(value, ComputedVar)]
    if not computed:
        return variables
    out = dict(variables)
    for name in computed:
        code = variables[name]
        assert isinstance(code, ComputedVar)
        others = template_values({k: v for k, v in out.items() if k != name and not isinstance(v, ComputedVar)})
        try:
            if code.python:
                result = await run_python(code.code, None, {}, base_dir=base_dir, time_limit=DEFAULT_TIMEOUT_S,
                                          function=GET_VAR, args=[name, prompt, others])
            else:
                result = await current().call(js_function(code.code, base_dir), [name, prompt, others],
                                              time_limit=DEFAULT_TIMEOUT_S)
        except (PythonAssertionError, JavaScriptError) as exc:
            raise ComputedVarError(f"the variable {name} ({code}): {exc}") from None
        out[name] = _value(name, str(code), result)
    return out


def _value(name: str, written: str, result: Any) -> str:
    if not isinstance(result, dict):
        raise ComputedVarError(f"the variable {name} ({written}) returned {type(result).__name__}, not {{output}}")
    if result.get("error"):
        raise ComputedVarError(f"the variable {name} ({written}): {result['error']}")
    if "output" not in result:
        raise ComputedVarError(f"the variable {name} ({written}) returned no output")
    output = result["output"]
    if isinstance(output, str):
        return output
    return StructuredVar(output) if isinstance(output, dict | list) else json.dumps(output)
