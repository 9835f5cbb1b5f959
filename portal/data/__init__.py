"""Data files shipped with the portal (read with importlib.resources)."""
