"""Conv2D's gradient on a CPU with the input's part computed as a forward convolution.

TensorFlow's CPU kernel for Conv2DBackpropInput runs 2 to 20 times slower than the forward convolution of
the same size (a 3x3 512->512 convolution of 32 conv5 maps at 2x2, as at 64 px: 0.21 s against 0.009 s;
at 7x7, as at 224 px: 0.16 s against 0.05 s), and it is most of a fine-tuning step's time. The input's
gradient of a stride-1 convolution is itself a forward convolution, of the output's gradient with the
kernel flipped and its channels swapped, and a 1x1 convolution's, at any stride, is a matrix product placed
on the strided positions; ResNet-50 has only those two kinds above conv1. Every other convolution keeps
TensorFlow's gradient, and so does a machine with a GPU, whose kernels have no such gap. The kernel's
gradient is TensorFlow's own. The results equal TensorFlow's up to float rounding.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

__all__ = ["install_conv2d_gradient", "tensorflow_conv2d_gradient"]

_ORIGINAL = "_tensorflow_gradient"  # the attribute of lepidopt's gradient that holds TensorFlow's


def install_conv2d_gradient(tf: Any) -> bool:
    """Register the faster gradient for TensorFlow's Conv2D op, once, unless a GPU is visible or TensorFlow's
    gradient registry is not laid out as this version expects; whether it is installed."""
    entry = _registry_entry()
    if entry is None:
        return False
    if hasattr(entry["type"], _ORIGINAL):
        return True
    if tf.config.list_physical_devices("GPU"):
        return False
    original = entry["type"]

    def gradient(op: Any, grad: Any) -> list[Any]:
        try:
            skip = tuple(op.skip_input_indices or ())
        except AttributeError:
            skip = ()
        d_input = None if 0 in skip else _input_gradient(tf, op, grad)
        if d_input is NotImplemented:
            return list(original(op, grad))
        d_kernel = None if 1 in skip else tf.raw_ops.Conv2DBackpropFilter(
            input=op.inputs[0], filter_sizes=tf.shape(op.inputs[1]), out_backprop=grad,
            strides=op.get_attr("strides"), padding=op.get_attr("padding"),
            explicit_paddings=op.get_attr("explicit_paddings"), use_cudnn_on_gpu=op.get_attr("use_cudnn_on_gpu"),
            data_format=op.get_attr("data_format"), dilations=op.get_attr("dilations"))
        return [d_input, d_kernel]

    setattr(gradient, _ORIGINAL, original)
    entry["type"] = gradient
    return True


@contextlib.contextmanager
def tensorflow_conv2d_gradient() -> Iterator[None]:
    """TensorFlow's own Conv2D gradient for what is traced inside the block (a baseline to measure against)."""
    entry = _registry_entry()
    if entry is None or not hasattr(entry["type"], _ORIGINAL):
        yield
        return
    ours = entry["type"]
    entry["type"] = getattr(ours, _ORIGINAL)
    try:
        yield
    finally:
        entry["type"] = ours


def _registry_entry() -> dict[str, Any] | None:
    from tensorflow.python.framework import ops

    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    entry = registry.get("Conv2D") if isinstance(registry, dict) else None
    return entry if isinstance(entry, dict) and callable(entry.get("type")) else None


def _input_gradient(tf: Any, op: Any, grad: Any) -> Any:
    """The gradient for the convolution's input, or NotImplemented for a convolution left to TensorFlow."""
    data_format, padding = _text(op.get_attr("data_format")), _text(op.get_attr("padding"))
    _, stride_h, stride_w, _ = op.get_attr("strides")
    kernel, inputs = op.inputs[1], op.inputs[0]
    k_h, k_w = kernel.shape[0], kernel.shape[1]
    if data_format != "NHWC" or list(op.get_attr("dilations")) != [1, 1, 1, 1] or padding not in ("SAME", "VALID") \
            or k_h is None or k_w is None:
        return NotImplemented
    if k_h == k_w == 1:
        product = tf.einsum("nhwo,io->nhwi", grad, kernel[0, 0])
        if stride_h == stride_w == 1:
            return product
        return _spread(tf, product, stride_h, stride_w, tf.shape(inputs))
    if stride_h != 1 or stride_w != 1 or (padding == "SAME" and (k_h % 2 == 0 or k_w % 2 == 0)):
        return NotImplemented
    flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
    if padding == "VALID":
        grad = tf.pad(grad, [[0, 0], [k_h - 1, k_h - 1], [k_w - 1, k_w - 1], [0, 0]])
    return tf.nn.conv2d(grad, flipped, 1, padding)


def _text(attr: str | bytes) -> str:
    """A string attribute, which a traced op gives as bytes and an eager one as str."""
    return attr.decode() if isinstance(attr, bytes) else attr


def _spread(tf: Any, product: Any, stride_h: int, stride_w: int, input_shape: Any) -> Any:
    """A strided 1x1 convolution's input gradient: ``product`` at every stride-th position, zero between."""
    shape = tf.shape(product)
    n, rows, cols, channels = shape[0], shape[1], shape[2], shape[3]
    spread = tf.pad(product[:, :, None, :, None, :],
                    [[0, 0], [0, 0], [0, stride_h - 1], [0, 0], [0, stride_w - 1], [0, 0]])
    spread = tf.reshape(spread, [n, rows * stride_h, cols * stride_w, channels])
    return spread[:, :input_shape[1], :input_shape[2], :]
