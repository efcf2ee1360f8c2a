"""workbench: a terminal workbench for LLM engineers."""

__version__ = "0.1.0"
