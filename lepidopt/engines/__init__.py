"""The engines that drive a study, registered by name: Optuna (samplers and pruners) and Keras Tuner
(Hyperband, Bayesian, random and grid oracles), over the same spaces, trials and objective."""

from ._base import Engine, engine_names, get_engine, register
from ._optuna import OptunaEngine  # registered first: the default engine
from ._keras_tuner import TUNERS, KerasTunerEngine  # noqa: I001
from ._keras_tuner_role import KerasTunerRole
from ._keras_tuner_space import suggest_keras_tuner
from ._optuna import SAMPLERS, make_sampler
from ._optuna_space import suggest as suggest_optuna
from ._policy import TrialPolicy
from ._staged import PROMOTED_SHARE, STRATEGIES
from ._pruning import PRUNERS, PruningSchedule, epoch_kind, make_pruner, pruning_schedule

__all__ = [
    "Engine",
    "KerasTunerEngine",
    "KerasTunerRole",
    "OptunaEngine",
    "PROMOTED_SHARE",
    "PRUNERS",
    "PruningSchedule",
    "SAMPLERS",
    "STRATEGIES",
    "TUNERS",
    "TrialPolicy",
    "engine_names",
    "epoch_kind",
    "get_engine",
    "make_pruner",
    "make_sampler",
    "pruning_schedule",
    "register",
    "suggest_keras_tuner",
    "suggest_optuna",
]
