"""The pruners judge like with like: a head epoch against head epochs, a fine-tuning epoch against fine-tuning
epochs at the same unfreeze depth after a head of the same length; and they wait for enough finished trials of
that kind, as many as the space searches params."""

import optuna
import pytest

from conftest import TINY_SPACE
from lepidopt.engines import epoch_kind, make_pruner, pruning_schedule
from lepidopt.resolve import resolve_run
from lepidopt.study import attrs

HEAD_EPOCHS = 4


def recipe(unfreeze: str, epochs_head: int = HEAD_EPOCHS) -> dict:
    return {"epochs_head": epochs_head, "finetune.unfreeze": unfreeze}


def finished(study: optuna.Study, values: list[float], unfreeze: str, epochs_head: int = HEAD_EPOCHS) -> None:
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.COMPLETE, value=values[-1], intermediate_values=dict(enumerate(values)),
        user_attrs={attrs.RECIPE: recipe(unfreeze, epochs_head)}))


def verdict(study: optuna.Study, values: list[float], unfreeze: str, epochs_head: int = HEAD_EPOCHS) -> bool:
    """Whether the study's pruner stops a running trial of ``unfreeze`` that has reported ``values``."""
    trial = study.ask()
    trial.set_user_attr(attrs.RECIPE, recipe(unfreeze, epochs_head))
    for step, value in enumerate(values):
        trial.report(value, step)
    pruned = trial.should_prune()
    study.tell(trial, state=optuna.trial.TrialState.FAIL)  # out of the way of the next question
    return pruned


@pytest.fixture
def study():
    """Five heads alone (0.9 at every head epoch), five conv5 fine-tunings that fell to 0.5, two conv4 ones at
    0.8, and five heads of 8 epochs: only heads at step 5."""
    study = optuna.create_study(direction="maximize", pruner=make_pruner(
        "median", max_steps=HEAD_EPOCHS + 2, warmup_steps=1, startup_trials=5))
    for _ in range(5):
        finished(study, [0.9] * HEAD_EPOCHS, "none")
        finished(study, [0.9] * HEAD_EPOCHS + [0.5, 0.5], "conv5")
        finished(study, [0.95] * 8, "none", epochs_head=8)
    for _ in range(2):
        finished(study, [0.9] * HEAD_EPOCHS + [0.8, 0.8], "conv4")
    return study


def test_a_fine_tuning_epoch_is_judged_against_fine_tuning_at_its_own_depth(study):
    # Against conv5's 0.5 a 0.6 is good; against the heads' 0.9 or the long heads' 0.95 at step 4 it would not be.
    assert not verdict(study, [0.9] * HEAD_EPOCHS + [0.6], "conv5")
    assert verdict(study, [0.9] * HEAD_EPOCHS + [0.3], "conv5")
    # conv4 has two finished trials, fewer than the five the pruner waits for: nothing is judged there yet.
    assert not verdict(study, [0.9] * HEAD_EPOCHS + [0.1], "conv4")
    for _ in range(3):
        finished(study, [0.9] * HEAD_EPOCHS + [0.8, 0.8], "conv4")
    assert verdict(study, [0.9] * HEAD_EPOCHS + [0.6], "conv4")  # good for conv5, poor for conv4


@pytest.mark.parametrize("name", ["median", "sh"])
def test_the_median_and_successive_halving_pruners_compare_like_with_like(name):
    pruner = make_pruner(name, max_steps=10, warmup_steps=3)
    assert type(pruner).__name__ == "_LikeWithLike"
    assert type(pruner.pruner).__name__ == {"median": "MedianPruner", "sh": "SuccessiveHalvingPruner"}[name]


def test_a_head_epoch_is_judged_against_head_epochs_whatever_follows(study):
    assert verdict(study, [0.2] * 3, "conv5")  # the heads of every trial held 0.9 at step 2
    assert not verdict(study, [0.9] * 3, "conv4")
    # Step 5 of a head of 8 epochs is a head epoch: judged against the long heads' 0.95, not fine-tuning's 0.5.
    assert verdict(study, [0.6] * 6, "none", epochs_head=8)
    assert not verdict(study, [0.95] * 6, "none", epochs_head=8)


def test_a_stage_two_trial_s_repeat_of_its_parent_s_head_is_no_head_peer(study):
    # Five stage-two trials repeating heads of 0.1 would pull the median of head epochs down if they counted.
    for _ in range(5):
        study.add_trial(optuna.trial.create_trial(
            state=optuna.trial.TrialState.COMPLETE, value=0.1, intermediate_values=dict(enumerate([0.1] * 6)),
            user_attrs={attrs.RECIPE: recipe("conv5"), attrs.PARENT: 0}))
    assert verdict(study, [0.2] * 3, "conv5")  # still judged against the heads' 0.9
    again = next(t for t in study.trials if attrs.PARENT in t.user_attrs)
    assert epoch_kind(again, 0) != epoch_kind(study.trials[0], 0)
    assert epoch_kind(again, HEAD_EPOCHS) == epoch_kind(study.trials[1], HEAD_EPOCHS)  # its fine-tuning is a peer


def test_fine_tuning_is_judged_after_five_trials_at_its_depth_whatever_the_space_s_size():
    study = optuna.create_study(direction="maximize", pruner=make_pruner(
        "median", max_steps=HEAD_EPOCHS + 2, warmup_steps=1, startup_trials=12))
    for _ in range(12):
        finished(study, [0.9] * HEAD_EPOCHS, "none")
    for _ in range(5):
        finished(study, [0.9] * HEAD_EPOCHS + [0.8, 0.8], "conv5")
    assert verdict(study, [0.9] * HEAD_EPOCHS + [0.3], "conv5")


def test_the_kind_of_an_epoch_comes_from_the_recipe_the_trial_recorded():
    trial = optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, value=1.0,
                                      user_attrs={attrs.RECIPE: recipe("conv5")})
    assert [epoch_kind(trial, step) for step in range(HEAD_EPOCHS)] == ["head"] * HEAD_EPOCHS
    assert epoch_kind(trial, HEAD_EPOCHS) == epoch_kind(trial, HEAD_EPOCHS + 1) == ("finetune", "conv5", HEAD_EPOCHS)
    assert epoch_kind(optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, value=1.0), 0) is None


def test_the_median_pruner_waits_for_a_finished_trial_per_searched_param(demo_folder, tmp_path):
    run = resolve_run(study="p", results_dir=tmp_path, data=str(demo_folder), space=str(TINY_SPACE))
    schedule = pruning_schedule(run)
    assert schedule.startup_trials == max(5, len(run.space.params))
    demo = resolve_run(study="d", results_dir=tmp_path, data=str(demo_folder), space="demo")
    assert pruning_schedule(demo).startup_trials == len(demo.space.params) == 9


class CountingStorage(optuna.storages.InMemoryStorage):
    reads = 0

    def get_all_trials(self, *args, **kwargs):
        CountingStorage.reads += 1
        return super().get_all_trials(*args, **kwargs)


def test_the_pruner_reads_the_study_at_a_trial_s_first_judgement_and_then_every_ten_seconds(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("lepidopt.engines._pruning.time.monotonic", lambda: clock[0])
    storage = CountingStorage()
    study = optuna.create_study(direction="maximize", storage=storage, pruner=make_pruner(
        "median", max_steps=HEAD_EPOCHS, warmup_steps=0, startup_trials=1))
    finished(study, [0.9] * HEAD_EPOCHS, "none")
    trial = study.ask()
    trial.set_user_attr(attrs.RECIPE, recipe("none"))
    CountingStorage.reads = 0
    for step in range(3):
        trial.report(0.95, step)
        assert not trial.should_prune()
    assert CountingStorage.reads == 1  # one read for three epochs
    for _ in range(2):
        finished(study, [0.99] * HEAD_EPOCHS, "none")  # peers that finish meanwhile
    trial.report(0.95, 3)
    assert not trial.should_prune() and CountingStorage.reads == 1  # not seen yet: the median is still 0.9
    clock[0] += 10.5
    assert trial.should_prune() and CountingStorage.reads == 2  # read again: below the median of 0.99
    following = study.ask()
    following.set_user_attr(attrs.RECIPE, recipe("none"))
    following.report(0.95, 0)
    CountingStorage.reads = 0
    assert following.should_prune() and CountingStorage.reads == 1  # a trial's first judgement reads afresh
