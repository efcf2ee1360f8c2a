"""First paint as a user sees it: ``python -m workbench`` started in a real terminal (tmux, 160×45), time from
launch until the editor is on the terminal, median of ``--runs``; with a warm bytecode cache and without one.

The terminal is polled (``tmux capture-pane``) every few milliseconds until the editor's labels and its meter
show. "Without a cache": ``PYTHONDONTWRITEBYTECODE=1`` and a fresh, empty ``PYTHONPYCACHEPREFIX`` for each
run, so every module is compiled from source (a first start after installing without byte-compiling).
"With a cache": a ``PYTHONPYCACHEPREFIX`` filled by one start before the timed ones. Each run gets an empty
home, workspace and trace log, and no other variable (so a ``PYTHONDONTWRITEBYTECODE`` set where the bench
runs does not leak in); the tmux server is private to this script (its own socket).

    python -m bench.first_paint [--runs 5] [--timeout 20]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

SIZE = (160, 45)
MARKERS = ("Prompts", "System prompt", "User message", "Targets (comma-separated provider/model)", "^r Run race")
"""What the editor's first frame shows at 160×45 (labels, the footer's first binding)."""
POLL_S = 0.003


def tmux(socket: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, check=False)


def one_start(socket: str, env: dict[str, str], cwd: str, timeout_s: float) -> float | None:
    """Milliseconds from launching the app in a new tmux session until the editor is on its screen."""
    session = f"fp{time.monotonic_ns()}"
    command = " ".join(shlex.quote(part) for part in (sys.executable, "-m", "workbench"))
    exports = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
    t0 = time.perf_counter()
    screen = ""
    tmux(socket, "new-session", "-d", "-s", session, "-x", str(SIZE[0]), "-y", str(SIZE[1]), "-c", cwd,
         f"env -i {exports} {command}")  # only ``env``: nothing inherited from the tmux server
    try:
        while time.perf_counter() - t0 < timeout_s:
            screen = tmux(socket, "capture-pane", "-p", "-t", session).stdout
            if all(marker in screen for marker in MARKERS):
                return (time.perf_counter() - t0) * 1000
            time.sleep(POLL_S)
        print("\n".join(line for line in screen.splitlines() if line.strip())[-2000:], file=sys.stderr)
        return None
    finally:
        tmux(socket, "kill-session", "-t", session)


def series(label: str, runs: int, timeout_s: float, *, cached: bool) -> None:
    socket = f"wb-first-paint-{os.getpid()}"
    times: list[float] = []
    with tempfile.TemporaryDirectory() as root:
        cache = os.path.join(root, "pycache")
        base = {"HOME": root, "XDG_CONFIG_HOME": root, "XDG_DATA_HOME": root, "TERM": "xterm-256color",
                "LANG": "C.UTF-8", "WORKBENCH_TRACES": os.path.join(root, "traces.db"),
                "PATH": os.environ.get("PATH", ""), "PYTHONPYCACHEPREFIX": cache}
        try:
            if cached:
                one_start(socket, base, root, timeout_s)  # fills the cache
            for run in range(runs):
                env = dict(base)
                if not cached:
                    env |= {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": os.path.join(root, f"empty{run}")}
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
