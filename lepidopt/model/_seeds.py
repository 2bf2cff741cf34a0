"""Seeding a trial without emptying TensorFlow's kernel cache."""

from __future__ import annotations

import random

import numpy as np

__all__ = ["set_seeds", "TENSORFLOW_GLOBAL_SEED"]

# TensorFlow pairs this with each random op's own seed. It stays the same for the whole process, since
# setting it empties TensorFlow's kernel cache (tf.random.set_seed clears it).
TENSORFLOW_GLOBAL_SEED = 0


def set_seeds(seed: int) -> None:
    """Seed what makes a new Keras model and its training repeatable: Python's and NumPy's generators,
    from which every initializer and every dropout or augmentation layer draws its own seed.

    ``keras.utils.set_random_seed`` also does this, and sets TensorFlow's global seed and resets Keras's
    global generator (only ``keras.random`` calls without a seed use it; lepidopt makes none). This
    leaves TensorFlow's global seed alone once it is ``TENSORFLOW_GLOBAL_SEED``: setting it empties the
    kernel cache, where TensorFlow keeps every traced function ready to run; a head trainer's epoch then
    takes ~0.15 s to get ready again. Every random op lepidopt runs in TensorFlow has its own seed (the
    epochs' orders, tf.data's shuffles), so the global seed only needs to be the same in every trial and
    process.
    """
    from .._tf import tensorflow

    tf = tensorflow()
    random.seed(seed)
    np.random.seed(seed)
    if tf.compat.v1.random.get_seed(0)[0] != TENSORFLOW_GLOBAL_SEED:  # (global seed, the op seed asked for)
        tf.random.set_seed(TENSORFLOW_GLOBAL_SEED)
