"""tf.data pipelines: decode every image once per study and size into a uint8 memory map, then batch from it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from .._files import replacing
from ._images import load_resized
from ._progress import progress
from ._split import Split

if TYPE_CHECKING:
    import tensorflow as tf
    from tensorflow import Tensor

__all__ = ["decoded_images", "image_batches"]

log = logging.getLogger("lepidopt")


def decoded_images(split: Split, *, image_size: int, cache_dir: str | Path,
                   fingerprint: str | None = None) -> np.ndarray:
    """All of the split's images as a read-only (N, size, size, 3) uint8 memory map, decoding only on first use.

    The file name carries the split's fingerprint, so a changed image or size means a new file; pass
    ``fingerprint`` when it is known already, as it costs a stat of every image.
    """
    cache_dir = Path(cache_dir)
    target = cache_dir / f"images-{image_size}px-{(fingerprint or split.fingerprint())[:16]}.npy"
    if target.exists():
        try:
            array = np.load(target, mmap_mode="r")
            if array.shape == (len(split.paths), image_size, image_size, 3) and array.dtype == np.uint8:
                return array
        except (ValueError, OSError):
            pass
        log.warning("decoded-image cache %s is unreadable or of the wrong shape; decoding again", target)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with replacing(target) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                        shape=(len(split.paths), image_size, image_size, 3))
        start = 0
        for batch in progress(_decode_batches(split.paths, image_size), total=-(-len(split.paths) // 64),
                              desc="decoding images"):
            out[start : start + len(batch)] = batch
            start += len(batch)
        out.flush()
        del out
    return np.load(target, mmap_mode="r")


def _decode_batches(paths: tuple[str, ...], image_size: int) -> Iterator[np.ndarray]:
    from .._tf import tensorflow

    tf = tensorflow()

    def decode(path: bytes) -> np.ndarray:
        return load_resized(path.decode(), image_size)

    dataset = (
        tf.data.Dataset.from_tensor_slices(list(paths))
        .map(
            lambda p: tf.ensure_shape(tf.numpy_function(decode, [p], tf.uint8), (image_size, image_size, 3)),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        .batch(64)
        .prefetch(tf.data.AUTOTUNE)
    )
    for batch in dataset.as_numpy_iterator():
        yield batch


def image_batches(images: np.ndarray, labels: np.ndarray, indices: np.ndarray, *, batch_size: int,
                  shuffle_seed: int | None = None, sample_weight: np.ndarray | None = None) -> tf.data.Dataset:
    """A tf.data pipeline of (float32 images in [0, 255], int labels) batches gathered from the memory map;
    ``labels`` may instead be rows of float targets (a taxonomy model's), and with ``sample_weight`` (one per
    image, like ``labels``) the batches carry each image's weight third."""
    from .._tf import tensorflow

    tf = tensorflow()

    indices = np.asarray(indices, dtype=np.int64)
    size = images.shape[1:]
    targets = np.asarray(labels)
    target_type = tf.int32 if targets.ndim == 1 else tf.float32
    weights = None if sample_weight is None else np.asarray(sample_weight, np.float32)
    order = tf.data.Dataset.from_tensor_slices(np.arange(len(indices)))
    if shuffle_seed is not None:
        order = order.shuffle(len(indices), seed=shuffle_seed, reshuffle_each_iteration=True)

    def gather(positions: np.ndarray) -> tuple[np.ndarray, ...]:
        chosen = indices[positions]
        # Sorted reads are far faster on a memory map; the batch is then put back in shuffled order.
        sort = np.argsort(chosen)
        rows = np.empty((len(chosen),) + size, dtype=np.uint8)
        rows[sort] = images[chosen[sort]]
        y = targets[chosen].astype(target_type.as_numpy_dtype)
        return (rows, y) if weights is None else (rows, y, weights[chosen])

    def load(positions: Tensor) -> tuple[Tensor, ...]:
        types = (tf.uint8, target_type) + ((tf.float32,) if weights is not None else ())
        x, y, *weight = tf.numpy_function(gather, [positions], types)
        x = tf.cast(tf.ensure_shape(x, (None,) + tuple(size)), tf.float32)
        y = tf.ensure_shape(y, (None,) + targets.shape[1:])
        return (x, y, tf.ensure_shape(weight[0], (None,))) if weight else (x, y)

    return order.batch(batch_size).map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
