"""A trial interrupted in either phase resumes from its checkpoint: same steps, no gap, no repeat."""

import dataclasses
import signal

import numpy as np
import pytest

from conftest import TINY_SPACE
from lepidopt.data import DataSpec, make_split, scan_source
from lepidopt.errors import ModelError
from lepidopt.trial import NullReporter, Reporter, StudyData, run_trial
from lepidopt.trial import Checkpoints
from lepidopt._signals import Interrupted
from lepidopt.spaces import load_space


@pytest.fixture(scope="module")
def data(demo_folder, tmp_path_factory):
    split = make_split(scan_source(DataSpec(str(demo_folder))), seed=0)
    return StudyData(split=split, cache_dir=tmp_path_factory.mktemp("cache"))


class InterruptAt(Reporter):
    """Records what is reported; raises Interrupted (as SIGTERM would) once step ``at`` is reported."""

    def __init__(self, at=None):
        self.at, self.steps = at, []

    def report(self, value, step):
        self.steps.append(step)
        if step == self.at:
            raise Interrupted(signal.SIGTERM)

    def should_stop(self):
        return False


@pytest.mark.slow
@pytest.mark.parametrize("phase, at", [("head", 2), ("finetune", 5)])
def test_an_interrupted_trial_resumes_after_its_last_checkpoint(data, tmp_path, phase, at):
    space = load_space(TINY_SPACE)
    recipe = dataclasses.replace(space.recipe(space.baseline), epochs_head=4, epochs_finetune=3)
    checkpoints = Checkpoints(tmp_path / "trials" / "0", head_every=0)
    first = InterruptAt(at)
    with pytest.raises(Interrupted):
        run_trial(recipe, data, first, seed=4, checkpoints=checkpoints)
    saved = checkpoints.latest()
    assert (saved.phase, saved.step) == (phase, at)
    assert len(list((tmp_path / "trials" / "0").glob("step-*.npz"))) == 2  # weights and optimizer of one step

    second = InterruptAt()
    resumed = run_trial(recipe, data, second, seed=4, checkpoints=Checkpoints(tmp_path / "trials" / "0", head_every=0))
    assert second.steps == list(range(7))  # the saved steps again, then the rest, once each
    assert [h["step"] for h in resumed.history] == list(range(7))
    assert [h["phase"] for h in resumed.history] == ["head"] * 4 + ["finetune"] * 3
    assert resumed.history[:at + 1] == saved.history


def test_a_checkpoint_restores_weights_and_optimizer_state(data, tmp_path):
    from lepidopt._tf import keras as import_keras

    keras = import_keras()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    x, y = np.random.default_rng(0).normal(size=(32, 4)).astype("float32"), np.arange(32) % 3
    model.fit(x, y, epochs=2, verbose=0)
    checkpoints = Checkpoints(tmp_path, head_every=0)
    checkpoints.save("head", 1, [{"step": 0}, {"step": 1}], model)
    copy = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    copy.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    checkpoints.restore(copy, checkpoints.latest())
    for a, b in zip(model.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.optimizer.variables, copy.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    checkpoints.remove()
    assert not tmp_path.exists()


@pytest.mark.slow
def test_a_trial_whose_loss_is_not_finite_fails_with_the_reason(data, tmp_path):
    """Weights with a NaN in them (a damaged file) make every feature NaN: the trial fails and says so."""
    from lepidopt._tf import keras as import_keras

    keras = import_keras()
    resnet = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    weights = resnet.get_weights()
    weights[-1][:] = np.nan
    resnet.set_weights(weights)
    path = tmp_path / "damaged.weights.h5"
    resnet.save_weights(path)
    space = load_space(TINY_SPACE)
    recipe = dataclasses.replace(space.recipe(space.baseline), finetune_unfreeze="none", weights=str(path))
    with pytest.raises(ModelError, match="head epoch 0: the validation loss is not finite .* lower head.lr usually"):
        run_trial(recipe, data, NullReporter(), seed=0)


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_a_checkpoint_waits_for_it_and_a_second_one_exits_at_once(tmp_path, signal_number):
    import subprocess
    import sys
    import time

    script = f"""
import time
from lepidopt._signals import Interrupted, checkpoint_in_progress, stopping_on_signals
with stopping_on_signals():
    try:
        with checkpoint_in_progress():
            open({str(tmp_path / 'writing')!r}, 'w').close()
            time.sleep(float(__import__('sys').argv[1]))
            open({str(tmp_path / 'written')!r}, 'w').close()
    except Interrupted:
        raise SystemExit(42)
"""
    for signals, code, written in ((1, 42, True), (2, 128 + signal_number, False)):
        for name in ("writing", "written"):
            (tmp_path / name).unlink(missing_ok=True)
        child = subprocess.Popen([sys.executable, "-c", script, "3"])
        while not (tmp_path / "writing").exists():
            time.sleep(0.01)
        for _ in range(signals):
            child.send_signal(signal_number)
            time.sleep(0.2)
        assert child.wait(timeout=30) == code
        assert (tmp_path / "written").exists() == written  # one signal: the write completes first
