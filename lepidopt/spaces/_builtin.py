"""The spaces shipped with lepidopt, and lookup of a space by built-in name or file path."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import SpaceError
from ._space import Space, load_space_file, space_from_dict
from ._yaml import read_space_yaml

__all__ = ["builtin_space_names", "load_space"]


def builtin_space_names() -> list[str]:
    """The names of the spaces that come with lepidopt.

    Returns:
        Their names, sorted.
    """
    folder = resources.files(__package__) / "builtin"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_space(name_or_path: str | Path) -> Space:
    """A built-in space by name (``resnet50``, ``demo``) or a space file by path.

    Args:
        name_or_path: A built-in space's name, or the path of a YAML space file.

    Returns:
        The space, validated.

    Raises:
        SpaceError: No built-in space of that name and no such file, or a file that breaks a rule.
    """
    text = str(name_or_path)
    if text in builtin_space_names():
        resource = resources.files(__package__) / "builtin" / f"{text}.yaml"
        return space_from_dict(read_space_yaml(resource.read_text(), source=f"{text}.yaml"), source=f"{text}.yaml")
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise SpaceError(f"space file {text!r}", "does not exist.", fix="Check the path.")
        return load_space_file(path)
    raise SpaceError(
        f"space {text!r}", f"is neither a built-in space ({', '.join(builtin_space_names())}) nor a YAML file.",
        fix="Give a built-in name or a path ending in .yaml."
    )
