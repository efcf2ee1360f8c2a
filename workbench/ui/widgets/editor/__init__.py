"""The editor's widgets: the prompt text area, the message turns, the live meter."""
