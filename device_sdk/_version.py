"""The SDK version (also sent in ``state`` messages)."""

__version__ = "0.1.0"
