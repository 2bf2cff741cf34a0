"""Phase 1 at ETHEC's size: one head trial on cached features, a whole epoch per call of Keras's traced
training loop (what lepidopt does for long runs) against one step per call (Keras's default), in the
same process, and at the demo's size, where one step per call is kept.

    .venv/bin/python benchmarks/head_epochs.py [--images 33000] [--epochs 8]

Features: float16 random vectors of 2048 dimensions (ResNet-50's pooled output) in 6 imbalanced classes,
33,000 training images (ETHEC's training split at family level) and 1,000 validation images; head: one
dense layer of 256 units, batch norm, dropout 0.2, Adam, batch 32, as in the built-in spaces. Both ways
must give the same losses; the script checks it.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def head_run(features, labels, val, *, epochs: int, per_call: int | None) -> tuple[float, list[float]]:
    import numpy as np

    from lepidopt._tf import keras as import_keras
    from lepidopt.model import _training, build_head, compile_model, fit_on_views, predict_arrays
    from lepidopt.recipe import Recipe

    keras = import_keras()
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    recipe = Recipe(head_dense_layers=1, head_units=256, head_dropout=0.2, head_batchnorm=True)
    head = build_head(recipe, n_classes=6, feature_dim=features.shape[1])
    compile_model(head, optimizer="adam", learning_rate=1e-3)
    saved = _training.MULTI_STEP_FROM
    _training.MULTI_STEP_FROM = 10**12 if per_call == 1 else 0
    losses: list[float] = []
    try:
        started = time.perf_counter()
        fit_on_views(head, [features], labels, epochs=epochs, batch_size=32, class_weight=None, seed=0,
                     after_epoch=lambda e: losses.append(float(np.mean(predict_arrays(head, val)))))
        return time.perf_counter() - started, losses
    finally:
        _training.MULTI_STEP_FROM = saved


def data(n: int, rng):
    import numpy as np

    sizes = np.array([542, 319, 184, 148, 66, 12], float)  # ETHEC's family proportions
    labels = rng.choice(6, size=n, p=sizes / sizes.sum()).astype(np.int64)
    centres = rng.normal(size=(6, 2048)).astype(np.float32)
    features = (centres[labels] + rng.normal(scale=3.0, size=(n, 2048))).astype(np.float16)
    return features, labels


def main() -> None:
    import numpy as np

    from lepidopt.model._training import MULTI_STEP_FROM

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=33_000)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    val, _ = data(1000, rng)
    print(f"head_epochs: one head trial of {args.epochs} epochs on cached 2048-d features, batch 32, "
          f"{os.cpu_count()} cores")
    for n in (args.images, 890):  # ETHEC's training split; the demo's (scale 0.25)
        features, labels = data(n, rng)
        head_run(features[:64], labels[:64], val, epochs=1, per_call=1)  # TensorFlow's first-use costs, unclocked
        one, one_losses = head_run(features, labels, val, epochs=args.epochs, per_call=1)
        epoch, epoch_losses = head_run(features, labels, val, epochs=args.epochs, per_call=None)
        chosen = "an epoch" if -(-n // 32) * args.epochs >= MULTI_STEP_FROM else "one step"
        print(f"  {n:>6} images: one step per call {one:6.2f} s, an epoch per call {epoch:6.2f} s: "
              f"{one / epoch:.2f}x; same outputs: {np.allclose(one_losses, epoch_losses, rtol=0, atol=1e-6)}; "
              f"lepidopt runs {chosen} per call here")


if __name__ == "__main__":
    main()
