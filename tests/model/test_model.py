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
    assert [type(l).__name__ for l in plain.layers] == ["InputLayer", "Dense", "Activation"]


def test_classifier_equals_extractor_then_head(images):
    backbone = build_backbone(weights="none", image_size=32)
    head = build_head(Recipe(head_batchnorm=True), n_classes=3, feature_dim=2048)
    extractor = build_feature_extractor(backbone, pooling="max")
    classifier = build_classifier(backbone, head, pooling="max", augmentation=build_augmentation(0.5, seed=0))
    via_features = head(extractor(images)).numpy()
    assert np.allclose(classifier.predict(images, verbose=0), via_features, atol=1e-5)


@pytest.mark.parametrize("initial_epoch", [0, 2])
def test_an_epoch_per_call_trains_exactly_as_one_step_per_call(monkeypatch, initial_epoch):
    """Long head runs train a whole epoch per call of Keras's traced loop; tiny tests would never take that
    path by themselves, so both are forced here and must give the same model after every epoch."""
    from lepidopt._tf import keras as import_keras
    from lepidopt.model import _training, compile_model, fit_on_views, predict_arrays

    keras = import_keras()
    rng = np.random.default_rng(0)
    views = [rng.normal(size=(70, 16)).astype(np.float16) for _ in range(2)]
    labels = rng.integers(0, 3, size=70)
    recipe = Recipe(head_dense_layers=1, head_units=8, head_dropout=0.3, head_batchnorm=True)

    def train(multi_step_from: int):
        monkeypatch.setattr(_training, "MULTI_STEP_FROM", multi_step_from)
        keras.utils.set_random_seed(1)
        head = build_head(recipe, n_classes=3, feature_dim=16)
        compile_model(head, optimizer="adam", learning_rate=1e-2)
        outputs, epochs = [], []
        fit_on_views(head, views, labels, epochs=5, batch_size=16, class_weight={0: 1.0, 1: 2.0, 2: 0.5}, seed=3,
                     initial_epoch=initial_epoch,
                     after_epoch=lambda e: (epochs.append(e), outputs.append(predict_arrays(head, views[0]))))
        return head.steps_per_execution, epochs, outputs

    one_step = train(10**9)
    an_epoch = train(0)
    assert (one_step[0], an_epoch[0]) == (1, 5)  # 70 images in batches of 16: 5 steps an epoch
    assert one_step[1] == an_epoch[1] == list(range(initial_epoch, 5))
    for a, b in zip(one_step[2], an_epoch[2]):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_every_epoch_on_cached_features_has_its_own_order_of_rows_drawn_from_the_seed_and_epoch():
    """A shuffle seeded inside the per-epoch pipeline gave every epoch the same order (seen before this test)."""
    from lepidopt.model._training import epoch_batches

    rows = np.arange(40)
    views = [np.stack([rows, rows + 1000]).T.astype(np.float16), np.stack([rows, rows + 2000]).T.astype(np.float16)]

    def epochs(seed: int, first: int) -> list[tuple[np.ndarray, np.ndarray]]:
        batches = list(epoch_batches(views, rows, np.ones(40, np.float32), seed=seed, batch_size=16, first_epoch=first,
                                     epochs=4))
        inputs = np.concatenate([b[0].numpy() for b in batches]).reshape(-1, 40, 2)
        labels = np.concatenate([b[1].numpy() for b in batches]).reshape(-1, 40)
        return list(zip(inputs, labels))

    run = epochs(seed=3, first=0)
    orders = [labels for _, labels in run]
    assert all(sorted(order) == list(range(40)) for order in orders)
    assert len({tuple(order) for order in orders}) == 4  # four epochs, four orders
    for epoch, (inputs, labels) in enumerate(run):  # each row's features travel with its label, from the epoch's view
        np.testing.assert_array_equal(inputs[:, 0], labels)
        np.testing.assert_array_equal(inputs[:, 1], labels + (1000 if epoch % 2 == 0 else 2000))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(run, epochs(seed=3, first=0)))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(run[2:], epochs(seed=3, first=2)))  # a resumed run
    assert not np.array_equal(run[0][1], epochs(seed=4, first=0)[0][1])


@pytest.mark.parametrize("optimizer, slots", [("adam", 2), ("adamw", 2), ("sgd", 1)])
def test_a_compiled_model_has_its_optimizer_state_before_the_first_step(optimizer, slots):
    """Made inside the first trace of the training step instead, it makes TensorFlow trace that step twice."""
    from lepidopt.model import compile_model

    head = build_head(Recipe(head_dense_layers=1, head_units=8, head_batchnorm=True), n_classes=3, feature_dim=16)
    compile_model(head, optimizer=optimizer, learning_rate=1e-3)
    assert head.optimizer.built
    state = [v for v in head.optimizer.variables if v.path.rsplit("/", 1)[-1].endswith(("momentum", "velocity"))]
    assert len(state) == slots * len(head.trainable_variables)
