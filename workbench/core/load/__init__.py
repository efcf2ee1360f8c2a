"""Load tests (``workbench load``): an open-loop generator that replays real requests through the resilient
call path on a schedule, its live figures, and its report (see ARCHITECTURE.md)."""
