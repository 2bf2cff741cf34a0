"""A synthetic butterfly collection for the demo and the tests: drawn, not downloaded.

Six classes named after the ETHEC families, each with its own wing shape, colours and spot
pattern, in random pose, scale and background; class sizes shaped like ETHEC's imbalance. A family may
hold several genera, drawn as variants of it (shifted colours, more spots, stripes), which the ETHEC
manifest names: a harder, finer-grained task at ``label_level="genus"``. Genera pair into subfamilies
(genera 0 and 1 of a family in its first, 2 and 3 in its second, ...), and a genus may hold several
species, drawn as variants of it (the accent colour, the spots' size): with both, the manifest carries a
four-level tree, family, subfamily, genus and species, imbalanced at every level.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..errors import DataError, SettingError
from .._numbers import whole_number

__all__ = ["ETHEC_SHAPE", "DemoCollection", "make_demo_collection", "demo_class_sizes"]

ETHEC_SHAPE = {
    "Nymphalidae": 2167,
    "Lycaenidae": 1275,
    "Hesperiidae": 736,
    "Pieridae": 592,
    "Papilionidae": 263,
    "Riodinidae": 16,
}


@dataclasses.dataclass(frozen=True)
class _Family:
    fore: tuple[float, float, float]  # radius along, radius across, angle in degrees from the body axis
    hind: tuple[float, float, float]
    base: tuple[int, int, int]
    accent: tuple[int, int, int]
    spots: int
    spot_size: float
    eyespots: bool = False
    tails: bool = False
    stripes: int = 0
    dark_tips: bool = False


_FAMILIES = {
    "Nymphalidae": _Family((30, 17, 58), (22, 16, 125), (214, 110, 30), (60, 30, 15), 4, 3.5, eyespots=True),
    "Lycaenidae": _Family((20, 14, 50), (16, 13, 120), (90, 130, 220), (25, 25, 40), 6, 1.6),
    "Hesperiidae": _Family((24, 9, 40), (14, 9, 115), (130, 95, 50), (235, 215, 150), 3, 2.0),
    "Pieridae": _Family((27, 18, 60), (21, 17, 122), (245, 245, 225), (30, 30, 30), 2, 3.0, dark_tips=True),
    "Papilionidae": _Family((33, 14, 55), (24, 14, 135), (240, 215, 70), (20, 20, 20), 0, 0, tails=True, stripes=4),
    "Riodinidae": _Family((22, 15, 55), (18, 15, 122), (70, 45, 35), (240, 240, 240), 9, 1.8),
}


# Genus g of a family draws the family shifted by the g-th of these: base colour change, extra spots, extra
# stripes. Genus 0 is the family as drawn without genera.
_GENUS_SHIFTS = (((0, 0, 0), 0, 0), ((45, -35, -25), 3, 0), ((-35, 30, 45), 0, 2), ((25, 40, -45), 5, 1),
                 ((-45, -25, 30), 2, 3))
_GENUS_ENDINGS = ("us", "ia", "ops", "ina", "ella")
MAX_GENERA = len(_GENUS_SHIFTS)
_SUBFAMILY_ENDINGS = ("inae", "oninae", "ellinae")  # subfamily s holds genera 2s and 2s + 1
# Species k of a genus draws the genus with its accent colour replaced and its spots scaled by these.
_SPECIES_SHIFTS = ((None, 1.0), ((200, 30, 30), 1.5), ((240, 240, 240), 0.7))
_EPITHETS = ("alba", "nigra", "rubra")
MAX_SPECIES = len(_SPECIES_SHIFTS)


@dataclasses.dataclass(frozen=True)
class DemoCollection:
    root: Path
    counts: dict[str, int]  # images per family (the folder classes)
    manifest: Path | None
    genera: dict[str, int] = dataclasses.field(default_factory=dict)  # images per genus, as the manifest names them
    species: dict[str, int] = dataclasses.field(default_factory=dict)  # images per species (genus_epithet), species > 1


def demo_class_sizes(scale: float = 0.1, *, minimum: int = 12) -> dict[str, int]:
    """ETHEC's family sizes scaled down, each class kept at ``minimum`` or more so it can be split."""
    return {name: max(minimum, round(n * scale)) for name, n in ETHEC_SHAPE.items()}


def genus_name(family: str, g: int) -> str:
    return f"{family[:-4]}{_GENUS_ENDINGS[g]}"


def subfamily_name(family: str, g: int) -> str:
    return f"{family[:-4]}{_SUBFAMILY_ENDINGS[g // 2]}"


def _bounds(count: int, parts: int) -> np.ndarray:
    """Where each part (a genus of a family, a species of a genus) of ``count`` images ends: part k > 0 takes a
    share proportional to 1 / (k + 1) and part 0 the rest, so parts are imbalanced within their parent as
    families are among themselves."""
    total = sum(1 / (k + 1) for k in range(parts))
    sizes = [round(count / (k + 1) / total) for k in range(1, parts)]
    return np.cumsum([count - sum(sizes), *sizes])


def _smallest_share(parts: int) -> float:
    return (1 / parts) / sum(1 / (k + 1) for k in range(parts))


def _genus_variant(family: _Family, g: int) -> _Family:
    shift, spots, stripes = _GENUS_SHIFTS[g]
    red, green, blue = (int(np.clip(c + d, 0, 255)) for c, d in zip(family.base, shift))
    return dataclasses.replace(family, base=(red, green, blue), spots=family.spots + spots,
                               stripes=family.stripes + stripes, spot_size=family.spot_size or 2.0)


def _species_variant(genus: _Family, k: int) -> _Family:
    accent, spot_scale = _SPECIES_SHIFTS[k]
    if accent is None:
        return genus
    return dataclasses.replace(genus, accent=accent, spots=max(genus.spots, 3),
                               spot_size=(genus.spot_size or 2.0) * spot_scale)


def make_demo_collection(root: str | Path, *, scale: float = 0.1, image_size: int = 96, seed: int = 0,
                         manifest: bool = False, minimum: int = 12, genera: int = 1,
                         species: int = 1) -> DemoCollection:
    """Write the collection as an image folder (``root/<family>/<n>.jpg``), optionally with an ETHEC manifest.
    Deterministic: the same seed, scale and size always draw the same pixels.

    Args:
        root: A new or empty folder, so the collection is never mixed with other images.
        scale: The collection's size as a fraction of ETHEC's family sizes.
        image_size: The images' side in pixels, 32 or more.
        seed: Seeds the drawing.
        manifest: Also write an ETHEC-style JSON manifest of the images.
        minimum: The fewest images any family gets (with genera or species: any genus or species).
        genera: Genera per family, 1 to 5, drawn as variants of it; the manifest names them and pairs them into
            subfamilies.
        species: Species per genus, 1 to 3, drawn as variants of it; the manifest names them (with 1, each
            record's specific epithet is drawn at random and does not show in the image).

    Returns:
        The folder, the images per family and the manifest's path.

    Raises:
        SettingError: A size below 32 px, a scale of 0 or less, genera outside 1 to 5 or species outside 1 to 3.
        DataError: ``root`` holds files already.
    """
    root = Path(root)
    if not whole_number(image_size, at_least=32):
        raise SettingError("image_size", image_size, "must be at least 32 px, the smallest image lepidopt's scan keeps "
                           "and ResNet-50 takes.")
    if not scale > 0:
        raise SettingError("scale", scale, "must be above 0 (a fraction of ETHEC's family sizes, e.g. 0.1).")
    if not whole_number(genera, at_least=1) or genera > MAX_GENERA:
        raise SettingError("genera", genera, f"must be a whole number from 1 to {MAX_GENERA} (genera per family).")
    if not whole_number(species, at_least=1) or species > MAX_SPECIES:
        raise SettingError("species", species, f"must be a whole number from 1 to {MAX_SPECIES} (species per genus).")
    held = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")) \
        if root.is_dir() else None
    if held or (held is None and root.exists()):
        what = f"already holds {len(held)} file(s), e.g. {held[0]!r}" if held else "is a file"
        raise DataError(f"demo folder {str(root)!r}", f"{what}; the demo collection is drawn into a new or empty "
                        "folder, so it never mixes with other images.", fix="Choose another folder.")
    counts = demo_class_sizes(scale, minimum=minimum)
    if genera > 1 or species > 1:  # the smallest genus (or species) of a family gets ``minimum``
        smallest_share = _smallest_share(genera) * _smallest_share(species)
        counts = {family: max(n, math.ceil(minimum / smallest_share)) for family, n in counts.items()}
    records = {}
    per_genus: dict[str, int] = {}
    per_species: dict[str, int] = {}
    for class_index, (family, count) in enumerate(counts.items()):
        folder = root / family
        folder.mkdir(parents=True, exist_ok=True)
        genus_ends = _bounds(count, genera)
        genus_starts = [0, *genus_ends[:-1].tolist()]
        species_ends = [_bounds(int(end) - start, species) for start, end in zip(genus_starts, genus_ends)]
        for i in range(count):
            rng = np.random.default_rng([seed, class_index, i])
            name = f"{family.lower()}_{i:05d}.jpg"
            g = int(np.searchsorted(genus_ends, i, side="right"))
            k = int(np.searchsorted(species_ends[g], i - genus_starts[g], side="right"))
            genus = genus_name(family, g)
            look = _species_variant(_genus_variant(_FAMILIES[family], g), k)
            draw_butterfly(look, rng, image_size).save(folder / name, quality=92)
            epithet = _EPITHETS[int(rng.integers(3))] if species == 1 else _EPITHETS[k]
            records[f"{family[:3].lower()}{i:05d}"] = _ethec_record(family, subfamily_name(family, g), genus, epithet,
                                                                    name, i)
            per_genus[genus] = per_genus.get(genus, 0) + 1
            if species > 1:
                per_species[f"{genus}_{epithet}"] = per_species.get(f"{genus}_{epithet}", 0) + 1
    manifest_path = None
    if manifest:
        manifest_path = root / "ethec_manifest.json"
        manifest_path.write_text(json.dumps(records, indent=1))
    return DemoCollection(root=root, counts=counts, manifest=manifest_path, genera=per_genus, species=per_species)


def _ethec_record(family: str, subfamily: str, genus: str, epithet: str, file_name: str, i: int) -> dict[str, str]:
    record = {
        "token": f"{family[:3].lower()}{i:05d}",
        "image_path": f"{family}/",
        "image_name": file_name,
        "family": family,
        "subfamily": subfamily,
        "genus": genus,
        "specific_epithet": epithet,
    }
    if i % 7 == 3:  # the quirk of some real ETHEC records: the file name sits in image_path
        record["image_path"], record["image_name"] = f"{family}/{file_name}", ""
    return record


def draw_butterfly(family: _Family, rng: np.random.Generator, size: int) -> Image.Image:
    big = size * 2
    background = _background(rng, big)
    layer = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    jitter = rng.integers(-25, 26, size=3)
    base = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(family.base, jitter))
    accent = family.accent
    c = big / 2
    for side in (-1, 1):
        hind = _wing(c, c + 4, family.hind, side)
        draw.polygon(hind, fill=base, outline=accent)
        if family.tails:
            tip = hind[0]
            draw.line([tip, (tip[0] + side * 4, tip[1] + 22)], fill=accent, width=5)
        fore = _wing(c, c - 4, family.fore, side)
        draw.polygon(fore, fill=base, outline=accent)
        if family.dark_tips:
            tip = fore[0]
            draw.pieslice([tip[0] - 16, tip[1] - 16, tip[0] + 16, tip[1] + 16], 0, 360, fill=accent)
        for k in range(family.stripes):
            t = (k + 1) / (family.stripes + 1)
            a = math.radians(family.fore[2])
            x0, y0 = c + side * t * family.fore[0] * math.sin(a), c - 4 - t * family.fore[0] * math.cos(a)
            draw.line([(x0, y0 - 10), (x0 + side * 6, y0 + 14)], fill=accent, width=3)
        for _ in range(family.spots):
            wing = fore if rng.random() < 0.6 else hind
            x, y = wing[int(rng.integers(len(wing)))]
            x, y = c + (x - c) * 0.7, c + (y - c) * 0.7
            r = family.spot_size * (0.8 + 0.4 * rng.random()) * 2
            draw.ellipse([x - r, y - r, x + r, y + r], fill=accent)
            if family.eyespots:
                draw.ellipse([x - r / 2, y - r / 2, x + r / 2, y + r / 2], fill=(240, 220, 120))
    draw.ellipse([c - 4, c - 26, c + 4, c + 26], fill=(35, 30, 25))
    for side in (-1, 1):
        draw.line([(c, c - 24), (c + side * 12, c - 44)], fill=(35, 30, 25), width=2)
    scale = 0.85 + 0.3 * rng.random()
    layer = layer.resize((int(big * scale), int(big * scale)), Image.Resampling.BILINEAR)
    layer = layer.rotate(float(rng.uniform(-40, 40)), resample=Image.Resampling.BILINEAR, expand=False)
    offset = (
        int((big - layer.width) / 2 + rng.uniform(-0.1, 0.1) * big),
        int((big - layer.height) / 2 + rng.uniform(-0.1, 0.1) * big),
    )
    background.paste(layer, offset, layer)
    return background.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)


def _wing(cx: float, cy: float, shape: tuple[float, float, float], side: int) -> list[tuple[float, float]]:
    along, across, angle = shape[0] * 1.35, shape[1] * 1.35, shape[2]
    a = math.radians(angle)
    ux, uy = side * math.sin(a), -math.cos(a)  # unit vector along the wing, away from the body
    vx, vy = -uy, ux
    points = []
    for t in np.linspace(0, 2 * math.pi, 36, endpoint=False):
        s, q = (1 + math.cos(t)) * along, math.sin(t) * across
        points.append((cx + s * ux + q * vx, cy + s * uy + q * vy))
    return points


def _background(rng: np.random.Generator, size: int) -> Image.Image:
    tone = rng.integers(60, 200, size=3)
    noise = rng.normal(0, 18, size=(size // 8, size // 8, 3))
    array = np.clip(tone + noise, 0, 255).astype(np.uint8)
    img = Image.fromarray(array, mode="RGB").resize((size, size), Image.Resampling.BICUBIC)
    return img.filter(ImageFilter.GaussianBlur(2)).convert("RGBA")
