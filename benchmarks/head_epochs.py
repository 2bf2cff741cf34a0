"""Phase 1 on cached features: heads trained by lepidopt's head trainer (one traced epoch per architecture,
kept across trials) against Keras's ``Model.fit`` on a freshly built head per trial (one traced step, called
once per batch, over one tf.data pipeline), in the same process, at ETHEC's size and at the demo's.

    .venv/bin/python benchmarks/head_epochs.py [--images 33000] [--epochs 8] [--trials 4]

Features: float16 random vectors of 2048 dimensions (ResNet-50's pooled output) in 6 imbalanced classes,
``--images`` training images (ETHEC's training split at family level) and 1,000 validation images; head:
one dense layer of 256 units, batch norm, dropout, Adam, batch 32, as in the built-in spaces, with another
dropout rate and learning rate in every trial. Every trial trains ``--epochs`` epochs and is scored on the
validation images after each. Both ways seed the trial as lepidopt does (``set_seeds``: Keras's
``set_random_seed`` would also empty TensorFlow's kernel cache) and must give the same outputs to the bit;
the script checks it.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def recipe_of(trial: int):
    from lepidopt.recipe import Recipe

    return Recipe(head_dense_layers=1, head_units=256, head_dropout=0.1 + 0.1 * (trial % 4), head_batchnorm=True)


def keras_fit_trial(trial: int, features, labels, val, *, epochs: int) -> tuple[float, list]:
    """The baseline: a new compiled head, one ``fit`` over a tf.data pipeline of every epoch's batches in
    that epoch's order, scored on the validation images by a callback after each epoch."""
    import numpy as np

    import keras
    import tensorflow as tf
    from lepidopt.model import build_head, compile_model, set_seeds
    from lepidopt.model import shuffled_epoch

    started = time.perf_counter()
    set_seeds(trial)
    head = build_head(recipe_of(trial), n_classes=6, feature_dim=features.shape[1])
    compile_model(head, optimizer="adam", learning_rate=1e-3 * (1 + trial))
    inputs, weights = tf.constant(features), tf.ones(len(labels))

    def epoch_of(epoch):
        x, y, w = shuffled_epoch(inputs, labels, weights, tf.stack([tf.constant(trial, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices((x, y, w)).batch(32)

    batches = tf.data.Dataset.range(epochs).flat_map(epoch_of).map(lambda x, y, w: (tf.cast(x, tf.float32), y, w))
    outputs = []

    class Validate(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            outputs.append(head(val.astype(np.float32), training=False).numpy())

    head.fit(batches.prefetch(2), epochs=epochs, steps_per_epoch=-(-len(labels) // 32), callbacks=[Validate()],
             verbose=0)
    return time.perf_counter() - started, outputs


def trainer_trial(trainers, trial: int, features, labels, val, *, epochs: int) -> tuple[float, list]:
    from lepidopt.model import build_head, set_seeds

    started = time.perf_counter()
    set_seeds(trial)
    head = build_head(recipe_of(trial), n_classes=6, feature_dim=features.shape[1])
    trainer = trainers.trainer(recipe_of(trial), n_classes=6, feature_dim=features.shape[1])
    trainer.start(head, learning_rate=1e-3 * (1 + trial))
    outputs = []
    trainer.fit([features], labels, val=val, epochs=epochs, batch_size=32, class_weight=None, seed=trial,
                after_epoch=lambda e, out: outputs.append(out))
    head.set_weights(trainer.model.get_weights())
    return time.perf_counter() - started, outputs


def data(n: int, rng):
    import numpy as np

    sizes = np.array([542, 319, 184, 148, 66, 12], float)  # ETHEC's family proportions
    labels = rng.choice(6, size=n, p=sizes / sizes.sum()).astype(np.int64)
    centres = rng.normal(size=(6, 2048)).astype(np.float32)
    features = (centres[labels] + rng.normal(scale=3.0, size=(n, 2048))).astype(np.float16)
    return features, labels


def main() -> None:
    import numpy as np

    from lepidopt.model import HeadTrainers

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=33_000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--trials", type=int, default=4)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    val, _ = data(1000, rng)
    print(f"head_epochs: {args.trials} head trials of {args.epochs} epochs each on cached 2048-d features, "
          f"batch 32, {os.cpu_count()} cores")
    from environment import print_environment

    print_environment()
    for n in (args.images, 890):  # ETHEC's training split; the demo's (scale 0.25)
        features, labels = data(n, rng)
        keras_fit_trial(99, features[:64], labels[:64], val, epochs=1)  # TensorFlow's first-use costs, unclocked
        trainers = HeadTrainers()
        keras_seconds, trainer_seconds, same = [], [], True
        for trial in range(args.trials):
            seconds, expected = keras_fit_trial(trial, features, labels, val, epochs=args.epochs)
            keras_seconds.append(seconds)
            seconds, outputs = trainer_trial(trainers, trial, features, labels, val, epochs=args.epochs)
            trainer_seconds.append(seconds)
            same = same and all(np.array_equal(a, b) for a, b in zip(expected, outputs, strict=True))
        print(f"  {n:>6} images: Model.fit on a new head {sum(keras_seconds) / args.trials:6.2f} s a trial, "
              f"lepidopt's head trainer {sum(trainer_seconds) / args.trials:6.2f} s a trial "
              f"(first trial {trainer_seconds[0]:.2f} s, traced; later {np.mean(trainer_seconds[1:]):.2f} s): "
              f"{sum(keras_seconds) / sum(trainer_seconds):.2f}x; same outputs to the bit: {same}")


if __name__ == "__main__":
    main()
