"""The arguments of ``workbench eval``, ``evals`` and ``load``: the commands that run a suite or a workload. Only
argparse here (see :mod:`.arguments`)."""

from __future__ import annotations

from workbench.cli.argument_parts import (
    CONFIG_HELP,
    MAX_LOAD_WORKERS,
    TEAM_HELP,
    Subparsers,
    number,
    rate,
    regex,
    seconds,
    whole,
)

MAX_CONCURRENCY = 256
"""The most calls ``workbench eval --concurrency`` runs at once."""


def add_eval(sub: Subparsers) -> None:
    run = sub.add_parser("eval", help="run an eval suite over its targets: pre-flight, progress, reports, CI gate",
                         description="Run an eval suite (ours or a promptfooconfig.yaml). Exit codes: 0 passed; "
                                     "1 under the gate or a regression; 2 bad usage; 3 stopped (resumable).")
    run.add_argument("suite", help="the suite file (YAML in evals/, or a promptfooconfig.yaml)")
    run.add_argument("-t", "--target", dest="targets", action="append", default=[], metavar="PROVIDER/MODEL",
                     help="run on this target instead of the suite's (repeatable)")
    run.add_argument("--grader", metavar="PROVIDER/MODEL",
                     help="the judge of model-graded assertions, over the suite's (judge:, "
                          "defaultTest.options.provider): a target, a promptfoo provider id, echo, an http(s) URL or "
                          "file://grader.py; default: the suite's, else the first default target")
    run.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                     help="set a {{variable}} in every test, over the test's own value (repeatable)")
    run.add_argument("--repeat", type=whole(1), metavar="N",
                     help="run every cell N times: a pass rate with a Wilson interval")
    run.add_argument("--concurrency", type=whole(1, MAX_CONCURRENCY), metavar="N",
                     help=f"calls in flight at once, 1 to {MAX_CONCURRENCY} (default: the suite's, else 8)")
    run.add_argument("--max-cost", type=number(0), metavar="USD", help="stop starting calls once this much is spent")
    run.add_argument("--gate", type=number(0, 1), metavar="RATE",
                     help="fail (exit 1) under this pass rate, 0..1 (default: the suite's gate:, else 1: every test)")
    run.add_argument("--compare", metavar="RUN|last",
                     help="diff against this run (last: the suite's previous run); a regression fails the run")
    run.add_argument("--report", action="append", default=[], choices=("md", "json", "junit", "html"),
                     help="write a report (repeatable); printed to stdout when there is no --out")
    run.add_argument("--out", metavar="DIR", help="folder for the reports")
    again = run.add_mutually_exclusive_group()
    again.add_argument("--resume", metavar="RUN", help="continue a stopped run without repeating finished cells")
    again.add_argument("--retry-errors", action="store_true",
                       help="run again only the cells whose call errored in the suite's last run (in that run)")
    run.add_argument("--filter-pattern", type=regex, metavar="REGEX",
                     help="only the tests whose description (else key=value variables) matches")
    run.add_argument("--filter-failing", metavar="RUN|last",
                     help="only the tests that failed or errored in this stored run (last: the suite's last run)")
    run.add_argument("-n", "--filter-first-n", type=whole(1), metavar="N", help="only the first N tests")
    run.add_argument("--filter-providers", "--filter-targets", dest="filter_targets", type=regex, metavar="REGEX",
                     help="only the targets whose provider/model or label matches")
    run.add_argument("-o", "--output", action="append", default=[], metavar="FILE",
                     help="write the results to FILE, in the format of its extension: .json (promptfoo's), .jsonl "
                          "(one result a line, as cells finish), .csv, .yaml (or .txt), .html, .md, .xml (JUnit); "
                          "repeatable; over the suite's outputPath")
    run.add_argument("--exit-code-failed", type=whole(1, 255), metavar="N",
                     help="exit N instead of 1 when the run fails its gate (promptfoo exits 100; a promptfoo "
                          "config also reads PROMPTFOO_FAILED_TEST_EXIT_CODE)")
    run.add_argument("--no-cache", action="store_true",
                     help="neither read nor write the response cache: call every cell")
    run.add_argument("--batch", action="store_true",
                     help="send the cells through the providers' batch APIs (OpenAI, Anthropic) at half the price, "
                          "and wait for them (Ctrl-C leaves them running: `workbench evals resume RUN`); cells of "
                          "targets without one run online")
    run.add_argument("--dry-run", action="store_true", help="print the pre-flight and stop")
    run.add_argument("--sync", action="store_true",
                     help="once the run ends, push it (and everything else not pushed yet) to the team store "
                          "(see `workbench sync`)")
    run.add_argument("--json", action="store_true", help="print the pre-flight and the run summary as JSON lines")
    run.add_argument("--config", metavar="FILE", help=CONFIG_HELP)


def add_evals(sub: Subparsers) -> None:
    runs = sub.add_parser("evals", help="stored eval runs: list, show, resume, cancel, diff",
                          description="Eval runs stored beside the trace log.")
    runs.add_argument("--config", metavar="FILE")
    actions = runs.add_subparsers(dest="evals_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="recent runs, newest first")
    listing.add_argument("--suite", help="only this suite's runs")
    listing.add_argument("--limit", type=whole(1), default=20)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.add_argument("--team", action="store_true", help=TEAM_HELP + "; each run with who pushed it")
    show = actions.add_parser("show", help="a run's report")
    show.add_argument("run", metavar="RUN|last", help="a run id (a unique prefix), or last; team:RUN reads it from "
                                                      "the team store")
    show.add_argument("--format", choices=("md", "json", "junit", "html"), default="md")
    show.add_argument("--team", action="store_true", help=TEAM_HELP)
    resume = actions.add_parser("resume", help="resume a stopped run: wait for its batches (`eval --batch`), "
                                               "collect and grade them, then run what is left")
    resume.add_argument("run", metavar="RUN|last")
    resume.add_argument("--json", action="store_true", help="the batch events and the run summary as JSON lines")
    cancel = actions.add_parser("cancel", help="cancel a stopped run's batches still running at the providers "
                                               "(`evals resume` then collects what they finished)")
    cancel.add_argument("run", metavar="RUN|last")
    cancel.add_argument("--json", action="store_true", help="the batch events as JSON lines")
    diff = actions.add_parser("diff", help="what changed between two runs")
    diff.add_argument("base", metavar="RUN", help="a run id (a unique prefix), or last; team:RUN or local:RUN "
                                                  "picks its store")
    diff.add_argument("head", metavar="RUN|last", help="as BASE")
    diff.add_argument("--json", action="store_true")
    diff.add_argument("--team", action="store_true",
                      help="read both runs from the team store, except one written local:RUN")


def add_load(sub: Subparsers) -> None:
    load = sub.add_parser(
        "load", help="load-test targets with real requests: open-loop arrivals through the call policy, a report",
        description="Send real requests (traced calls, an eval suite's, a prompt's) to the targets on a schedule "
                    "(--rate: open loop, each request sent when due whatever the replies do) or from N workers "
                    "(--concurrency: closed loop), through the configured policy (rate limits, retries, fallbacks). "
                    "Every call is traced with the tag load:RUN. Exit codes: 0 ran to the end; 2 bad usage; "
                    "3 stopped at --max-cost; 130 interrupted (the report is written all the same).")
    load.add_argument("targets", nargs="+", metavar="TARGET", help="provider/model (the requests go to each in turn)")
    pace = load.add_mutually_exclusive_group(required=True)
    pace.add_argument("--rate", type=rate, metavar="R/s", help="arrivals a second (open loop), e.g. 20/s or 600/m")
    pace.add_argument("--times", type=number(0.001, 1000), metavar="K",
                      help="K times the trace log's peak minute of the calls --from-traces (or --prompt) matches "
                           "(open loop)")
    pace.add_argument("--concurrency", type=whole(1, MAX_LOAD_WORKERS), metavar="N",
                      help="N workers, each sending when its previous call ended (closed loop)")
    load.add_argument("--duration", type=seconds, default=60.0, metavar="TIME",
                      help="how long requests are sent, e.g. 60s, 5m (default 60s); calls in flight then finish")
    load.add_argument("--ramp", type=seconds, default=0.0, metavar="TIME",
                      help="rise linearly from 0 to the rate over this long, within the duration (open loop)")
    source = load.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-traces", metavar="FILTER",
                        help="replay traced requests: key=value words, e.g. 'provider=openai tag=prod since=1d' "
                             "(keys: the traces flags; 'all' for every call)")
    source.add_argument("--suite", metavar="SUITE", help="an eval suite's rendered requests (one per test and prompt)")
    source.add_argument("--prompt", metavar="NAME[@VERSION|@LABEL]", help="a prompt file rendered with --var values")
    load.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                      help="a {{variable}} of --prompt or --suite (repeatable)")
    load.add_argument("--max-cost", type=number(0), metavar="USD", help="stop sending once this much is spent")
    load.add_argument("--report", action="append", default=[], metavar="FILE.md|.json|.html",
                      help="write the report to this file, in the format of its extension (repeatable)")
    load.add_argument("--json", action="store_true", help="print the report as JSON (no live view)")
    load.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
