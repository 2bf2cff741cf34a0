"""Fine-tuning steps with lepidopt's Conv2D gradient (the input's part as a forward convolution, see
``lepidopt/_conv_gradient.py``) against TensorFlow's own, in the same process, on what phase 2 trains.

    .venv/bin/python benchmarks/finetune_step.py [--steps 8] [--batch 32]

Cases: conv5 on cached conv4 activations at 64 px (the demo space) and at 224 px (ETHEC's size), and conv4
with conv5 on 224 px images (deeper unfreezing, which trains on images). Model: lepidopt's ResNet-50
(weights none, every BatchNormalization frozen) with a 6-class softmax head on average pooling, Adam at
1e-5, as phase 2 builds it. Each way builds and traces its own model, then times ``--steps`` training steps
on one batch after two warm-up steps. Both ways start from the same weights and take one step on the same
batch first; the script prints how far apart their gradients are (float rounding, not a different result).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

CASES = (("conv5", 64, "activations"), ("conv5", 224, "activations"), ("conv4", 224, "images"))


def build(stage: str, size: int, inputs: str):
    from lepidopt._tf import keras
    from lepidopt.model import build_backbone, build_classifier, build_top_classifier, compile_model, split_backbone
    from lepidopt.model import unfreeze

    backbone = build_backbone(weights="none", image_size=size)
    unfreeze(backbone, stage)
    head = keras().Sequential([keras().layers.Dense(6, activation="softmax")])
    if inputs == "activations":
        prefix, top = split_backbone(backbone)
        model = build_top_classifier(top, head, pooling="avg")
    else:
        prefix, model = None, build_classifier(backbone, head, pooling="avg")
    compile_model(model, optimizer="adam", learning_rate=1e-5)
    return model, prefix


def gradients(model, x, y):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=True))
    return [g.numpy() for g in tape.gradient(loss, model.trainable_weights)]


def timed(model, x, y, steps: int) -> list[float]:
    for _ in range(2):
        model.train_on_batch(x, y)
    seconds = []
    for _ in range(steps):
        started = time.perf_counter()
        model.train_on_batch(x, y)
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()

    import numpy as np

    from environment import print_environment
    from lepidopt._conv_gradient import tensorflow_conv2d_gradient
    from lepidopt._tf import tensorflow

    tensorflow()
    print_environment()
    rng = np.random.default_rng(0)
    print(f"\nbatch {args.batch}, median of {args.steps} training steps after 2 warm-up steps")
    for stage, size, inputs in CASES:
        images = rng.uniform(0, 255, (args.batch, size, size, 3)).astype(np.float32)
        y = rng.integers(0, 6, args.batch)
        results = {}
        for way, gradient in (("tensorflow", tensorflow_conv2d_gradient), ("lepidopt", contextlib.nullcontext)):
            with gradient():
                model, prefix = build(stage, size, inputs)
                x = images if prefix is None else np.asarray(prefix(images, training=False))
                first = gradients(model, x, y)
                seconds = timed(model, x, y, args.steps)
            results[way] = (statistics.median(seconds), first)
        (base, base_grads), (ours, our_grads) = results["tensorflow"], results["lepidopt"]
        apart = max(float(np.max(np.abs(a - b)) / (np.max(np.abs(a)) + 1e-12)) for a, b in zip(base_grads, our_grads))
        print(f"{stage} from {inputs:<11} at {size:>3} px: lepidopt {ours:.3f} s a step, TensorFlow's gradient "
              f"{base:.3f} s: {base / ours:.2f}x  (gradients apart by at most {apart:.1e} of their largest)")


if __name__ == "__main__":
    main()
