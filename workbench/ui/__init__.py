"""The Textual face of workbench. Thin: every decision is made in workbench.core."""
