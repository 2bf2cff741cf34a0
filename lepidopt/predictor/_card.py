"""What a saved lepidopt model knows about itself, kept inside its .keras archive as ``lepidopt.json``."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path
from typing import Any, Mapping

from ..errors import ModelError, command, option

__all__ = ["ModelCard", "CARD_MEMBER", "read_card", "write_card", "card_from_json"]

CARD_MEMBER = "lepidopt.json"
_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """A model's classes (in the order of its outputs), the square input side its backbone saw, and where it
    came from: the study, trial, objective and recipe, the data settings it was trained with, lepidopt's
    version. A taxonomy model's outputs are every level's classes side by side, named ``level:class``; its
    card carries the tree (``data.Taxonomy.to_dict``) and how its predictions are decoded."""

    classes: tuple[str, ...]
    image_size: int
    study: str | None = None
    trial: int | None = None
    objective: str | None = None
    recipe: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    data: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    lepidopt_version: str = ""
    taxonomy: Mapping[str, Any] | None = None
    decode: str = "independent"

    def to_dict(self) -> dict[str, Any]:
        out = {"format": _FORMAT, **dataclasses.asdict(self), "classes": list(self.classes),
               "recipe": dict(self.recipe), "data": dict(self.data)}
        if self.taxonomy is None:  # a single-label model's card has no tree to carry
            del out["taxonomy"], out["decode"]
        return out

    @classmethod
    def from_dict(cls, saved: Mapping[str, Any], *, where: str) -> ModelCard:
        if saved.get("format") != _FORMAT:
            raise ModelError(where, f"holds a model card of format {saved.get('format')!r}; this lepidopt reads "
                             f"format {_FORMAT}.", fix="Use the lepidopt version that exported it, or export again.")
        fields = {f.name for f in dataclasses.fields(cls)}
        try:
            card = cls(**{k: v for k, v in saved.items() if k in fields})
            return dataclasses.replace(card, classes=tuple(str(c) for c in card.classes),
                                       image_size=int(card.image_size))
        except (TypeError, ValueError) as exc:
            raise ModelError(where, f"holds a model card that cannot be read ({exc}).") from None


def write_card(archive: str | Path, card: ModelCard) -> None:
    """Add ``card`` to the .keras archive ``archive`` (Keras reads its own members and ignores this one)."""
    with zipfile.ZipFile(archive, "a") as zipped:
        zipped.writestr(CARD_MEMBER, json.dumps(card.to_dict(), indent=1))


def card_from_json(text: str | bytes, *, where: str) -> ModelCard:
    try:
        saved = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(where, f"holds a model card that is not JSON ({exc}).") from None
    if not isinstance(saved, dict):
        raise ModelError(where, "holds a model card that is not a JSON object.")
    return ModelCard.from_dict(saved, where=where)


def _no_card(where: str, place: str) -> ModelError:
    return ModelError(where, f"carries no {place}, so its classes and input size are unknown: it was not "
                      "exported by this lepidopt (or by an older one).",
                      fix=f"Export the study again with {command('export', 'study', function='export_best')}.")


def read_card(path: str | Path) -> ModelCard:
    """The card of a .keras archive (its member lepidopt.json), a SavedModel folder (its lepidopt.json) or a
    LiteRT file (model.tflite.json beside it). An ONNX model keeps its card in its metadata."""
    path = Path(path)
    where = f"model {str(path)!r}"
    if path.is_dir():
        if not (path / CARD_MEMBER).is_file():
            raise _no_card(where, CARD_MEMBER)
        return card_from_json((path / CARD_MEMBER).read_text(), where=where)
    if path.suffix.lower() == ".tflite":
        beside = path.with_name(path.name + ".json")
        if not beside.is_file():
            raise _no_card(where, f"card {beside.name} beside it")
        return card_from_json(beside.read_text(), where=where)
    try:
        with zipfile.ZipFile(path) as zipped:
            if CARD_MEMBER not in zipped.namelist():
                raise _no_card(where, CARD_MEMBER)
            return card_from_json(zipped.read(CARD_MEMBER), where=where)
    except FileNotFoundError:
        raise ModelError(where, "does not exist.", fix=f"Check {option('path')}.") from None
    except zipfile.BadZipFile:
        raise ModelError(where, "is not a .keras archive (not a zip file).", fix=f"Check {option('path')}.") from None
