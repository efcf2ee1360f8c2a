"""The ``workbench`` command's entry point. ``workbench run`` starts its network process before it imports
anything else (the command line, its parser, the configuration): the child's start-up, most of the time
to a first request byte, then overlaps all of this process's own (see bench/startup.py)."""

from __future__ import annotations

import os
import sys


def main() -> int:
    spawned = None
    if sys.argv[1:2] == ["run"]:
        from workbench.process_settings import pause_collection

        pause_collection()
        # pydantic's plugin discovery reads every installed distribution's entry points (~15 ms of start-up);
        # the command validates only its own files and flags, which no plugin observes (the environment wins).
        os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
        from workbench.core.netlog import network_log_path
        from workbench.core.netspawn import spawn

        try:
            spawned = spawn(network_log_path())
        except OSError:  # started again where the command can say why
            spawned = None
    from workbench.cli import main as cli_main

    return cli_main(spawned=spawned)
