"""Which of a suite's tests and targets a run takes: promptfoo's ``--filter-*`` options.

Tests are filtered in promptfoo's order: those that failed in an earlier run (``failing``), those whose name
matches a pattern, then the first N. Targets are those whose reference or label matches a pattern.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Sequence

from workbench.core.errors import ConfigError
from workbench.core.evals.model import Suite, SuiteTarget, TestCase


@dataclasses.dataclass(frozen=True, slots=True)
class Selection:
    pattern: re.Pattern[str] | None = None
    """``--filter-pattern``: tests whose name (description, else their variables) matches."""
    first_n: int | None = None
    """``--filter-first-n``: the first N tests (after the other test filters)."""
    failing: Collection[str] | None = None
    """``--filter-failing``: the keys of the tests that failed or errored in a stored run."""
    targets: re.Pattern[str] | None = None
    """``--filter-providers`` / ``--filter-targets``: targets whose reference or label matches."""


def selected_tests(tests: Sequence[TestCase], selection: Selection) -> tuple[TestCase, ...]:
    chosen = list(tests)
    if selection.failing is not None:
        chosen = [test for test in chosen if test.key in selection.failing]
    if selection.pattern is not None:
        pattern = selection.pattern
        chosen = [test for test in chosen if pattern.search(test.key)]
    if selection.first_n is not None:
        chosen = chosen[: selection.first_n]
    return tuple(chosen)


def selected_targets(targets: Sequence[SuiteTarget], pattern: re.Pattern[str]) -> tuple[SuiteTarget, ...]:
    return tuple(t for t in targets if pattern.search(t.ref) or pattern.search(t.label))


def select(suite: Suite, selection: Selection) -> Suite:
    """``suite`` with the tests and targets ``selection`` keeps; a :class:`ConfigError` when a pattern keeps no
    target, or no test."""
    tests = selected_tests(suite.tests, selection)
    if not tests:
        raise ConfigError(f"{suite.path}: no test is left by the --filter-* options",
                          "tests are matched by their description (else their variables, as key=value); "
                          "--filter-failing keeps those of its run still in the suite")
    kept = suite.targets
    if selection.targets is not None:
        kept = selected_targets(kept, selection.targets)
        if not kept:
            raise ConfigError(f"{suite.path}: no target matches --filter-providers {selection.targets.pattern}",
                              "targets are matched by their reference (provider/model) or their label")
    return dataclasses.replace(suite, tests=tests, targets=kept)
