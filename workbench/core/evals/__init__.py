"""Evals: suites of test cases graded by assertions, run over targets, stored, compared and reported."""
