"""``python -m workbench.fakeserver [--host HOST] [--port PORT]``: run the fake provider server."""

from __future__ import annotations

import argparse

from workbench.fakeserver.app import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workbench.fakeserver", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
