"""TensorFlow and Keras, imported once, quietly: TensorFlow's C++ start-up notes (oneDNN, no CUDA
driver) go straight to file descriptor 2 before any log level applies, so they are dropped there."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Iterator

__all__ = ["tensorflow", "keras"]


@contextlib.contextmanager
def _silenced_fd2() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def tensorflow() -> Any:
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with _silenced_fd2():
            import tensorflow as tf

            tf.constant(0)  # the CUDA probe runs on first use; let it speak into the void too
        tf.get_logger().setLevel("ERROR")
    return sys.modules["tensorflow"]


def keras() -> Any:
    tensorflow()
    import keras as keras_module

    return keras_module
