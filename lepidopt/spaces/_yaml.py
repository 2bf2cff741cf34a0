"""Space files read as people write them: ``1e-5`` is a number (YAML 1.1 would read it as a string), and a key
written twice is an error instead of the later one silently winning."""

from __future__ import annotations

import re
from typing import Any, Hashable

import yaml

from ..errors import SpaceError

__all__ = ["read_space_yaml"]


class _SpaceLoader(yaml.SafeLoader):
    source = "space"

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        if isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":  # '<<: *anchor' merges a mapping; it is not a key
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    hash(key)
                except TypeError:
                    raise SpaceError(f"{self.source}, line {line}", f"a key must be a name, got {key!r}.") from None
                if key in first_line:
                    raise SpaceError(f"{self.source}, line {line}", f"key {key!r} is written twice (first on line "
                                     f"{first_line[key]}); a YAML reader keeps only the last.", fix="Keep one of them.")
                first_line[key] = line
        return super().construct_mapping(node, deep=deep)


# Numbers with an exponent but without a dot or a signed exponent (1e-5, 2E3, 1.5e4), which YAML 1.1 reads as text.
_SpaceLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def read_space_yaml(text: str, *, source: str) -> Any:
    """The data in ``text``; errors name ``source`` and the line."""
    loader = _SpaceLoader(text)
    loader.source = source
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise SpaceError(source, f"is not valid YAML: {exc.problem or exc.context}{where}.") from None
    except yaml.YAMLError as exc:
        raise SpaceError(source, f"is not valid YAML: {exc}") from None
    finally:
        loader.dispose()
