"""Ctrl-C as a user presses it: one line on the terminal, and nothing left half-written."""

import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import wait_for_checkpoint, write_space
from lepidopt._files import replacing_folder


def start(*args, cwd) -> subprocess.Popen:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([sys.executable, "-m", "lepidopt", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_ctrl_c_during_search_prints_one_line(demo_folder, tmp_path):
    space = write_space(tmp_path, epochs_head=150)
    search = start("-q", "search", "--data", str(demo_folder), "--space", str(space), "--study", "s",
                   "--n-trials", "2", "--checkpoint-every", "0", cwd=tmp_path)
    saved = wait_for_checkpoint(tmp_path / "results" / "s", step=3)
    search.send_signal(signal.SIGINT)
    out, err = search.communicate(timeout=60)
    assert search.returncode == 130
    last = json.loads((tmp_path / "results" / "s" / "trials" / saved["trial"] / "state.json").read_text())
    assert err.splitlines() == [f"error: interrupted by SIGINT: trial {saved['trial']} will be retried from its "
                                f"checkpoint after {last['phase']} epoch {last['epoch']}; run the same command again "
                                "to go on."]


@pytest.mark.slow
def test_ctrl_c_during_export_leaves_the_earlier_best_folder_as_it_was(demo_folder, tmp_path, monkeypatch):
    import numpy as np

    from lepidopt.results import export_best
    from lepidopt.api import search

    search(study="e", data=str(demo_folder), space=str(write_space(tmp_path, epochs_head=2)), results_dir=tmp_path,
           n_trials=1)
    best = tmp_path / "e" / "best"
    best.mkdir()
    (best / "metrics.json").write_text("an earlier export")

    def ctrl_c(*args, **kwargs):  # Ctrl-C after the model is saved, while the embeddings are written
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        export_best(study="e", results_dir=tmp_path)
    assert {p.name: p.read_text() for p in best.iterdir()} == {"metrics.json": "an earlier export"}
    assert sorted(p.name for p in best.parent.iterdir() if p.name.startswith(".")) == []


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path):
    folder = tmp_path / "best"
    folder.mkdir()
    (folder / "model.keras").write_text("old model")
    (folder / "metrics.json").write_text("old metrics")
    with pytest.raises(KeyboardInterrupt):
        with replacing_folder(folder) as new:
            (new / "model.keras").write_text("new model")
            raise KeyboardInterrupt  # Ctrl-C after the model, before the metrics
    assert {p.name: p.read_text() for p in folder.iterdir()} == {"model.keras": "old model",
                                                                 "metrics.json": "old metrics"}
    with replacing_folder(folder) as new:
        (new / "model.keras").write_text("new model")
    assert {p.name: p.read_text() for p in folder.iterdir()} == {"model.keras": "new model"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]


def test_a_signal_whose_interruption_a_finaliser_swallowed_still_stops_the_run():
    """The handler raises Interrupted wherever the main thread is; inside a finaliser Python only prints it, so the
    next check raises it again, once."""
    import gc

    from lepidopt._signals import Interrupted, stop_if_signalled, stopping_on_signals

    class SignalledWhileFinalised:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(1000))  # the handler runs here, between bytecodes

    with stopping_on_signals():
        stop_if_signalled()  # nothing received: nothing raised
        SignalledWhileFinalised()
        gc.collect()
        with pytest.raises(Interrupted, match="SIGINT"):
            stop_if_signalled()
