"""Search spaces: a YAML format validated into frozen objects that round-trip to dicts."""

from ._builtin import builtin_space_names, load_space
from ._params import Choice, FloatRange, IntRange, Param
from ._space import Space, load_space_file, space_from_dict

__all__ = [
    "Choice",
    "FloatRange",
    "IntRange",
    "Param",
    "Space",
    "builtin_space_names",
    "load_space",
    "load_space_file",
    "space_from_dict",
]
