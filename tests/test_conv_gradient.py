"""Conv2D's CPU gradient as lepidopt installs it: equal to TensorFlow's own for every convolution it takes over,
TensorFlow's own for the rest, and in place once TensorFlow is imported through lepidopt."""

from __future__ import annotations

import numpy as np
import pytest

from lepidopt._conv_gradient import install_conv2d_gradient, tensorflow_conv2d_gradient
from lepidopt._tf import tensorflow

CASES = [  # input (h, w, channels), kernel (h, w), filters, strides, padding
    ((4, 4, 8), (1, 1), 6, (1, 1), "SAME"),
    ((5, 7, 8), (1, 1), 6, (2, 2), "SAME"),  # odd sizes: the last strided row and column are inputs too
    ((5, 7, 8), (1, 1), 6, (2, 3), "VALID"),
    ((2, 2, 8), (3, 3), 6, (1, 1), "SAME"),  # conv5 at 64 px: the kernel larger than the map
    ((6, 5, 4), (3, 3), 5, (1, 1), "SAME"),
    ((6, 5, 4), (3, 1), 5, (1, 1), "VALID"),
    ((7, 7, 3), (5, 5), 4, (1, 1), "SAME"),
    ((9, 9, 3), (3, 3), 4, (2, 2), "SAME"),  # left to TensorFlow
    ((8, 8, 3), (2, 2), 4, (1, 1), "SAME"),  # even kernel, SAME: left to TensorFlow
]


def _gradients(tf, x, kernel, strides, padding, *, graph: bool, watch_input: bool = True):
    def compute(x):
        with tf.GradientTape() as tape:
            if watch_input:
                tape.watch(x)
            y = tf.nn.conv2d(x, kernel, strides, padding)
            loss = tf.reduce_sum(y * tf.cos(y))  # an output gradient that differs from place to place
        return tape.gradient(loss, [x, kernel])

    return (tf.function(compute) if graph else compute)(x)


@pytest.mark.parametrize("graph", [False, True], ids=["eager", "traced"])
@pytest.mark.parametrize("shape, size, filters, strides, padding", CASES)
def test_gradients_equal_tensorflows(shape, size, filters, strides, padding, graph):
    tf = tensorflow()
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(3, *shape)), tf.float32)
    kernel = tf.Variable(rng.normal(size=(*size, shape[-1], filters)) * 0.3, dtype=tf.float32)
    d_x, d_kernel = _gradients(tf, x, kernel, strides, padding, graph=graph)
    with tensorflow_conv2d_gradient():
        tf_x, tf_kernel = _gradients(tf, x, kernel, strides, padding, graph=graph)
    assert d_x.shape == x.shape
    np.testing.assert_allclose(d_x, tf_x, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(d_kernel, tf_kernel, rtol=1e-4, atol=1e-4)


def test_an_input_nobody_asks_for_gets_no_gradient():
    tf = tensorflow()
    x = tf.constant(np.ones((2, 4, 4, 3)), tf.float32)
    kernel = tf.Variable(np.full((3, 3, 3, 2), 0.1), dtype=tf.float32)
    d_x, d_kernel = _gradients(tf, x, kernel, 1, "SAME", graph=False, watch_input=False)
    assert d_x is None and d_kernel is not None


def test_installed_on_import_on_a_machine_without_gpu():
    tf = tensorflow()
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is visible: TensorFlow's gradient stays")
    from tensorflow.python.framework import ops

    ours = ops._gradient_registry.lookup("Conv2D")
    assert install_conv2d_gradient(tf) is True  # again: nothing changes
    assert ops._gradient_registry.lookup("Conv2D") is ours
    with tensorflow_conv2d_gradient():
        assert ops._gradient_registry.lookup("Conv2D") is not ours
    assert ops._gradient_registry.lookup("Conv2D") is ours
