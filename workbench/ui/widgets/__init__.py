"""Reusable widgets of the TUI, grouped by feature."""
