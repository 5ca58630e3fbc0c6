"""Reading a command's output in tests: rich's error panel and line wrapping undone."""

from __future__ import annotations

import re

_PANEL = re.compile(r"[│╭╮╰╯─]")


def said(output: str) -> str:
    """``output`` as one line: panel borders dropped, every run of whitespace one space."""
    return " ".join(_PANEL.sub(" ", output).split())
