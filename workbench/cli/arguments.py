"""The command line's arguments: one function per command, adding its subparser (those of ``eval``, ``evals`` and
``load`` in :mod:`.arguments_evals`; the value types and help texts they share in :mod:`.argument_parts`).

Kept apart from the commands' modules so that building the parser imports none of them (a command's module
is imported when it runs, see :mod:`workbench.cli`); only argparse here.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from workbench.cli.argument_parts import (
    CONFIG_HELP,
    TEAM_HELP,
    Subparsers,
    call_id,
    number,
    whole,
    workspace_option,
)

REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high")
"""``--reasoning-effort`` values (:data:`workbench.core.request.REASONING_EFFORTS`, not imported: pydantic is slow)."""


class Parser(argparse.ArgumentParser):
    """argparse's parser (its subparsers too), a usage error as one line on stderr and exit 2."""

    has_commands = False
    """Whether it has subcommands; one without is the command that takes the arguments left over."""

    def add_subparsers(self, **kwargs: Any) -> Any:
        self.has_commands = True
        return super().add_subparsers(**kwargs)

    def parse_known_args(  # type: ignore[override]  # typeshed overloads it on the namespace
            self, args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        """An argument the command does not take is refused by the command's own parser, so the hint names
        its help (`workbench run --help`), where the option's right spelling is, not the top level's."""
        parsed, extras = super().parse_known_args(args, namespace)
        if extras and not self.has_commands:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"workbench: {message}\n  hint: see `{self.prog} --help`\n")


def add_cache_breakpoints(parser: argparse.ArgumentParser) -> None:
    """``--cache-breakpoint`` and ``--cache-ttl`` (``run``, ``tokens``)."""
    parser.add_argument("--cache-breakpoint", dest="cache_breakpoints", action="append", default=[],
                        metavar="system|tools|last|N",
                        help="cache the prompt up to here (Anthropic cache_control; repeatable, at most 4): after "
                             "the system prompt, the tools, the last message or message N (1 is the first); other "
                             "providers cache on their own and ignore it")
    parser.add_argument("--cache-ttl", choices=("5m", "1h"), help="how long Anthropic keeps the cached prefix")


def add_image_detail(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image-detail", choices=("low", "high", "auto"),
                        help="OpenAI's image detail for the --image files (low: one fixed-cost pass, counted so)")


def add_tools_and_reasoning(parser: argparse.ArgumentParser) -> None:
    """``--tools``, ``--tool-choice``, ``--reasoning-effort`` and ``--thinking-budget`` (``run``, ``tokens``)."""
    parser.add_argument("--tools", metavar="FILE",
                        help='tools the model may call: a JSON or YAML list in OpenAI\'s function format '
                             '({"type": "function", "function": {"name", "description", "parameters"}})')
    parser.add_argument("--tool-choice", metavar="auto|none|required|NAME",
                        help="whether the model may, must not or must call a tool, or which one (needs --tools)")
    parser.add_argument("--reasoning-effort", choices=REASONING_EFFORTS,
                        help="how hard a reasoning model thinks (a thinking budget on Anthropic and Gemini)")
    parser.add_argument("--thinking-budget", type=whole(0, 1_000_000), metavar="N",
                        help="tokens a reasoning model may think for, 0 for none (an effort on OpenAI)")


def add_run(sub: Subparsers) -> None:
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
    run.add_argument("--continue", dest="continue_from", metavar="TRACE_ID",
                     help="continue a traced call: its request and reply become the history, each tool call "
                          "answered by --tool-result, the prompt (if any) the next user turn; its target by default")
    run.add_argument("--tool-result", action="append", default=[], metavar="CALL_ID=TEXT|@FILE",
                     help="the result of a tool call of the --continue reply (repeatable: one per call)")
    run.add_argument("-m", "--model", dest="models", action="append", default=[], metavar="PROVIDER/MODEL",
                     help="a target such as openai/gpt-4.1-mini, or an alias (repeat for a race; default: the "
                          "configuration's [defaults] targets, else a small model per provider with a key, else "
                          "local/smollm2-135m and local servers)")
    run.add_argument("-s", "--system", help="system prompt")
    run.add_argument("--max-tokens", type=whole(1), help="output token limit (default: a per-model default)")
    run.add_argument("--temperature", type=number(0, 2), help="0 to 2")
    run.add_argument("--top-p", type=number(0, 1), help="above 0, up to 1")
    run.add_argument("--seed", type=int)
    run.add_argument("--stop", action="append", default=[], help="stop sequence (repeatable)")
    run.add_argument("--image", "--attach", dest="images", action="append", default=[], metavar="PATH",
                     help="attach an image (PNG, JPEG, GIF, WEBP) or a PDF to the last user turn (repeatable; "
                          "at most 20 MiB each)")
    add_image_detail(run)
    add_tools_and_reasoning(run)
    add_cache_breakpoints(run)
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
    run.add_argument("--config", metavar="FILE", help=CONFIG_HELP)


def add_tokens(sub: Subparsers) -> None:
    tokens = sub.add_parser("tokens", help="count input tokens and estimate cost per model, offline",
                            description="Count a prompt's tokens and estimate its cost on each -m target.")
    tokens.add_argument("file", nargs="?", default="-", help="the prompt file ('-' or omitted: stdin)")
    tokens.add_argument("-m", "--model", dest="models", action="append", required=True, metavar="PROVIDER/MODEL")
    tokens.add_argument("-s", "--system", help="system prompt")
    tokens.add_argument("--max-tokens", type=whole(1), help="output bound for the cost range (default: per model)")
    tokens.add_argument("--raw", action="store_true", help="count plain text, not one chat message")
    add_tools_and_reasoning(tokens)
    add_cache_breakpoints(tokens)
    tokens.add_argument("--image", "--attach", dest="images", action="append", default=[], metavar="PATH",
                        help="count an attached image or PDF too, by each provider's rule (repeatable)")
    add_image_detail(tokens)
    tokens.add_argument("--offline", action="store_true",
                        help="never ask a provider's count endpoint (Anthropic, Gemini, vLLM, llama.cpp)")
    tokens.add_argument("--json", action="store_true", help="one JSON object per target, one per line")
    tokens.add_argument("--config", metavar="FILE", help=CONFIG_HELP)


def add_fake_server(sub: Subparsers) -> None:
    fake = sub.add_parser("fake-server", help="serve the fake provider (all five wire formats) for tests and demos")
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=8765)
    fake.add_argument("--rpm", type=float, help="enforce this many requests per minute (429 beyond it)")
    fake.add_argument("--tpm", type=float, help="enforce this many tokens per minute (input + max_tokens)")
    fake.add_argument("--burst-s", type=float, default=1.0, help="bucket size, in seconds of the rate")


def add_sync(sub: Subparsers) -> None:
    sync = sub.add_parser("sync", help="push local traces, eval runs and prompt versions to the team store "
                                       "(PostgreSQL) and pull the team's",
                          description="The team store: [team] url in workbench.toml or WORKBENCH_TEAM_URL, the "
                                      "password in the keyring (workbench keys set team) or PGPASSFILE. Both ways "
                                      "unless --push or --pull. Exit codes: 0 synced; 1 the server unreachable or "
                                      "the connection cut (sync again: nothing is sent twice); 2 bad configuration.")
    way = sync.add_mutually_exclusive_group()
    way.add_argument("--push", action="store_true", help="only send what is local")
    way.add_argument("--pull", action="store_true", help="only bring the team's rows into the local cache (team/)")
    sync.add_argument("--since", metavar="WHEN",
                      help="only calls and runs started since then (ISO date/time, or an age such as 2h, 7d): a "
                           "one-off sync of that window, which neither reads nor moves the sync marks")
    sync.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    sync.add_argument("--config", metavar="FILE", help=CONFIG_HELP)


def add_proxy(sub: Subparsers) -> None:
    proxy = sub.add_parser("proxy", help="capture your application's LLM calls: a local endpoint per provider, traced",
                           description="Forward /<provider>/... (e.g. /openai/v1, /anthropic) to the provider's "
                                       "configured base URL and trace every chat call. Ctrl-C stops it.")
    proxy.add_argument("--host", default="127.0.0.1", help="the interface to listen on (loopback by default)")
    proxy.add_argument("--port", type=int, default=8787, help="the port (0: any free port)")
    proxy.add_argument("--allow-remote", action="store_true",
                       help="listen on an interface other than loopback; every request must then carry the proxy "
                            "token (X-Workbench-Token or Proxy-Authorization: Bearer)")
    proxy.add_argument("--token", metavar="TOKEN",
                       help="the proxy token (default: WORKBENCH_PROXY_TOKEN; with --allow-remote and neither, one "
                            "is generated and printed once); given on loopback, it is required there too")
    proxy.add_argument("--use-keyring-keys", action="store_true",
                       help="add the provider's key (environment, else keyring) to a request that carries none "
                            "(also [proxy] use_keyring = true); off by default: only the application's own key goes")
    proxy.add_argument("--resilient", action="append", default=[], metavar="ROUTE",
                       help="apply the [policy] (retries honouring Retry-After, fallbacks on the same provider, rate "
                            "limits, circuit breaker) to this route's chat calls before the first byte goes to the "
                            "application, e.g. --resilient openai (repeatable; also [proxy.routes.NAME] policy = "
                            "\"resilient\"); the others pass through")


def add_export(sub: Subparsers) -> None:
    export = sub.add_parser("export", help="export a prompt version or a session to a repo (optionally as one git "
                                           "commit), or print ready-to-run code for a prompt",
                            description="Export workspace artefacts to a repository folder, or print code.")
    workspace_option(export)
    actions = export.add_subparsers(dest="export_command", metavar="WHAT", required=True)
    prompt = actions.add_parser("prompt", help="DIR/prompts/NAME.yaml (the version's exact content) and "
                                               "NAME.meta.json (version, hash, labels)")
    prompt.add_argument("ref", metavar="NAME[@VERSION|@LABEL]",
                        help="NAME alone: the working file, saved as a version first if it changed")
    session = actions.add_parser("session", help="DIR/sessions/NAME.yaml")
    session.add_argument("file", metavar="FILE", help="a session file, or the name of one in sessions/")
    report = actions.add_parser("report", help="DIR/evals/reports/SUITE.md (and .json, .xml, .html): an eval "
                                               "run's report at one stable path per suite")
    report.add_argument("run", metavar="RUN|last", help="an eval run id (see `workbench evals list`), or last")
    report.add_argument("--format", dest="formats", action="append", choices=("md", "json", "junit", "html"),
                        help="repeatable (default: md and json)")
    report.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    for parser in (prompt, session, report):
        parser.add_argument("--to", required=True, metavar="DIR", help="the destination folder (a repository)")
        parser.add_argument("--commit", action="store_true",
                            help="make one git commit of exactly the exported files (none if nothing changed)")
    code = actions.add_parser("code", help="print a ready-to-run request for a prompt (Python or curl)")
    code.add_argument("ref", metavar="NAME[@VERSION|@LABEL]")
    code.add_argument("--target", metavar="PROVIDER/MODEL",
                      help="default: the prompt's first target, else the configuration's first default target")
    code.add_argument("--lang", choices=("python", "curl"), default="python")
    code.add_argument("--sdk", action="store_true",
                      help="Python with the official SDK (openai, anthropic) instead of httpx2")
    code.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                      help="a value for a {{variable}} (repeatable; the prompt's defaults fill the rest)")
    code.add_argument("--image", "--attach", dest="images", action="append", default=[], metavar="PATH",
                      help="attach an image or PDF to the last user turn (repeatable): the code reads it from its path")
    add_image_detail(code)


def add_keys(sub: Subparsers) -> None:
    keys = sub.add_parser("keys", help="store, list, delete and test API keys (OS keyring)",
                          description="API keys live in the OS keyring (service 'workbench'); "
                                      "an environment variable overrides a stored key.")
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    setter = actions.add_parser("set", help="store a key (asked for with hidden input)")
    setter.add_argument("provider", help="a provider, or `team`: the team store's password (workbench sync)")
    setter.add_argument("--stdin", action="store_true", help="read the key from stdin (for scripts)")
    listing = actions.add_parser("list", help="where each provider's key comes from, masked")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    deleter = actions.add_parser("delete", help="remove a stored key")
    deleter.add_argument("provider")
    tester = actions.add_parser("test", help="make a cheap authenticated call (list models)")
    tester.add_argument("provider")
    tester.add_argument("--json", action="store_true")


def add_prompts(sub: Subparsers) -> None:
    prompts = sub.add_parser("prompts", help="create, list, version, diff, label and restore the workspace's prompt "
                                             "files",
                             description="Prompt files: one YAML file per prompt in the workspace's prompts/ folder.")
    workspace_option(prompts)
    actions = prompts.add_subparsers(dest="prompts_command", metavar="ACTION", required=True)
    new = actions.add_parser("new", help="start a prompt file: prompts/NAME.yaml (an existing one is refused)")
    new.add_argument("name")
    new.add_argument("--system", metavar="TEXT", help="the system prompt ({{variables}} allowed)")
    new.add_argument("--user", metavar="TEXT", help="the user message (default: {{input}})")
    new.add_argument("-m", "--model", dest="models", action="append", default=[], metavar="TARGET",
                     help="a target the prompt runs on: provider/model or an alias (repeatable)")
    listing = actions.add_parser("list", help="every prompt, with its saved version and labels")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = actions.add_parser("show", help="a prompt's file, or one of its versions")
    show.add_argument("ref", metavar="NAME[@REF]", help="name (the working file), name@3 or name@production")
    listed = actions.add_parser("versions", help="a prompt's versions and labels")
    listed.add_argument("name")
    listed.add_argument("--json", action="store_true", help="one JSON object per line")
    diff = actions.add_parser("diff", help="word-level diff between two versions")
    diff.add_argument("name")
    diff.add_argument("a", help="a version number or label")
    diff.add_argument("b", help="a version number or label")
    restore = actions.add_parser("restore", help="write a version back to the prompt's file")
    restore.add_argument("name")
    restore.add_argument("number", type=int)
    label = actions.add_parser("label", help="point a label (production, staging, ...) at a version")
    label.add_argument("name")
    label.add_argument("label")
    label.add_argument("number", type=int)
    save = actions.add_parser("save", help="save the prompt's file as a new version (if its content changed)")
    save.add_argument("name")


def add_sessions(sub: Subparsers) -> None:
    sessions = sub.add_parser("sessions", help="list and show saved races (workbench run --save-session NAME)",
                              description="Sessions: races saved as YAML in the workspace's sessions/ folder. "
                                          "Run one again with `workbench run --session FILE`.")
    workspace_option(sessions)
    actions = sessions.add_subparsers(dest="sessions_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every session: its prompt, targets and outcome")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    show = actions.add_parser("show", help="a session file")
    show.add_argument("file", metavar="FILE", help="a session file, or the name of one in sessions/")


def add_traces(sub: Subparsers) -> None:
    traces = sub.add_parser("traces", help="browse, search, summarise, export, prune, check and recover the trace log",
                            description="The trace log: every call, in a local SQLite store.")
    traces.add_argument("--db", metavar="PATH", help="the store (default: the workspace's, or WORKBENCH_TRACES)")
    actions = traces.add_subparsers(dest="traces_command", metavar="ACTION", required=True)

    def with_filters(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--provider")
        p.add_argument("--model", help="provider/model as called")
        p.add_argument("--status", choices=("ok", "error"))
        p.add_argument("--prompt", help="prompt name")
        p.add_argument("--prompt-version", type=int)
        p.add_argument("--tag")
        p.add_argument("--session")
        p.add_argument("--eval-run")
        p.add_argument("--since", help="ISO date/time, or an age such as 2h, 7d")
        p.add_argument("--until", help="ISO date/time, or an age such as 30m")
        p.add_argument("--min-cost", type=float, metavar="USD")
        p.add_argument("--min-latency-ms", type=float)
        p.add_argument("--json", action="store_true", help="one JSON object per line")
        return p

    listing = with_filters(actions.add_parser("list", help="the newest calls, a page at a time"))
    listing.add_argument("-n", "--limit", type=whole(1), default=50)
    listing.add_argument("--before", metavar="ID", type=call_id,
                         help="the page after this id (keyset paging: the last id of the page before)")
    listing.add_argument("--team", action="store_true", help=TEAM_HELP + "; each call with who pushed it")
    tail = with_filters(actions.add_parser("tail", help="each call as it is written (Ctrl-C stops)",
                                           description="Follow the trace log: print each matching call as it is "
                                                       "written, by this or any other process (workbench proxy, a "
                                                       "run elsewhere), until Ctrl-C."))
    tail.add_argument("-n", "--last", type=whole(0), default=0, metavar="N", help="print the last N calls first")
    show = actions.add_parser("show", help="one call in full")
    show.add_argument("id", help="a call id (a unique prefix is enough)")
    show.add_argument("--json", action="store_true")
    search = with_filters(actions.add_parser("search", help="full-text search over prompts and replies"))
    search.add_argument("text", help="the words to find, each as written (all of them, in any order)")
    search.add_argument("--fts", action="store_true",
                        help="TEXT is an SQLite FTS5 query: AND, OR, NOT, NEAR(a b), \"phrases\", prefix*")
    search.add_argument("-n", "--limit", type=whole(1), default=50)
    search.add_argument("--team", action="store_true", help=TEAM_HELP + "; each call with who pushed it")
    stats = with_filters(actions.add_parser("stats", help="spend, calls, p50/p95 TTFT and latency per group"))
    stats.add_argument("--by", default="model",
                       choices=("day", "model", "provider", "prompt", "prompt-version", "tag", "status", "user",
                                "host"),
                       help="the grouping (user and host, who pushed the calls: with --team)")
    stats.add_argument("--team", action="store_true", help=TEAM_HELP)
    export = with_filters(actions.add_parser(
        "export", help="every matching call, as JSONL or CSV, or as OpenTelemetry spans to a collector",
        epilog="--otlp sends one span per call (OpenTelemetry GenAI conventions) to an OTLP/HTTP endpoint, e.g. "
               "http://localhost:4318 or Langfuse's https://HOST/api/public/otel; credentials go in "
               "OTEL_EXPORTER_OTLP_HEADERS (e.g. Authorization=Basic%20...). No prompt or reply text is sent "
               "without --otlp-content."))
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    export.add_argument("-o", "--out", metavar="FILE", help="write here instead of stdout")
    export.add_argument("--otlp", metavar="URL",
                        help="send the calls as OTLP spans to this OTLP/HTTP endpoint (a base URL gets /v1/traces)")
    export.add_argument("--otlp-content", action="store_true",
                        help="with --otlp: include prompt and reply text (off by default: no text leaves the machine)")
    export.add_argument("--otlp-gzip", action="store_true", help="with --otlp: gzip the requests")
    export.add_argument("--otlp-timeout", type=float, default=10.0, metavar="S",
                        help="with --otlp: seconds to wait for each request (default 10)")
    export.add_argument("--otlp-batch", type=int, default=512, metavar="N",
                        help="with --otlp: spans per request (default 512)")
    prune = actions.add_parser("prune", help="delete calls older than a date or an age")
    prune.add_argument("--before", required=True, help="ISO date/time, or an age such as 30d")
    actions.add_parser("check", help="check the store for damage (SQLite's integrity check and the search index's)",
                       description="Check the store, read-only: exit 0 when it is whole, 1 when it is damaged.")
    recover = actions.add_parser("recover", help="copy what can still be read of a damaged store into a new one",
                                 description="Make a new store holding every call that can still be read; the "
                                             "store itself is left as it was.")
    recover.add_argument("--to", required=True, metavar="NEW.db", help="the new store (must not exist)")


def add_init(sub: Subparsers) -> None:
    init = sub.add_parser("init", help="make a workspace: workbench.toml, prompts/, evals/, sessions/, reports/")
    init.add_argument("dir", nargs="?", default=".")


def add_config(sub: Subparsers) -> None:
    config = sub.add_parser("config", help="the merged configuration and where each part comes from")
    actions = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="print the merged configuration with its sources")
    show.add_argument("--config", metavar="FILE")
    show.add_argument("--json", action="store_true")


def add_models(sub: Subparsers) -> None:
    models = sub.add_parser("models", help="every available target: configured, aliased, the local model, local "
                                           "servers found and the cloud providers' current models, with key "
                                           "status, context window and prices")
    models.add_argument("--config", metavar="FILE")
    models.add_argument("--json", action="store_true", help="one JSON object per line")


