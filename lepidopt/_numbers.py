"""The one test of a whole-number setting, so every setting reads ``True`` and ``2.0`` the same way."""

from __future__ import annotations

from typing import Any

__all__ = ["whole_number"]


def whole_number(value: Any, *, at_least: int) -> bool:
    """``value`` is an int (not a bool, not a float) of at least ``at_least``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= at_least
