"""What every engine must do, as a base class an engine's tests subclass (as optuna/testing does for
samplers): the same space and data finish and are read by the same code (status, best trial, export), a
resume stops at the total without repeating a trial, failures are kept with their reason and a streak of
them stops the search, and one space format drives every engine.

    class TestMyEngine(EngineContract):
        options = {"engine": "my-engine"}
"""

from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from conftest import TINY_SPACE, write_space
from lepidopt.api import TrialPolicy, WorkerSettings, search, status
from lepidopt.errors import TooManyFailures
from lepidopt.results import export_best, load_best


@pytest.mark.slow
class EngineContract:
    options: ClassVar[dict[str, Any]]  # the search() arguments that choose the engine under test

    def test_the_same_space_and_data_finish_and_are_read_by_the_same_code(self, demo_folder, tmp_path):
        summary = search(study="c", data=str(demo_folder), space=str(TINY_SPACE), results_dir=tmp_path, n_trials=3,
                         **self.options)
        st = status(study="c", results_dir=tmp_path)
        assert summary.status == st
        assert st.n_finished == 3 and [t.state for t in st.trials] == ["COMPLETE"] * 3
        assert st.engine.startswith(self.options["engine"])
        best = load_best(study="c", results_dir=tmp_path)
        assert best.trial.number == st.best.number and best.trial.value == pytest.approx(st.best.value)
        for trial in best.study.trials:
            attrs = trial.user_attrs
            assert {"recipe", "seed", "history", "metrics", "timings", "worker"} <= set(attrs)
            assert attrs["metrics"][st.objective] == pytest.approx(trial.value)
            assert sorted(trial.intermediate_values) == [h["step"] for h in attrs["history"]]
            assert set(trial.params) <= {p.name for p in summary.run.space.params}
        self.check_engine_record(tmp_path / "c", best.study)

    def check_engine_record(self, folder: Path, study) -> None:
        """What the engine keeps beside the study, checked after the first test's search."""

    def test_the_best_trial_exports_to_the_model_its_trial_scored(self, demo_folder, tmp_path):
        search(study="x", data=str(demo_folder), space=str(write_space(tmp_path)), results_dir=tmp_path, n_trials=2,
               **self.options)
        exported = export_best(study="x", results_dir=tmp_path)
        m = exported.metrics
        assert m["retrained_validation_value"] == pytest.approx(m["trial_validation_value"], abs=1e-6)
        assert (exported.folder / "model.keras").exists()

    def test_a_second_run_continues_to_the_total_without_repeating_a_trial(self, demo_folder, tmp_path):
        space = str(write_space(tmp_path))
        search(study="r", data=str(demo_folder), space=space, results_dir=tmp_path, n_trials=2, **self.options)
        summary = search(study="r", results_dir=tmp_path, n_trials=4)
        assert summary.status.n_finished == 4
        again = search(study="r", results_dir=tmp_path, n_trials=4)
        assert len(again.status.trials) == 4
        seeds = [t.user_attrs["seed"] for t in load_best(study="r", results_dir=tmp_path).study.trials]
        assert len(set(seeds)) == 4

    def test_failures_are_kept_with_their_reason_and_a_streak_stops_the_search(self, demo_folder, tmp_path):
        broken = [str(tmp_path / f"broken{i}.weights.h5") for i in range(2)]
        for path in broken:
            Path(path).write_bytes(b"not weights")
        space = yaml.safe_load(write_space(tmp_path).read_text())
        space["fixed"].pop("weights")
        space["params"] = {"weights": {"choice": broken}, **space["params"]}
        space["baseline"]["weights"] = broken[0]
        path = tmp_path / "failing.yaml"
        path.write_text(yaml.safe_dump(space, sort_keys=False))
        with pytest.raises(TooManyFailures, match="stopped after 2 failed trials in a row; the last failed with: "
                                                  "ModelError: weights file"):
            search(study="f", data=str(demo_folder), space=str(path), results_dir=tmp_path, n_trials=5,
                   workers=WorkerSettings(policy=TrialPolicy(max_failures=2)), **self.options)
        st = status(study="f", results_dir=tmp_path)
        assert [t.state for t in st.trials] == ["FAIL", "FAIL"]
        assert all(t.note.startswith("failed: ModelError: weights file") for t in st.trials)

    def test_a_choice_of_ints_and_floats_is_expressed(self, demo_folder, tmp_path):
        """Keras Tuner's Choice takes one type; the one mix a valid space can hold is declared as floats. No
        other valid space is refused (the refusal itself is tested on a space built by hand, in
        test_keras_tuner)."""
        space = yaml.safe_load(write_space(tmp_path).read_text())
        space["params"]["head.dropout"] = {"choice": [0, 0.25]}
        space["baseline"]["head.dropout"] = 0
        path = tmp_path / "mixed.yaml"
        path.write_text(yaml.safe_dump(space, sort_keys=False))
        summary = search(study="m", data=str(demo_folder), space=str(path), results_dir=tmp_path, n_trials=3,
                         **self.options)
        assert summary.status.n_finished == 3
        assert {t.params["head.dropout"] for t in summary.status.trials} <= {0, 0.25}
