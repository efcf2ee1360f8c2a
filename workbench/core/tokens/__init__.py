"""Tokens: offline encodings, exact provider counts, the editor's incremental meter, pre-send estimates."""
