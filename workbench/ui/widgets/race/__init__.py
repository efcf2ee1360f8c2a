"""The race screen's widgets."""
