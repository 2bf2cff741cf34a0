"""Optuna objects whose options are marked experimental, built without warning the user about it."""

from __future__ import annotations

import warnings

__all__ = ["quietly"]


def quietly(factory, **kwargs):
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return factory(**kwargs)
