import pytest

from lepidopt.cli import main


@pytest.mark.slow
def test_the_demo_learns_far_above_chance(tmp_path, capsys):
    """The demo as `make demo` runs it: draws the collection, runs the study, prints the best trial,
    exports the best model and writes the report."""
    code = main(["demo", "--data-dir", str(tmp_path / "demo-data"), "--results-dir", str(tmp_path / "results"),
                 "--n-trials", "6"])
    out = capsys.readouterr().out
    assert code == 0
    assert "best trial: #" in out and "lepidopt dashboard --study demo" in out
    index = tmp_path / "results" / "demo" / "report" / "index.html"
    assert f"report: {index}" in out and index.exists()
    assert (tmp_path / "results" / "demo" / "best" / "model.keras").exists()
    from lepidopt import status

    st = status(study="demo", results_dir=tmp_path / "results")
    assert st.n_finished == 6
    chance = 1 / 6
    assert st.best.value > 0.7 > 4 * chance  # random-init ResNet-50 features, a batch-normalised head
