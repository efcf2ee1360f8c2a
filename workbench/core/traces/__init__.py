"""The trace log: every call in a local SQLite store, written off the UI loop, browsed with keyset pages."""
