"""Reading one image file into 8-bit RGB whatever its mode, and saying why a file cannot be used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = ["load_rgb", "problem_with", "load_resized", "read_resized"]

_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


def load_rgb(path: str | Path) -> Image.Image:
    """Open and fully decode ``path`` as 8-bit RGB (grayscale, alpha, palette, CMYK and 16-bit converted)."""
    with Image.open(path) as img:
        img.load()
        return to_rgb(img)


def to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode != "F" and array.max() > 255 else max(float(array.max()), 1.0)
        img = Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return img.convert("RGB")


def problem_with(path: str | Path, *, min_size: int) -> str | None:
    """Why ``path`` cannot be used (missing, empty, not an image, truncated, too small), or None."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing file"
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    if size == 0:
        return "zero-byte file"
    try:
        with Image.open(path) as img:
            img.load()
            width, height = img.size
    except UnidentifiedImageError:
        return "not an image (no known image format)"
    except OSError as exc:
        message = str(exc)
        if "truncated" in message or "broken data stream" in message:
            return f"truncated image ({message})"
        return f"unreadable image ({message})"
    except Exception as exc:  # Pillow raises many kinds on hostile files; all of them mean: skip it
        return f"unreadable image ({type(exc).__name__}: {exc})"
    if min(width, height) < min_size:
        return f"too small: {width}x{height} px, below the minimum of {min_size} px"
    return None


def load_resized(path: str | Path, size: int) -> np.ndarray:
    """The image at ``path`` as a (size, size, 3) uint8 array, squashed to a square (as Keras does)."""
    return squashed(load_rgb(path), size)


def squashed(rgb: Image.Image, size: int) -> np.ndarray:
    """``rgb`` resized to ``size`` square, ignoring its aspect ratio (bilinear, as the study decodes)."""
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def read_resized(path: str | Path, size: int, *, min_size: int) -> tuple[np.ndarray | None, str | None]:
    """(the image as ``load_resized`` gives it, None), or (None, why it cannot be used), decoding it once."""
    try:
        with Image.open(path) as img:
            img.load()
            if min(img.size) < min_size:
                return None, f"too small: {img.width}x{img.height} px, below the minimum of {min_size} px"
            rgb = to_rgb(img)
    except Exception:  # the scan's own words for what is wrong with it
        return None, problem_with(path, min_size=min_size) or "unreadable image"
    return squashed(rgb, size), None
