"""The headless face: ``workbench run``, ``workbench fake-server``. Thin: parsing and printing only."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from workbench import __version__
from workbench.core.errors import WorkbenchError

if TYPE_CHECKING:
    from rich.console import Console

    from workbench.core.call_record import CallRecord
    from workbench.core.config import Config, Settings
    from workbench.core.netproc import NetworkProcess
    from workbench.core.policy import PolicySet
    from workbench.core.registry import ProviderSpec
    from workbench.core.request import ChatRequest, Params
    from workbench.core.sessions import PromptRef
    from workbench.core.traces.writer import CallContext, TraceWriter

# `workbench run` imports little before its request is out (the other commands' modules, rich, the trace
# store, tokenizers and price data come later or not at all) and starts its network process first, so
# that the child's start-up overlaps this one's: see bench/startup.py and BENCHMARKS.md.

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _parser(run_only: bool = False) -> argparse.ArgumentParser:
    """The command line; with ``run_only`` just ``workbench run`` (its help and errors are the same), which
    spares importing every other command's module."""
    parser = argparse.ArgumentParser(prog="workbench", description="A terminal workbench for LLM engineers.")
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="stream one prompt to several models at once and compare them",
                         description="Stream one prompt to every -m target at once (a race).")
    run.add_argument("prompt", nargs="?", help="the prompt text; '-' or omitted with piped input reads stdin")
    run.add_argument("-f", "--file", help="read the prompt from this file")
    run.add_argument("--prompt", dest="prompt_ref", metavar="NAME[@VERSION|@LABEL]",
                     help="run a prompt file of the workspace with its targets and params (flags and -m override "
                          "them); NAME alone saves the file as a new version first if it changed")
    run.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                     help="a value for a {{variable}} of --prompt (repeatable; the prompt's defaults fill the rest)")
    run.add_argument("--session", metavar="FILE",
                     help="run a saved session again: its request against its targets (or -m)")
    run.add_argument("--save-session", metavar="NAME", help="save the race as sessions/NAME.yaml in the workspace")
    run.add_argument("-m", "--model", dest="models", action="append", default=[], metavar="PROVIDER/MODEL",
                     help="a target such as openai/gpt-4.1-mini, or an alias (repeat for a race; default: the "
                          "configuration's [defaults] targets, else a small model per provider with a key, else "
                          "local/smollm2-135m and local servers)")
    run.add_argument("-s", "--system", help="system prompt")
    run.add_argument("--max-tokens", type=int, help="output token limit (default: a per-model default)")
    run.add_argument("--temperature", type=float)
    run.add_argument("--top-p", type=float)
    run.add_argument("--seed", type=int)
    run.add_argument("--stop", action="append", default=[], help="stop sequence (repeatable)")
    run.add_argument("--json", action="store_true", help="print one JSON object per target, one per line")
    run.add_argument("--fallback", action="append", default=[], metavar="PROVIDER/MODEL",
                     help="try this target when a call fails for good (repeatable, in order)")
    run.add_argument("--hedge-ms", metavar="N|p95",
                     help="start the request on the first fallback too if no token arrived after N ms; p95: "
                          "after the target's p95 TTFT in the trace log")
    run.add_argument("--timeout-ttft-ms", type=float, metavar="N", help="first-token timeout")
    run.add_argument("--retries", type=int, metavar="N", help="retries per target for transient failures")
    run.add_argument("--tag", action="append", default=[], help="tag the calls in the trace log (repeatable)")
    run.add_argument("--no-trace", action="store_true", help="do not write the calls to the trace log")
    run.add_argument("--config", metavar="FILE", help="the workspace configuration (default: the nearest "
                                                       "workbench.toml up from here, if any)")
    if run_only:
        return parser

    from workbench import eval_cli, export_cli, keys_cli, prompts_cli, sessions_cli, traces_cli, workspace_cli

    tokens = sub.add_parser("tokens", help="count input tokens and estimate cost per model, offline",
                            description="Count a prompt's tokens and estimate its cost on each -m target.")
    tokens.add_argument("file", nargs="?", default="-", help="the prompt file ('-' or omitted: stdin)")
    tokens.add_argument("-m", "--model", dest="models", action="append", required=True, metavar="PROVIDER/MODEL")
    tokens.add_argument("-s", "--system", help="system prompt")
    tokens.add_argument("--max-tokens", type=int, help="output bound for the cost range (default: per model)")
    tokens.add_argument("--raw", action="store_true", help="count plain text, not one chat message")
    tokens.add_argument("--offline", action="store_true",
                        help="never ask a provider's count endpoint (Anthropic, Gemini, vLLM, llama.cpp)")
    tokens.add_argument("--json", action="store_true", help="one JSON object per target, one per line")
    tokens.add_argument("--config", metavar="FILE", help="the workspace configuration (default: the nearest "
                                                          "workbench.toml up from here, if any)")

    traces_cli.add_parser(sub)
    keys_cli.add_parser(sub)
    prompts_cli.add_parser(sub)
    sessions_cli.add_parser(sub)
    export_cli.add_parser(sub)
    workspace_cli.add_parsers(sub)
    eval_cli.add_parsers(sub)

    fake = sub.add_parser("fake-server", help="serve the fake provider (all five wire formats) for tests and demos")
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=8765)
    fake.add_argument("--rpm", type=float, help="enforce this many requests per minute (429 beyond it)")
    fake.add_argument("--tpm", type=float, help="enforce this many tokens per minute (input + max_tokens)")
    fake.add_argument("--burst-s", type=float, default=1.0, help="bucket size, in seconds of the rate")
    return parser


def _read_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise WorkbenchError(f"cannot read {path}: {exc.strerror}", "check the path") from None
    except UnicodeDecodeError:
        raise WorkbenchError(f"cannot read {path}: it is not UTF-8 text", "convert it to UTF-8") from None


def _read_prompt(args: argparse.Namespace) -> str:
    if args.file:
        return _read_file(args.file)
    if args.prompt not in (None, "-"):
        return str(args.prompt)
    if args.prompt == "-" or not sys.stdin.isatty():
        return sys.stdin.read()
    raise WorkbenchError("no prompt given", "pass it as an argument, with --file PATH, or on stdin")


def _settings(args: argparse.Namespace) -> Settings:
    from workbench.core.config import load_settings

    return load_settings(Path(args.config) if args.config else None)


@contextlib.contextmanager
def _target_env(models: Sequence[str], providers: Mapping[str, ProviderSpec]) -> Iterator[dict[str, str]]:
    """The environment targets resolve against: the process's, plus keyring keys for the providers in use,
    plus the URLs of the fake server and of the local model server (child processes started here) when
    targets need them and no URL is set."""
    from workbench.core.keys import with_stored_keys
    from workbench.core.local_model import LOCAL_URL_ENV, local_models, local_server

    env = with_stored_keys(os.environ, sorted({m.strip().partition("/")[0].lower() for m in models}), providers)
    with contextlib.ExitStack() as servers:
        if not env.get("WORKBENCH_FAKE_URL") and any(m.strip().lower().startswith("fake") for m in models):
            from workbench.fakeserver.process import fake_server_process

            env["WORKBENCH_FAKE_URL"] = servers.enter_context(fake_server_process()).base_url
        local = local_models(models)
        if local and not env.get(LOCAL_URL_ENV):
            env[LOCAL_URL_ENV] = servers.enter_context(local_server(local))
        yield env


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
        from workbench import prompts_cli
        from workbench.core.prompts import pin, to_request, variable_values
        from workbench.core.sessions import PromptRef

        prompt, version = pin(_workspace(settings), args.prompt_ref)
        given = prompts_cli.variables(args.var)
        return _Source(to_request(prompt, given), list(prompt.targets),
                       PromptRef(name=prompt.name, version=version.number), variable_values(prompt, given))
    return _Source(ChatRequest.from_prompt(_read_prompt(args), system=args.system), [])


def _workspace(settings: Settings) -> Path:
    from workbench import prompts_cli

    return settings.workspace or prompts_cli.workspace_dir()


def _params(args: argparse.Namespace, config: Config, base: Params) -> Params:
    """The flags over the request's own params (a prompt's, a session's) over the configuration's defaults."""
    from workbench.core.request import Params

    def first(*values: object) -> object:
        return next((v for v in values if v is not None), None)

    try:
        return Params.model_validate({
            "max_tokens": first(args.max_tokens, base.max_tokens, config.defaults.max_tokens),
            "temperature": first(args.temperature, base.temperature, config.defaults.temperature),
            "top_p": first(args.top_p, base.top_p), "seed": first(args.seed, base.seed),
            "stop": tuple(args.stop) or base.stop, "json_schema": base.json_schema})
    except ValueError as exc:
        raise WorkbenchError(f"invalid parameter: {exc}", "see `workbench run --help`") from None


def _cmd_run(args: argparse.Namespace, net: NetworkProcess | None = None) -> int:
    """``workbench run``; ``net`` is the network process when :func:`main` started it already."""
    if net is None:
        from workbench.core.netproc import NetworkProcess

        net = NetworkProcess()
    try:
        return _run(args, net)
    finally:
        # Without a race (a usage error) the child has nothing to send: it exits by itself once its start-up
        # is over, which this process need not wait for.
        net.close(wait=net.raced)


def _run(args: argparse.Namespace, net: NetworkProcess) -> int:
    from workbench.core.netproc import wait_bound

    settings = _settings(args)
    config = settings.config
    source = _source(args, settings)
    models = [config.expand(m) for m in (args.models or source.targets)] or _default_targets(settings)
    if args.save_session:
        from workbench.core.prompts import check_name

        check_name(args.save_session)
        workspace = _workspace(settings)
    args.fallback = [config.expand(m) for m in args.fallback]
    request = source.request.model_copy(update={"params": _params(args, config, source.request.params)})
    prompt = source.prompt
    policies = _policies(args, settings.policies, models, settings)
    network = settings.network(os.environ)
    for warning in network.warnings():
        print(warning, file=sys.stderr)
    traces: _TraceLog | None = None
    try:
        with _target_env([*models, *args.fallback], config.provider_specs()) as env:
            race = net.race(request, models, env, policies, settings.prices, config.provider_specs(), network)
            _resume_gc()
            # The request is on its way: what the rest needs loads now, while the streams run.
            traces = None if args.no_trace else _TraceLog(settings)
            console = None if args.json else _console()
            bound = wait_bound(policies, models, request)  # past it something is stuck: never wait forever
            stuck = None
            try:
                if console is None or not console.is_terminal:
                    finished = race.wait(bound)
                else:
                    from rich.live import Live

                    from workbench.console import race_columns

                    height = max(console.size.height - 6, 4)
                    with Live(get_renderable=lambda: race_columns(race.records, height), console=console,
                              refresh_per_second=15, transient=True):
                        finished = race.wait(bound)
                if not finished:
                    stuck = f"no result within {bound:.0f} s (the policies' timeouts and retries); see {net.log_path}"
                    race.cancel()
                    if not race.wait(timeout=5):
                        race.abandon(stuck)
            except KeyboardInterrupt:
                race.cancel()
                if not race.wait(timeout=5):
                    race.abandon("interrupted")
                from workbench.console import race_columns

                (console or _console()).print(race_columns(race.records))
                print("interrupted", file=sys.stderr)
                return EXIT_INTERRUPTED
            net.close(wait=False)  # every record is here: the child exits while the calls are traced
        if race.failure or stuck:
            print(f"workbench: {race.failure or stuck}", file=sys.stderr)
        from workbench.core.call_record import summary
        from workbench.core.traces.writer import CallContext

        context = CallContext(prompt_name=prompt.name if prompt else None,
                              prompt_version=prompt.version if prompt else None,
                              session_id=args.save_session or source.session, tags=tuple(args.tag))
        ids = _trace(race.records, traces, context)
    finally:
        if traces is not None:
            traces.close()
    if args.json:
        origin = {"prompt": context.prompt_name, "prompt_version": context.prompt_version}
        for record, call_id in zip(race.records, ids, strict=True):
            print(json.dumps({**summary(record), "trace_id": call_id, **origin}, ensure_ascii=False))
    else:
        from workbench.console import race_columns

        assert console is not None
        console.print(race_columns(race.records))
        if prompt:
            console.print(f"[dim]prompt {prompt.name} v{prompt.version}[/dim]")
    if args.save_session:
        from workbench import prompts_cli
        from workbench.core.sessions import save_session, session_from_race

        session = session_from_race(args.save_session, request, models, race.records, prompt=prompt,
                                    variables=source.variables, trace_ids=ids)
        path = save_session(workspace, session)
        print(f"session saved: {prompts_cli.relative(path, workspace)}", file=sys.stderr)
    return EXIT_FAILED if any(r.error is not None for r in race.records) else EXIT_OK


def _default_targets(settings: Settings) -> list[str]:
    """The targets of a run that names none (see core/targets.py), saying so on stderr when they were picked."""
    from workbench.core.discovery import discover
    from workbench.core.keys import with_stored_keys
    from workbench.core.targets import default_targets

    specs = settings.config.provider_specs()
    env = with_stored_keys(os.environ, sorted(specs), specs)
    chosen = default_targets(env, settings, lambda: discover(env, specs, settings.network(env)))
    if chosen.notice:
        print(f"workbench: {chosen.notice}", file=sys.stderr)
    return chosen.targets


def _console() -> Console:
    from rich.console import Console

    return Console()


class _TraceLog:
    """The trace log, opened in a thread while the race runs (importing the store and opening it take
    longer than a short stream); :meth:`writer` waits for it. A store that cannot be opened is reported,
    not fatal."""

    def __init__(self, settings: Settings) -> None:
        self._writer: TraceWriter | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._open, args=(settings,), name="workbench-open-traces",
                                        daemon=True)
        self._thread.start()

    def _open(self, settings: Settings) -> None:
        try:
            from workbench.core.traces.writer import TraceWriter

            self._writer = TraceWriter(settings.trace_path(os.environ), settings.redactor())
        except BaseException as exc:  # reported by writer(), in the caller's thread
            self._error = exc

    def writer(self) -> TraceWriter | None:
        self._thread.join()
        if isinstance(self._error, WorkbenchError):
            print(f"workbench: calls not traced: {self._error}", file=sys.stderr)
        elif self._error is not None:
            raise self._error
        return self._writer

    def close(self) -> None:
        """Commit what was written (no result is lost) and close the store."""
        self._thread.join()
        if self._writer is not None:
            self._writer.close()


def _trace(records: Sequence[CallRecord], traces: _TraceLog | None, context: CallContext) -> list[str | None]:
    """Write the calls to the trace log (``traces``; ``None``: --no-trace); committed by ``traces.close()``."""
    writer = None if traces is None else traces.writer()
    if writer is None:
        return [None] * len(records)
    return [writer.write(record, context) for record in records]


def _cmd_tokens(args: argparse.Namespace) -> int:
    from rich.console import Console

    from workbench.console import estimates_table
    from workbench.core.request import ChatRequest, Params
    from workbench.core.tokens.estimate import estimate
    from workbench.core.tokens.provider_counts import provider_counts

    if args.file == "-":
        if sys.stdin.isatty():
            raise WorkbenchError("no prompt given", "pass a file, or pipe the prompt on stdin")
        text = sys.stdin.read()
    else:
        text = _read_file(args.file)
    try:
        params = Params(max_tokens=args.max_tokens)
    except ValueError as exc:
        raise WorkbenchError(f"invalid parameter: {exc}", "see `workbench tokens --help`") from None
    request = ChatRequest.from_prompt(text, system=args.system, params=params)
    settings = _settings(args)
    models = [settings.config.expand(m) for m in args.models]
    providers = settings.config.provider_specs()
    exact = {}
    if not args.offline:
        from workbench.core.keys import with_stored_keys

        env = with_stored_keys(os.environ, sorted({m.partition("/")[0] for m in models}), providers)
        exact = provider_counts(request, models, env, raw=args.raw, providers=providers,
                                network=settings.network(env))
    rows = []
    for target in models:
        try:
            rows.append(estimate(request, target, settings.prices, raw=args.raw, provider_count=exact.get(target)))
        except WorkbenchError as exc:
            raise WorkbenchError(f"{target}: {exc}", exc.hint) from None
    if args.json:
        for row in rows:
            print(json.dumps(row.summary()))
    else:
        Console().print(estimates_table(rows))
    return EXIT_OK


def _cmd_fake_server(args: argparse.Namespace) -> int:
    from workbench.fakeserver import RateLimits, serve

    try:
        limits = RateLimits(args.rpm, args.tpm, args.burst_s) if args.rpm or args.tpm else None
    except ValueError as exc:
        raise WorkbenchError(f"invalid rate limit: {exc}", "give positive numbers") from None
    serve(args.host, args.port, limits)
    return EXIT_OK


def _hedge_at_p95(policies: PolicySet, models: Sequence[str], settings: Settings) -> PolicySet:
    """Per-target hedge deadlines at each target's p95 TTFT in the trace log (no history: no hedge)."""
    from workbench.core.traces.store import Filters, TraceStore

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
    return policies.model_copy(update={"overrides": overrides})


def _policies(args: argparse.Namespace, policies: PolicySet, models: Sequence[str], settings: Settings) -> PolicySet:
    """The configured policies with the command-line flags on top."""
    from pydantic import ValidationError

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
    except ValidationError as exc:
        first = exc.errors()[0]
        raise WorkbenchError(f"invalid option {'.'.join(map(str, first['loc']))}: {first['msg']}",
                             "see `workbench run --help`") from None


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    if words[:1] == ["run"]:
        if argv is None:  # this process is the command
            _pause_gc()
        code = _main_run(words)
        if argv is None:  # ... and it closed and committed all it opened
            _exit_now(code)
        return code
    parser = _parser()
    args = parser.parse_args(words)
    if args.command is None:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):  # piped or scripted: no TUI, the help
            parser.print_help()
            return EXIT_OK
        from workbench.ui.app import run_tui

        return run_tui()
    from workbench import eval_cli, export_cli, keys_cli, prompts_cli, sessions_cli, traces_cli, workspace_cli

    commands = {
        "run": _cmd_run, "tokens": _cmd_tokens, "traces": traces_cli.run, "keys": keys_cli.run,
        "prompts": prompts_cli.run, "init": workspace_cli.init, "config": workspace_cli.config_show,
        "models": workspace_cli.models, "fake-server": _cmd_fake_server,
        "sessions": sessions_cli.run, "export": export_cli.run,
        "eval": eval_cli.run, "evals": eval_cli.runs_command,
    }
    return _dispatch(lambda: commands[args.command](args))


def _main_run(argv: list[str]) -> int:
    """``workbench run``: the network process starts before anything else (its start-up, ~0.2 s of imports,
    then overlaps reading the configuration here), then only the ``run`` parser is built."""
    from workbench.core.netproc import NetworkProcess

    net: NetworkProcess | None = None
    try:
        with contextlib.suppress(WorkbenchError):  # cannot start: _cmd_run says why
            net = NetworkProcess()
        args = _parser(run_only=True).parse_args(argv)
        return _dispatch(lambda: _cmd_run(args, net))
    finally:
        _resume_gc()
        if net is not None:
            net.close(wait=net.raced)


_gc_paused: list[bool] = []


def _pause_gc() -> None:
    """No cyclic collection while the command starts, until its request is out (:func:`_resume_gc`):
    start-up allocates much and frees little, and collecting it costs ~15 % of the imports' time."""
    if gc.isenabled():
        gc.disable()
        _gc_paused.append(True)


def _resume_gc() -> None:
    """Collect again; what start-up made is frozen out of the collections (a first full one would scan
    it all, ~30 ms, just when a short race ends). For the command's own process only: kept until exit."""
    if _gc_paused:
        _gc_paused.clear()
        gc.freeze()
        gc.enable()


def _exit_now(code: int) -> None:
    """Exit without tearing the interpreter down: freeing every module and object of a process that
    imported pydantic, httpx2 and the trace store takes ~0.1 s, after the output is complete. Only for a
    command that has closed what it opened (the network process, the trace log, servers it started)."""
    with contextlib.suppress(OSError, ValueError):  # a reader that went away (`| head`) or a closed stream
        sys.stdout.flush()
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(code)


def _dispatch(command: Callable[[], int]) -> int:
    try:
        return command()
    except WorkbenchError as exc:
        hint = f"\n  hint: {exc.hint}" if exc.hint else ""
        print(f"workbench: {exc}{hint}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
