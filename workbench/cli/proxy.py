"""``workbench proxy``: capture mode in the foreground (:mod:`workbench.core.capture`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from types import FrameType

from workbench.cli._shared import EXIT_OK
from workbench.core.errors import WorkbenchError


def run(args: argparse.Namespace) -> int:
    from workbench.core.capture.access import TOKEN_ENV, Access, new_token, user_keys
    from workbench.core.capture.server import event_loop, is_loopback, serve
    from workbench.core.errors import header_safe
    from workbench.services import Services

    if not 0 <= args.port <= 65535:
        raise WorkbenchError(f"--port {args.port} is not a port", "give 0 to 65535 (0: any free port)")
    remote = not is_loopback(args.host)
    if remote and not args.allow_remote:
        raise WorkbenchError(f"--host {args.host} is not a loopback address: the proxy forwards with your "
                             "application's keys", "add --allow-remote (a proxy token is then required) to listen "
                             "there anyway")
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    if token is not None:
        if len(token) < 8:
            raise WorkbenchError("the proxy token is shorter than 8 characters",
                                 f"give --token (or {TOKEN_ENV}) a longer one, or leave both unset on loopback")
        header_safe(token, "the proxy token (--token or WORKBENCH_PROXY_TOKEN)")
    generated = remote and token is None
    if generated:
        token = new_token()

    def ready(url: str) -> None:
        print(f"workbench proxy: listening on {url} (e.g. {url}/openai/v1, {url}/anthropic); Ctrl-C stops it",
              flush=True)
        if generated:  # said once, here: never stored nor printed again
            print(f"workbench proxy: remote clients must send X-Workbench-Token: {token} (generated for this run; "
                  f"set WORKBENCH_PROXY_TOKEN to choose one)", flush=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Uvicorn stops on Ctrl-C and SIGTERM (open streams finish or are cancelled and traced), then raises the
    # signal again: both end here, where the trace log is committed before the process exits.
    signal.signal(signal.SIGTERM, stop)
    with Services() as services, contextlib.suppress(KeyboardInterrupt):
        settings = services.settings()
        env = services.env
        specs = settings.config.provider_specs()
        unknown = [name for name in args.resilient if name not in specs]
        if unknown:
            raise WorkbenchError(f"--resilient {unknown[0]}: no provider is named {unknown[0]}",
                                 f"a route is a provider's name: {', '.join(sorted(specs))}")
        resilient = settings.config.proxy.resilient() | frozenset(args.resilient)
        keys = user_keys(specs, env) if args.use_keyring_keys or settings.config.proxy.use_keyring else {}
        with asyncio.Runner(loop_factory=event_loop) as runner:
            runner.run(serve(args.host, args.port, specs, env, settings.network(env), services.writer(),
                             on_ready=ready, policies=settings.policies, resilient=resilient,
                             access=Access(token, keys)))
    print("workbench proxy: stopped", file=sys.stderr)
    return EXIT_OK
