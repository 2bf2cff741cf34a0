"""lepidopt: hyperparameter search for transfer learning on images (ResNet-50, Optuna).

The command line is a thin layer over these functions::

    import lepidopt
    summary = lepidopt.search(study="demo", data="demo-data", space="demo", n_trials=10)
    print(lepidopt.format_status(lepidopt.status(study="demo")))

Heavy modules (TensorFlow, Optuna) are imported on first use, not on ``import lepidopt``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Imported eagerly: the subpackage lepidopt.search would otherwise shadow the function of that name.
from .search import format_status, search, status  # noqa: E402

_LAZY = {
    "run_trial": "lepidopt.search",
    "run_demo": "lepidopt.demo",
    "load_space": "lepidopt.spaces",
    "DataSpec": "lepidopt.data",
    "scan_source": "lepidopt.data",
    "make_demo_collection": "lepidopt.data",
    "Recipe": "lepidopt.recipe",
}

__all__ = sorted([*_LAZY, "search", "status", "format_status", "__version__"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lepidopt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
