"""First paint as a user sees it: ``python -m workbench`` started in a real terminal (tmux, 160×45), time from
launch until the editor is on the terminal, median of ``--runs``; with a warm bytecode cache and without one.

The bytes the terminal receives are piped to a file (``tmux pipe-pane``), read every millisecond until the
editor's labels and footer show. "Without a cache": workbench's own modules compiled from source on every run
(a fresh clone's first start; the libraries keep the byte code their installation wrote). "With a cache": the
same after one start has written it. Each run gets an empty home, workspace and trace log, and no other
variable; the tmux server is private to this script (its own socket).

    python -m bench.first_paint [--runs 5] [--timeout 20]
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SIZE = (160, 45)
MARKERS = ("Prompts", "System prompt", "User message", "Targets (comma-separated provider/model)", "Run race")
"""What the editor's first frame shows at 160×45 (labels, the footer's first binding)."""
CONTROL = re.compile(rb"\x1b(?:\[[0-9;?<=>]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78DEHM])")
"""Escape sequences (CSI, OSC, charset and keypad selections): left out, the frame's text reads in order."""
POLL_S = 0.001
PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "workbench")


def tmux(socket: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, check=False)


def release(fifo: str, timeout_s: float) -> None:
    """Open and close ``fifo`` for writing once the session's shell reads it (never blocking past the timeout)."""
    deadline = time.perf_counter() + timeout_s
    while True:
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            return
        except OSError:  # ENXIO: no reader yet
            if time.perf_counter() > deadline:
                raise TimeoutError(f"the tmux session never read {fifo}") from None
            time.sleep(POLL_S)


def one_start(socket: str, env: dict[str, str], cwd: str, timeout_s: float) -> float | None:
    """Milliseconds from launching the app in a new tmux session until the editor is on its screen.

    The session starts a shell that waits on a FIFO; the pane's output is piped to a file (``pipe-pane``);
    the clock starts when the FIFO releases the shell into the app, and stops when the bytes the terminal
    received show every marker. Reading a file costs the app no CPU, where polling ``capture-pane`` would
    start a tmux client every few milliseconds on the same two cores."""
    session = f"fp{time.monotonic_ns()}"
    go, out = os.path.join(cwd, f"{session}.go"), os.path.join(cwd, f"{session}.out")
    os.mkfifo(go)
    command = " ".join(shlex.quote(part) for part in (sys.executable, "-m", "workbench"))
    exports = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
    started = tmux(socket, "new-session", "-d", "-s", session, "-x", str(SIZE[0]), "-y", str(SIZE[1]), "-c", cwd,
                   f"cat {shlex.quote(go)} >/dev/null; exec env -i {exports} {command}")  # nothing inherited
    piped = tmux(socket, "pipe-pane", "-t", session, f"cat >> {shlex.quote(out)}")
    if started.returncode or piped.returncode:
        print(f"tmux: {(started.stderr + piped.stderr).strip()}", file=sys.stderr)
        return None
    received = b""
    try:
        with open(out, "ab"):  # exists before the app writes
            pass
        with open(out, "rb") as screen:
            release(go, timeout_s)
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < timeout_s:
                received += screen.read()
                text = CONTROL.sub(b"", received).decode("utf-8", "replace")
                if all(marker in text for marker in MARKERS):
                    return (time.perf_counter() - t0) * 1000
                time.sleep(POLL_S)
        print(CONTROL.sub(b"", received).decode("utf-8", "replace")[-2000:], file=sys.stderr)
        return None
    finally:
        tmux(socket, "kill-session", "-t", session)


def series(label: str, runs: int, timeout_s: float, *, cached: bool) -> None:
    """Each run starts a copy of the ``workbench`` package (first on ``PYTHONPATH``); the libraries keep the
    byte code their installation wrote. Cached: the copy's byte code written by one start before the timed
    ones. Not cached: a fresh copy per run and ``PYTHONDONTWRITEBYTECODE=1``, so workbench's own modules
    are compiled from source, as at the first start of a fresh clone."""
    socket = f"wb-first-paint-{os.getpid()}"
    times: list[float] = []
    with tempfile.TemporaryDirectory() as root:
        base = {"HOME": root, "XDG_CONFIG_HOME": root, "XDG_DATA_HOME": root, "TERM": "xterm-256color",
                "LANG": "C.UTF-8", "WORKBENCH_TRACES": os.path.join(root, "traces.db"),
                "PATH": os.environ.get("PATH", "")}

        def copy(name: str) -> dict[str, str]:
            shutil.copytree(PACKAGE, os.path.join(root, name, "workbench"),
                            ignore=shutil.ignore_patterns("__pycache__"))
            return {**base, "PYTHONPATH": os.path.join(root, name)}

        try:
            if cached:
                env = copy("cached")
                one_start(socket, env, root, timeout_s)  # writes the copy's byte code
            for run in range(runs):
                if not cached:
                    env = copy(f"fresh{run}") | {"PYTHONDONTWRITEBYTECODE": "1"}
                ms = one_start(socket, env, root, timeout_s)
                if ms is None:
                    print(f"{label}: the editor did not show within {timeout_s:.0f} s")
                    return
                times.append(ms)
        finally:
            tmux(socket, "kill-server")
    print(f"first paint in tmux {SIZE[0]}×{SIZE[1]}, {label}: median {statistics.median(times):.0f} ms "
          f"(min {min(times):.0f}, max {max(times):.0f}, {len(times)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    series("bytecode cached", args.runs, args.timeout, cached=True)
    series("no bytecode cache", args.runs, args.timeout, cached=False)


if __name__ == "__main__":
    main()
