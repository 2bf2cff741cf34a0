"""Sizes written as people write them: '50GB', '500 MB', '1.5TB'."""

from __future__ import annotations

import re

from .errors import SettingError

__all__ = ["parse_size", "format_size"]

_UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "M": 1024**2, "MB": 1024**2, "G": 1024**3, "GB": 1024**3,
          "T": 1024**4, "TB": 1024**4}


def parse_size(text: str | int, *, setting: str) -> int:
    """'50GB', '500 MB', '1.5TB' or a number of bytes -> bytes (binary units); ``setting`` names the setting in
    the error."""
    if isinstance(text, bool):
        raise SettingError(setting, text, "not a size; write a size such as 500MB, 50GB or 1.5TB.")
    if isinstance(text, int):
        size = text
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?B?)\s*", str(text).upper())
        if not match or match.group(2) not in _UNITS:
            raise SettingError(setting, text, "not a size; write a size such as 500MB, 50GB or 1.5TB.")
        size = int(float(match.group(1)) * _UNITS[match.group(2)])
    if size < 1:
        raise SettingError(setting, text, "must be a positive size, such as 500MB, 50GB or 1.5TB.")
    return size


def format_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
