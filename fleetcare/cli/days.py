"""Calendar days given on the command line (``--start``, ``--until``): ``YYYY-MM-DD``."""

from __future__ import annotations

from datetime import date

import typer


def day_option(text: str | None, option: str) -> date | None:
    """``text`` as a day, ``None`` for ``None``.

    Raises:
        typer.BadParameter: not a day, naming ``option`` (the CLI exits with status 2).
    """
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a day (YYYY-MM-DD)", param_hint=option) from None
