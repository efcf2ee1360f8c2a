"""``workbench run``: one prompt streamed to several targets at once (a race), shown live, traced.

Imports little before its request is out (rich, the trace store, tokenizers and price data come later, or not
at all with ``--json``); :func:`workbench.cli.main` has started the network process before this module loads.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from workbench.cli._shared import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    invalid_parameter,
    read_file,
    read_stdin,
    relative,
    services,
    variables,
)
from workbench.core.errors import WorkbenchError
from workbench.process_settings import resume_collection

if TYPE_CHECKING:
    from rich.console import Console

    from workbench.core.call_record import CallRecord
    from workbench.core.config import Config, Settings
    from workbench.core.netproc import NetworkProcess
    from workbench.core.policy import PolicySet
    from workbench.core.registry import ProviderSpec
    from workbench.core.request import ChatRequest, Params
    from workbench.core.sessions import PromptRef
    from workbench.core.traces.context import CallContext
    from workbench.services import Services

T = TypeVar("T")


def _read_prompt(args: argparse.Namespace) -> str:
    """The prompt text from the argument, ``--file`` or stdin; an empty (or blank) one is refused."""
    if args.file:
        text, where = read_file(args.file), args.file
    elif args.prompt not in (None, "-"):
        text, where = str(args.prompt), "the argument"
    elif args.prompt == "-" or not sys.stdin.isatty():
        text, where = read_stdin(), "stdin"
    else:
        raise WorkbenchError("no prompt given", "pass it as an argument, with --file PATH, or on stdin")
    if not text.strip():
        raise WorkbenchError(f"the prompt is empty ({where})", "give the text to send")
    return text


@dataclasses.dataclass(frozen=True)
class _Source:
    """What a run sends and where it came from: text, a prompt version (--prompt) or a saved session."""

    request: ChatRequest
    targets: list[str]
    """The prompt's or the session's targets (used when no -m is given)."""
    prompt: PromptRef | None = None
    variables: dict[str, str] = dataclasses.field(default_factory=dict)
    session: str | None = None


def _source(args: argparse.Namespace, settings: Settings) -> _Source:
    from workbench.core.request import ChatRequest

    if args.continue_from:
        return _continued(args, settings)
    if args.tool_result:
        raise WorkbenchError("--tool-result answers a tool call of a traced reply", "use it with --continue TRACE_ID")
    if args.prompt_ref or args.session:
        flag = "--prompt" if args.prompt_ref else "--session"
        if args.prompt_ref and args.session:
            raise WorkbenchError("--prompt and --session both give the request", "pass one of them")
        if args.prompt is not None or args.file or args.system is not None:
            raise WorkbenchError(f"{flag} brings its own system prompt and messages",
                                 "drop the prompt text, --file and --system")
    elif args.var:
        raise WorkbenchError("--var fills the variables of a prompt file", "use it with --prompt NAME")
    if args.session:
        from workbench.core.sessions import find_session, load_session_file, session_request

        session = load_session_file(find_session(args.session, settings.workspace))
        request, targets = session_request(session)
        return _Source(request, targets, session.prompt, dict(session.variables), session.name)
    if args.prompt_ref:
        from workbench.core.prompts import pin, prompts_folder, to_request, variable_values
        from workbench.core.sessions import PromptRef

        prompt, version = pin(_workspace(settings), args.prompt_ref)
        given = variables(args.var)
        return _Source(to_request(prompt, given, folder=prompts_folder(_workspace(settings))), list(prompt.targets),
                       PromptRef(name=prompt.name, version=version.number), variable_values(prompt, given))
    return _Source(ChatRequest.from_prompt(_read_prompt(args), system=args.system), [])


def _continued(args: argparse.Namespace, settings: Settings) -> _Source:
    """``--continue TRACE_ID``: the traced call's request and reply, each tool call answered by ``--tool-result``,
    the prompt text (or ``--file``; never stdin) as the next user turn; the call's target unless -m is given."""
    from workbench.core.conversation import continued, traced_reply
    from workbench.core.sessions import PromptRef
    from workbench.core.traces.store import TraceStore

    if args.prompt_ref or args.session or args.system is not None or args.var:
        raise WorkbenchError("--continue brings the traced call's system prompt and messages",
                             "drop --prompt, --session, --system and --var")
    path = settings.trace_path(os.environ)
    if not path.exists():
        raise WorkbenchError(f"no trace log at {path}: no call to continue", "run a prompt first (without --no-trace)")
    store = TraceStore(path)
    try:
        call = store.get(args.continue_from)
    finally:
        store.close()
    if call is None:
        raise WorkbenchError(f"no single call with id {args.continue_from}", "copy an id from `workbench traces list`")
    request, reply = traced_reply(call)
    traced = json.loads((call.get("payload") or {}).get("request_json") or "{}").get("messages") or []
    dropped = [str(a.get("name")) for m in traced for a in m.get("attached") or ()]
    if dropped:  # the trace log keeps what they were, never their bytes
        print(f"workbench: the traced call's attachments ({', '.join(dropped)}) are not in the trace log: the "
              "conversation goes on without them (attach files again with --image)", file=sys.stderr)
    follow_up = read_file(args.file) if args.file else args.prompt if args.prompt not in (None, "-") else None
    prompt = (PromptRef(name=call["prompt_name"], version=call["prompt_version"])
              if call.get("prompt_name") and call.get("prompt_version") else None)
    return _Source(continued(request, reply, _tool_results(args.tool_result), follow_up), [call["target"]], prompt)


def _tool_results(items: Sequence[str]) -> dict[str, str]:
    """``--tool-result CALL_ID=TEXT`` (or ``=@FILE``, the file's text) options by call id."""
    out: dict[str, str] = {}
    for item in items:
        call_id, sep, value = item.partition("=")
        if not sep or not call_id.strip():
            raise WorkbenchError(f"--tool-result {item}: expected CALL_ID=TEXT or CALL_ID=@FILE",
                                 "the call ids are in `workbench traces show TRACE_ID`")
        if call_id.strip() in out:
            raise WorkbenchError(f"--tool-result {call_id.strip()} is given twice", "give one result per call")
        out[call_id.strip()] = read_file(value[1:]) if value.startswith("@") else value
    return out


def _workspace(settings: Settings) -> Path:
    from workbench.cli._shared import workspace_dir

    return settings.workspace or workspace_dir()


def _params(args: argparse.Namespace, config: Config, base: Params) -> Params:
    """The flags over the request's own params (a prompt's, a session's) over the configuration's defaults."""
    from workbench.core.request import Params

    def first(*values: T | None) -> T | None:
        return next((v for v in values if v is not None), None)

    from workbench.core.tool_specs import check_tool_choice, load_tools

    tools = load_tools(Path(args.tools)) if args.tools else base.tools
    tool_choice = check_tool_choice(args.tool_choice if args.tool_choice is not None else base.tool_choice, tools)
    try:
        return Params(
            max_tokens=first(args.max_tokens, base.max_tokens, config.defaults.max_tokens),
            temperature=first(args.temperature, base.temperature, config.defaults.temperature),
            top_p=first(args.top_p, base.top_p), seed=first(args.seed, base.seed),
            stop=tuple(args.stop) or base.stop, json_schema=base.json_schema,
            tools=tools, tool_choice=tool_choice,
            reasoning_effort=first(args.reasoning_effort, base.reasoning_effort),
            thinking_budget=first(args.thinking_budget, base.thinking_budget))
    except ValueError as exc:
        raise invalid_parameter(exc, "run") from None


def _base_urls(targets: Sequence[str], env: Mapping[str, str],
               providers: Mapping[str, ProviderSpec]) -> Iterator[str | None]:
    """Each target's base URL (``None`` for one that cannot be resolved: its call says why)."""
    from workbench.core.registry import resolve
    from workbench.core.request import ModelRef

    for target in targets:
        try:
            yield resolve(ModelRef.parse(target), env, providers).base_url
        except WorkbenchError:
            yield None


def run(args: argparse.Namespace, net: NetworkProcess | None = None) -> int:
    """``workbench run``; ``net`` is the network process when :func:`workbench.cli.main` started it already."""
    if net is None:
        from workbench.core.netproc import NetworkProcess

        net = NetworkProcess()
    try:
        with services(args) as found:
            return _run(args, net, found)
    finally:
        # Without a race (a usage error) the child has nothing to send: it exits by itself once its start-up
        # is over, which this process need not wait for.
        net.close(wait=net.raced)


def _run(args: argparse.Namespace, net: NetworkProcess, found: Services) -> int:
    """The race, with the command's services (settings, target environment, trace writer; closed by the caller:
    the trace log committed, the servers started for the targets stopped)."""
    from workbench.core.netproc import wait_bound
    from workbench.core.network import check_network_tls, uses_tls

    settings = found.settings()
    config = settings.config
    source = _source(args, settings)
    models = [config.expand(m) for m in (args.models or source.targets)] or _default_targets(found)
    if args.save_session:
        from workbench.core.prompts import check_name

        check_name(args.save_session)
        workspace = _workspace(settings)
    args.fallback = [config.expand(m) for m in args.fallback]
    request = replace(source.request, params=_params(args, config, source.request.params))
    from workbench.core.providers.reasoning import check_targets as check_reasoning

    check_reasoning(request.params, [*models, *args.fallback], config.provider_specs())
    if args.cache_breakpoints or args.cache_ttl:
        from workbench.core.cache_breakpoints import with_breakpoints

        request = with_breakpoints(request, args.cache_breakpoints, args.cache_ttl)
    if args.images or args.image_detail or any(m.attachments for m in request.messages):
        from workbench.core.attachments import load_attachments
        from workbench.core.providers.attachments import check_targets

        request = request.with_attachments(load_attachments(args.images, detail=args.image_detail))
        check_targets(request, [*models, *args.fallback], config.provider_specs())
    prompt = source.prompt
    policies = _policies(args, settings.policies, models, settings)
    network = settings.network(os.environ, check_tls=False)  # checked once the request is on its way
    for warning in network.warnings():
        print(warning, file=sys.stderr)
    env = found.target_env([*models, *args.fallback])
    from workbench.core.traces.context import CallContext
    from workbench.services import CallTracer

    context = CallContext(prompt_name=prompt.name if prompt else None,
                          prompt_version=prompt.version if prompt else None,
                          session_id=args.save_session or source.session, tags=tuple(args.tag))
    tracer = CallTracer(None if args.no_trace else found, context, len(models),
                        lambda exc: print(f"workbench: calls not traced: {exc}", file=sys.stderr))
    race = net.race(request, models, env, policies, settings.prices, config.provider_specs(), network,
                    on_settled=tracer)
    resume_collection()
    # The request is on its way: what the rest needs loads now, while the streams run.
    if not args.no_trace:
        found.open_writer_soon()
    bound = wait_bound(policies, models, request)  # past it something is stuck: never wait forever
    try:
        if uses_tls(network, _base_urls([*models, *args.fallback], env, config.provider_specs())):
            check_network_tls(network)
    except WorkbenchError:  # a CA bundle or certificate that does not load: the race fails too; trace it, say which
        race.wait(bound)
        raise
    console = None if args.json else _console()
    stuck = None
    with _terminate_as_interrupt():
        try:
            if console is None or not console.is_terminal:
                finished = race.wait(bound)
            else:
                from rich.live import Live

                from workbench.cli.render import race_columns

                height = max(console.size.height - 6, 4)
                with Live(get_renderable=lambda: race_columns(race.records, height), console=console,
                          refresh_per_second=15, transient=True):
                    finished = race.wait(bound)
            if not finished:
                stuck = f"no result within {bound:.0f} s (the policies' timeouts and retries); see {net.log_path}"
                race.cancel()
                if not race.wait(timeout=5):
                    race.abandon(stuck)
        except KeyboardInterrupt as interrupt:
            race.cancel()  # the calls still streaming end as cancelled, their partial output traced
            if not race.wait(timeout=5):
                race.abandon("interrupted")
            _print_records(args, race.records, _written(found, tracer.ids), context, console)
            print("interrupted", file=sys.stderr)
            return EXIT_TERMINATED if isinstance(interrupt, _Terminated) else EXIT_INTERRUPTED
    net.close(wait=False)  # every record is here: the child exits while the last calls are committed
    if race.failure or stuck:
        print(f"workbench: {race.failure or stuck}", file=sys.stderr)
    ids = _written(found, tracer.ids)
    _print_records(args, race.records, ids, context, console)
    if prompt and not args.json:
        assert console is not None
        console.print(f"[dim]prompt {prompt.name} v{prompt.version}[/dim]")
    if args.save_session:
        from workbench.core.sessions import save_session, session_from_race

        session = session_from_race(args.save_session, request, models, race.records, prompt=prompt,
                                    variables=source.variables, trace_ids=ids)
        path = save_session(workspace, session, settings.redactor())
        print(f"session saved: {relative(path, workspace)}", file=sys.stderr)
    untraced = not args.no_trace and None in ids  # (said on stderr by the writer, or as the log would not open)
    return EXIT_FAILED if untraced or any(r.error is not None for r in race.records) else EXIT_OK


def _written(found: Services, ids: list[str | None]) -> list[str | None]:
    """The calls' trace ids once committed, ``None`` for a call the trace log could not store."""
    return found.writer().confirm(ids) if any(ids) else ids


def _default_targets(found: Services) -> list[str]:
    """The targets of a run that names none (see core/targets.py), saying so on stderr when they were picked."""
    chosen = found.default_targets()
    if chosen.notice:
        print(f"workbench: {chosen.notice}", file=sys.stderr)
    return chosen.targets


def _console() -> Console:
    from workbench.cli._shared import console

    return console()


class _Terminated(KeyboardInterrupt):
    """SIGTERM (what CI runners and ``timeout`` send), handled like Ctrl-C."""


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """While the race runs, SIGTERM interrupts it as Ctrl-C does: the finished calls are traced, the others
    cancelled and traced with what they streamed, and the results printed."""
    def terminated(signum: int, frame: object) -> None:
        raise _Terminated

    try:
        previous = signal.signal(signal.SIGTERM, terminated)
    except ValueError:  # not the main thread (the command called from a test's thread): no handler
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print_records(args: argparse.Namespace, records: Sequence[CallRecord], ids: Sequence[str | None],
                   context: CallContext, console: Console | None) -> None:
    """The results: one JSON line per call with --json (also when interrupted), else the table."""
    if args.json:
        from workbench.core.call_record import summary

        origin = {"prompt": context.prompt_name, "prompt_version": context.prompt_version}
        for record, call_id in zip(records, ids, strict=True):
            print(json.dumps({**summary(record), "trace_id": call_id, **origin}, ensure_ascii=False), flush=True)
    else:
        from workbench.cli.render import race_columns

        (console or _console()).print(race_columns(records))


def _hedge_at_p95(policies: PolicySet, models: Sequence[str], settings: Settings) -> PolicySet:
    """Per-target hedge deadlines at each target's p95 TTFT in the trace log (no history: no hedge)."""
    from workbench.core.traces.filters import Filters
    from workbench.core.traces.store import TraceStore

    path = settings.trace_path(os.environ)
    if not path.exists():
        return policies
    store = TraceStore(path)
    try:
        overrides = dict(policies.overrides)
        for target in models:
            rows = store.stats("model", Filters(model=target, status="ok"))
            p95 = rows[0]["ttft_p95_ms"] if rows else None
            if p95:
                overrides[target] = {**overrides.get(target, {}), "hedge_after_ms": p95}
    finally:
        store.close()
    return replace(policies, overrides=overrides)


def _policies(args: argparse.Namespace, policies: PolicySet, models: Sequence[str], settings: Settings) -> PolicySet:
    """The configured policies with the command-line flags on top."""
    from workbench.core.bounds import FieldError

    flags: dict[str, object] = {}
    if args.fallback:
        flags["fallbacks"] = tuple(args.fallback)
    if args.hedge_ms is not None and args.hedge_ms != "p95":
        try:
            flags["hedge_after_ms"] = float(args.hedge_ms)
        except ValueError:
            raise WorkbenchError(f"--hedge-ms {args.hedge_ms}: not a number", "give milliseconds, or p95") from None
    if args.timeout_ttft_ms is not None:
        flags["timeouts"] = {"ttft": args.timeout_ttft_ms / 1000}
    if args.retries is not None:
        flags["retry"] = {"max_retries": args.retries}
    try:
        policies = policies.with_defaults(**flags)
        if args.hedge_ms == "p95":
            policies = _hedge_at_p95(policies, models, settings)
        return policies
    except FieldError as exc:
        raise WorkbenchError(f"invalid option {exc}", "see `workbench run --help`") from None
