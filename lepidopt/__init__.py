"""lepidopt: hyperparameter search for transfer learning on images (ResNet-50, Optuna).

The command line is a thin layer over these functions::

    import lepidopt
    summary = lepidopt.search(study="demo", data="demo-data", space="demo", n_trials=10)
    print(lepidopt.format_status(lepidopt.status(study="demo")))
    lepidopt.export_best(study="demo")
    model = lepidopt.load_model(study="demo")
    print(model.predict(["new/a.jpg", "new/b.png"]), model.classes)

Heavy modules (TensorFlow, Optuna) are imported on first use, not on ``import lepidopt``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    # lepidopt search, worker, recover, storage-proxy, status, export, report, dashboard
    "search": "lepidopt.api",
    "worker": "lepidopt.api",
    "recover": "lepidopt.api",
    "storage_proxy": "lepidopt.api",
    "status": "lepidopt.api",
    "format_status": "lepidopt.api",
    "export_best": "lepidopt.api",
    "report_study": "lepidopt.api",
    "report_embeddings": "lepidopt.api",
    "serve_dashboard": "lepidopt.api",
    "WorkerSettings": "lepidopt.api",
    "Recycling": "lepidopt.api",
    "Heartbeat": "lepidopt.api",
    "TrialPolicy": "lepidopt.api",
    "KerasTunerRole": "lepidopt.api",
    "ClusteringSettings": "lepidopt.api",
    # lepidopt predict, evaluate, embed: the model a study found
    "load_model": "lepidopt.predictor",
    "Predictor": "lepidopt.predictor",
    "items_of": "lepidopt.predictor",
    "write_predictions": "lepidopt.predictor",
    "write_embeddings": "lepidopt.predictor",
    # lepidopt demo, data, spaces
    "run_demo": "lepidopt.demo",
    "DataSpec": "lepidopt.data",
    "scan_source": "lepidopt.data",
    "format_scan": "lepidopt.data",
    "make_demo_collection": "lepidopt.data",
    "load_space": "lepidopt.spaces",
    "load_space_file": "lepidopt.spaces",
    "builtin_space_names": "lepidopt.spaces",
    # one trial, outside any engine
    "run_trial": "lepidopt.trial",
    "study_data": "lepidopt.trial",
    "Recipe": "lepidopt.recipe",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lepidopt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
