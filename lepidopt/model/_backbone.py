"""ResNet-50 from keras.applications, with its input preprocessing inside, and its weights from
ImageNet, nowhere (random) or a local file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelError, option
from ._seeds import set_seeds

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

__all__ = ["build_backbone", "weights_identity", "ResNetPreprocess", "load_classifier", "RANDOM_INIT_SEED"]

# weights 'none' is one fixed random initialisation, the same in every trial and process: features cached
# by one trial must come from the very network that another trial fine-tunes or exports.
RANDOM_INIT_SEED = 0


def _keras() -> Any:
    from .._tf import keras

    return keras()


def weights_identity(weights: str) -> str:
    """A string that changes when the weights do: 'imagenet', the random initialisation, or the file's path,
    size and mtime."""
    if weights == "none":
        return f"none:seed{RANDOM_INIT_SEED}"
    if weights == "imagenet":
        return weights
    stat = _weights_file(weights).stat()
    return f"file:{Path(weights).resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def _weights_file(weights: str) -> Path:
    path = Path(weights)
    if not path.is_file():
        raise ModelError(
            f"weights {weights!r}", "is neither 'imagenet', 'none' nor an existing file.",
            fix="Give the path of a ResNet-50 (include_top=False) weights file."
        )
    return path


def _preprocess_class() -> type[keras.layers.Layer]:
    keras = _keras()

    Layer: Any = keras.layers.Layer

    @keras.saving.register_keras_serializable(package="lepidopt")
    class ResNetPreprocess(Layer):
        """RGB in [0, 255] to ResNet-50's 'caffe' input: BGR with the ImageNet channel means removed."""

        def call(self, inputs: tf.Tensor) -> tf.Tensor:
            x = keras.ops.cast(inputs, "float32")
            x = x[..., ::-1]
            return x - keras.ops.convert_to_tensor([103.939, 116.779, 123.68], dtype="float32")

    return ResNetPreprocess


_PREPROCESS = None


def ResNetPreprocess(**kwargs: Any) -> keras.layers.Layer:
    global _PREPROCESS
    if _PREPROCESS is None:
        _PREPROCESS = _preprocess_class()
    return _PREPROCESS(**kwargs)


def build_backbone(*, weights: str, image_size: int) -> keras.Model:
    """ResNet-50 without its top, from RGB images in [0, 255] to the last stage's feature map.

    ``weights``: 'imagenet' (Keras downloads them on first use), 'none' (a random initialisation, always
    the same one: it reseeds Keras's random generators with RANDOM_INIT_SEED) or the path of a weights file
    saved from a ResNet-50 with include_top=False (for machines without internet).
    """
    keras = _keras()
    if image_size < 32:
        raise ModelError(f"image_size {image_size}", "ResNet-50 needs at least 32 px.")
    source: str | None
    if weights == "imagenet":
        source = "imagenet"
    elif weights == "none":
        source = None
        set_seeds(RANDOM_INIT_SEED)
    else:
        _weights_file(weights)
        source = None
    inputs = keras.Input((image_size, image_size, 3), name="image")
    try:
        resnet = keras.applications.ResNet50(include_top=False, weights=source, input_shape=(image_size, image_size, 3))
    except Exception as exc:
        if source != "imagenet":
            raise
        raise ModelError(
            "weights 'imagenet'", f"Keras could not fetch the ImageNet weights ({type(exc).__name__}: "
            f"{str(exc)[:300]}).", fix="On a machine without internet, copy "
            "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 into ~/.keras/models/, or pass "
            f"{option('weights')} with a local weights file's path, or use {option('weights', 'none')}."
        ) from None
    if source is None and weights != "none":
        try:
            resnet.load_weights(weights)
        except Exception as exc:
            raise ModelError(
                f"weights file {weights!r}", "cannot be loaded into ResNet-50 without its top "
                f"({type(exc).__name__}: {exc}).", fix="Save it with "
                "keras.applications.ResNet50(include_top=False, ...).save_weights('x.weights.h5')."
            ) from None
    outputs = resnet(ResNetPreprocess(name="resnet_preprocess")(inputs))
    return keras.Model(inputs, outputs, name="backbone")


def load_classifier(path: str | Path) -> keras.Model:
    """A model saved by ``lepidopt export`` (its preprocessing layer registered first)."""
    from ._levels import register_level_classes

    ResNetPreprocess()  # registers the layer class with Keras
    register_level_classes()
    return _keras().models.load_model(path)
