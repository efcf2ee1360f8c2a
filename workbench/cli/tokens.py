"""``workbench tokens``: a prompt's input tokens and cost range per target, counted offline (or by the
provider's count endpoint when it has one and ``--offline`` is not given)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from workbench.cli._shared import EXIT_OK, invalid_parameter, known_targets, read_file, read_stdin, services
from workbench.core.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.core.request import Params


def _params(args: argparse.Namespace) -> Params:
    """``--max-tokens``, the tools (``--tools``, ``--tool-choice``) and the reasoning settings, read as ``run``
    reads them."""
    from pathlib import Path

    from workbench.core.request import Params
    from workbench.core.tool_specs import check_tool_choice, load_tools

    tools = load_tools(Path(args.tools)) if args.tools else ()
    try:
        return Params(max_tokens=args.max_tokens, tools=tools, tool_choice=check_tool_choice(args.tool_choice, tools),
                      reasoning_effort=args.reasoning_effort, thinking_budget=args.thinking_budget)
    except ValueError as exc:
        raise invalid_parameter(exc, "tokens") from None


def run(args: argparse.Namespace) -> int:
    from workbench.cli.render import estimates_table
    from workbench.core.request import ChatRequest
    from workbench.core.tokens.estimate import Estimate, estimate
    from workbench.core.tokens.provider_counts import provider_counts
    from workbench.services import providers_of

    if args.file == "-":
        if sys.stdin.isatty():
            raise WorkbenchError("no prompt given", "pass a file, or pipe the prompt on stdin")
        text = read_stdin()
    else:
        text = read_file(args.file)
    request = ChatRequest.from_prompt(text, system=args.system, params=_params(args))
    if args.cache_breakpoints or args.cache_ttl:
        from workbench.core.cache_breakpoints import with_breakpoints

        request = with_breakpoints(request, args.cache_breakpoints, args.cache_ttl)
    if args.images or args.image_detail:
        from workbench.core.attachments import load_attachments

        request = request.with_attachments(load_attachments(args.images, detail=args.image_detail))
    with services(args) as found:
        settings = found.settings()
        models = [settings.config.expand(m) for m in args.models]
        providers = settings.config.provider_specs()
        known_targets(models, providers)
        from workbench.core.providers.reasoning import check_targets as check_reasoning

        check_reasoning(request.params, models, providers)
        exact = {}
        if not args.offline:
            env = found.keyed_env(providers_of(models))
            exact = provider_counts(request, models, env, raw=args.raw, providers=providers,
                                    network=settings.network(env))
    rows: list[Estimate] = []
    for target in models:
        try:
            rows.append(estimate(request, target, settings.prices, raw=args.raw, provider_count=exact.get(target)))
        except WorkbenchError as exc:
            raise WorkbenchError(f"{target}: {exc}", exc.hint) from None
    if args.json:
        for row in rows:
            print(json.dumps(row.summary()))
    else:
        from workbench.cli._shared import console
        from workbench.cli.render import print_table

        print_table(estimates_table(rows), console())
    return EXIT_OK
