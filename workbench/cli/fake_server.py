"""``workbench fake-server``: the fake provider (all five wire formats) in the foreground, for tests and demos."""

from __future__ import annotations

import argparse

from workbench.cli._shared import EXIT_OK
from workbench.core.errors import WorkbenchError


def run(args: argparse.Namespace) -> int:
    from workbench.fakeserver import RateLimits, serve

    try:
        limits = RateLimits(args.rpm, args.tpm, args.burst_s) if args.rpm or args.tpm else None
    except ValueError as exc:
        raise WorkbenchError(f"invalid rate limit: {exc}", "give positive numbers") from None
    serve(args.host, args.port, limits)
    return EXIT_OK
