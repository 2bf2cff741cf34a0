"""What a saved lepidopt model knows about itself, kept inside its .keras archive as ``lepidopt.json``."""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path
from typing import Any, Mapping

from ..errors import ModelError, command, option

__all__ = ["ModelCard", "CARD_MEMBER", "read_card", "write_card"]

CARD_MEMBER = "lepidopt.json"
_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """A model's classes (in the order of its outputs), the square input side its backbone saw, and where it
    came from: the study, trial, objective and recipe, the data settings it was trained with, lepidopt's
    version."""

    classes: tuple[str, ...]
    image_size: int
    study: str | None = None
    trial: int | None = None
    objective: str | None = None
    recipe: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    data: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    lepidopt_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"format": _FORMAT, **dataclasses.asdict(self), "classes": list(self.classes),
                "recipe": dict(self.recipe), "data": dict(self.data)}

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


def read_card(archive: str | Path) -> ModelCard:
    where = f"model {str(archive)!r}"
    try:
        with zipfile.ZipFile(archive) as zipped:
            if CARD_MEMBER not in zipped.namelist():
                raise ModelError(where, f"carries no {CARD_MEMBER}, so its classes and input size are unknown: it "
                                 "was not exported by this lepidopt (or by an older one).",
                                 fix="Export the study again with "
                                     f"{command('export', 'study', function='export_best')}.")
            saved = json.loads(zipped.read(CARD_MEMBER))
    except FileNotFoundError:
        raise ModelError(where, "does not exist.", fix=f"Check {option('model')}.") from None
    except zipfile.BadZipFile:
        raise ModelError(where, "is not a .keras archive (not a zip file).", fix=f"Check {option('model')}.") from None
    return ModelCard.from_dict(saved, where=where)
