"""Soak: the backend for a long run at a steady rate with faults injected."""
