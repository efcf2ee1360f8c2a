"""``python -m workbench.fakeserver [--host HOST] [--port PORT] [--rpm N] [--tpm N] [--burst-s S]``: run the
fake provider server, optionally with server-side rate limits (requests / tokens per minute)."""

from __future__ import annotations

import argparse

from workbench.fakeserver.app import serve
from workbench.fakeserver.limits import RateLimits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workbench.fakeserver", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--rpm", type=float, default=None, help="requests per minute (default: unlimited)")
    parser.add_argument("--tpm", type=float, default=None, help="tokens per minute (default: unlimited)")
    parser.add_argument("--burst-s", type=float, default=1.0, help="seconds of rate each bucket holds (default: 1)")
    args = parser.parse_args(argv)
    try:
        limits = RateLimits(args.rpm, args.tpm, args.burst_s)
    except ValueError as exc:
        parser.error(str(exc))
    serve(args.host, args.port, limits if limits.enabled else None)


if __name__ == "__main__":
    main()
