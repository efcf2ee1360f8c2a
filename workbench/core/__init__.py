"""The domain and engine of workbench. Never imports textual or workbench.ui."""
