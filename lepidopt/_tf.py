"""TensorFlow and Keras, imported once, quietly (TensorFlow's C++ start-up notes, oneDNN and no CUDA
driver, go straight to file descriptor 2 before any log level applies, so they are dropped there), with
Conv2D's faster CPU gradient (``_conv_gradient``) in place."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Iterator

from ._conv_gradient import install_conv2d_gradient

__all__ = ["tensorflow", "keras", "forget_custom_gradients"]


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
        install_conv2d_gradient(tf)
    return sys.modules["tensorflow"]


def keras() -> Any:
    tensorflow()
    import keras as keras_module

    return keras_module


def forget_custom_gradients() -> int:
    """Drop the gradient functions that graph-mode ``tf.custom_gradient`` registered, globally and for
    good, each time a function using one was traced; the number dropped.

    Keras's TensorFlow optimizer all-reduces gradients through one (``ReplicaContext.all_reduce``), so
    every traced train step registers a gradient function that holds the step's graph, and through its
    captures every variable of the model and its optimizer: a fine-tuned ResNet-50's conv5 kept ~190 MB
    alive per trial after the model was gone (tensorflow#61791). A registered function is looked up
    only while the gradient of its graph is traced, which ends before its train step first runs; call
    this between trials, never while a function is being traced.
    """
    if "tensorflow" not in sys.modules:
        return 0
    from tensorflow.python.framework import ops

    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    if not isinstance(registry, dict):
        return 0
    names = [name for name in registry if name.startswith("CustomGradient-")]
    for name in names:
        del registry[name]
    return len(names)
