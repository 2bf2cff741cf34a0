import numpy as np
import pytest

from lepidopt.errors import ModelError
from lepidopt.model import (build_augmentation, build_backbone, build_classifier, build_feature_extractor, build_head,
                            trainable_stages, unfreeze)
from lepidopt.recipe import Recipe


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, size=(4, 32, 32, 3)).astype("float32")


def test_backbone_weights_from_a_local_file_the_test_wrote(tmp_path, images):
    import keras

    keras.utils.set_random_seed(1)
    source = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "resnet50_notop.weights.h5"
    source.save_weights(path)

    keras.utils.set_random_seed(2)  # a different random init, so only loading can make them agree
    loaded = build_backbone(weights=str(path), image_size=32)
    fresh = build_backbone(weights="none", image_size=32)
    from lepidopt.model._backbone import ResNetPreprocess

    expected = source(ResNetPreprocess()(images)).numpy()
    assert np.allclose(loaded(images).numpy(), expected, atol=1e-4)
    assert not np.allclose(fresh(images).numpy(), expected, atol=1e-4)


def test_backbone_weights_errors(tmp_path):
    with pytest.raises(ModelError, match=r"weights '.*nope\.h5': is neither 'imagenet', 'none' nor an existing file"):
        build_backbone(weights=str(tmp_path / "nope.h5"), image_size=32)
    junk = tmp_path / "junk.weights.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(ModelError, match=r"weights file '.*junk\.weights\.h5': cannot be loaded into ResNet-50"):
        build_backbone(weights=str(junk), image_size=32)


def test_unfreeze_by_stage_keeps_batchnorm_frozen():
    import keras

    backbone = build_backbone(weights="none", image_size=32)
    assert trainable_stages("conv4") == ("conv4", "conv5")
    resnet = backbone.get_layer("resnet50")
    assert unfreeze(backbone, "none") == 0 and not backbone.trainable_weights
    n5 = unfreeze(backbone, "conv5")
    names = {w.path.split("/")[-2] if "/" in w.path else w.path for w in backbone.trainable_weights}
    assert names and all(n.startswith("conv5_") and not n.endswith("_bn") for n in names)
    n4 = unfreeze(backbone, "conv4")
    n_all = unfreeze(backbone, "all")
    assert 0 < n5 < n4 < n_all
    for layer in resnet.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            assert not layer.trainable
    with pytest.raises(ModelError, match=r"finetune.unfreeze 'conv6': must be one of"):
        unfreeze(backbone, "conv6")


def test_augmentation_is_the_identity_at_zero_and_only_active_in_training(images):
    assert build_augmentation(0.0) is None
    aug = build_augmentation(1.0, seed=1)
    assert np.array_equal(aug(images, training=False).numpy(), images)
    assert not np.allclose(aug(images, training=True).numpy(), images)
    small = build_augmentation(0.25, seed=1)
    big_change = np.abs(aug(images, training=True).numpy() - images).mean()
    small_change = np.abs(small(images, training=True).numpy() - images).mean()
    assert small_change < big_change


def test_head_follows_the_recipe():
    recipe = Recipe(head_dense_layers=2, head_units=16, head_dropout=0.2, head_batchnorm=True, head_activation="gelu")
    head = build_head(recipe, n_classes=5, feature_dim=2048)
    names = [layer.name for layer in head.layers]
    assert names.count("head_dense_0") == 1 and "head_dense_1" in names and "head_input_bn" in names
    assert head.output_shape == (None, 5)
    plain = build_head(Recipe(), n_classes=3, feature_dim=2048)
    assert [type(layer).__name__ for layer in plain.layers] == ["InputLayer", "Dense", "Activation"]


def test_classifier_equals_extractor_then_head(images):
    backbone = build_backbone(weights="none", image_size=32)
    head = build_head(Recipe(head_batchnorm=True), n_classes=3, feature_dim=2048)
    extractor = build_feature_extractor(backbone, pooling="max")
    classifier = build_classifier(backbone, head, pooling="max", augmentation=build_augmentation(0.5, seed=0))
    via_features = head(extractor(images)).numpy()
    assert np.allclose(classifier.predict(images, verbose=0), via_features, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer, initial_epoch", [("adam", 0), ("sgd", 2)])
def test_a_reused_head_trainer_trains_to_the_bit_as_keras_fit_trains_the_trials_own_head(optimizer, initial_epoch):
    """One traced trainer serves every trial of an architecture; each must train exactly as its own freshly
    built head under Model.fit would (Adam magnifies any last-bit difference), whatever trained before it."""
    from lepidopt._tf import keras as import_keras
    from lepidopt.model import HeadTrainers, compile_model
    from lepidopt.model._head_trainers import shuffled_epoch

    keras = import_keras()
    rng = np.random.default_rng(0)
    trainers = HeadTrainers()

    def trial(seed: int, n: int, dropout: float, lr: float, batch_size: int):
        views = [rng.normal(size=(n, 16)).astype(np.float16) for _ in range(2)]
        labels = rng.integers(0, 3, size=n)
        val = rng.normal(size=(9, 16)).astype(np.float16)
        weights = {0: 1.0, 1: 2.0, 2: 0.5}
        recipe = Recipe(head_dense_layers=1, head_units=8, head_dropout=dropout, head_batchnorm=True, optimizer=optimizer)

        keras.utils.set_random_seed(seed)
        head = build_head(recipe, n_classes=3, feature_dim=16)
        trainer = trainers.trainer(recipe, n_classes=3, feature_dim=16)
        trainer.start(head, learning_rate=lr)
        ours: list[tuple[int, np.ndarray]] = []
        trainer.fit(views, labels, val=val, epochs=5, batch_size=batch_size, class_weight=weights, seed=seed,
                    initial_epoch=initial_epoch, after_epoch=lambda e, outputs: ours.append((e, outputs)))

        keras.utils.set_random_seed(seed)
        head = build_head(recipe, n_classes=3, feature_dim=16)
        compile_model(head, optimizer=optimizer, learning_rate=lr)
        for e, (epoch, outputs) in zip(range(initial_epoch, 5), ours, strict=True):
            x, y, w = (t.numpy() for t in shuffled_epoch(views[e % 2], labels, np.array(
                [weights[int(c)] for c in labels], np.float32), np.array([seed, e])))
            head.fit(x.astype(np.float32), y, sample_weight=w, batch_size=batch_size, shuffle=False, verbose=0)
            assert epoch == e
            np.testing.assert_array_equal(outputs, head(val.astype(np.float32), training=False).numpy())
        return trainer

    first = trial(seed=1, n=70, dropout=0.3, lr=1e-2, batch_size=16)
    assert trial(seed=2, n=45, dropout=0.1, lr=3e-3, batch_size=8) is first  # reused, with another size and rate
    assert trial(seed=3, n=70, dropout=0.45, lr=2e-2, batch_size=16) is first


def test_every_epoch_on_cached_features_has_its_own_order_of_rows_drawn_from_the_seed_and_epoch():
    """A shuffle seeded inside a per-epoch pipeline once gave every epoch the same order."""
    from lepidopt.model._head_trainers import shuffled_epoch

    rows = np.arange(40)
    inputs = np.stack([rows, rows + 1000]).T.astype(np.float16)

    def order(seed: int, epoch: int) -> np.ndarray:
        x, y, w = (t.numpy() for t in shuffled_epoch(inputs, rows, rows.astype(np.float32), np.array([seed, epoch])))
        np.testing.assert_array_equal(x[:, 0], y)  # each row's features and weight travel with its label
        np.testing.assert_array_equal(x[:, 1], y + 1000)
        np.testing.assert_array_equal(w, y)
        return y

    orders = [order(3, epoch) for epoch in range(4)]
    assert all(sorted(o) == list(range(40)) for o in orders)
    assert len({tuple(o) for o in orders}) == 4  # four epochs, four orders
    assert all(np.array_equal(o, order(3, epoch)) for epoch, o in enumerate(orders))  # the same on every run
    assert not np.array_equal(orders[0], order(4, 0))


def test_a_head_trainer_keeps_at_most_its_capacity_the_least_recently_used_dropped():
    from lepidopt.model import HeadTrainers

    trainers = HeadTrainers(capacity=2)
    recipes = [Recipe(head_dense_layers=1, head_units=units) for units in (4, 8, 16)]
    a, b = (trainers.trainer(r, n_classes=3, feature_dim=8) for r in recipes[:2])
    assert trainers.trainer(recipes[0], n_classes=3, feature_dim=8) is a  # a is now the most recently used
    trainers.trainer(recipes[2], n_classes=3, feature_dim=8)  # drops b
    assert trainers.trainer(recipes[0], n_classes=3, feature_dim=8) is a
    assert trainers.trainer(recipes[1], n_classes=3, feature_dim=8) is not b
    assert trainers.trainer(Recipe(head_dense_layers=1, head_units=4, head_dropout=0.2), n_classes=3,
                            feature_dim=8) is not a  # dropout layers make another architecture


@pytest.mark.parametrize("optimizer, slots", [("adam", 2), ("adamw", 2), ("sgd", 1)])
def test_a_compiled_model_has_its_optimizer_state_before_the_first_step(optimizer, slots):
    """Made inside the first trace of the training step instead, it makes TensorFlow trace that step twice."""
    from lepidopt.model import compile_model

    head = build_head(Recipe(head_dense_layers=1, head_units=8, head_batchnorm=True), n_classes=3, feature_dim=16)
    compile_model(head, optimizer=optimizer, learning_rate=1e-3)
    assert head.optimizer.built
    state = [v for v in head.optimizer.variables if v.path.rsplit("/", 1)[-1].endswith(("momentum", "velocity"))]
    assert len(state) == slots * len(head.trainable_variables)
