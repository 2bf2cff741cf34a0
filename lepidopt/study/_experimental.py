"""Optuna objects whose options are marked experimental, built without warning the user about it."""

from __future__ import annotations

import warnings
from typing import Any, Callable, TypeVar

__all__ = ["quietly"]

_T = TypeVar("_T")


def quietly(factory: Callable[..., _T], **kwargs: Any) -> _T:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return factory(**kwargs)
