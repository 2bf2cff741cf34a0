"""Ctrl-C as a user presses it: one line on the terminal, and nothing left half-written."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import wait_for_checkpoint, write_space
from lepidopt._files import replacing_folder


def start(*args, cwd) -> subprocess.Popen:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([sys.executable, "-m", "lepidopt", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_ctrl_c_during_search_prints_one_line(demo_folder, tmp_path):
    space = write_space(tmp_path, epochs_head=150)
    search = start("-q", "search", "--data", str(demo_folder), "--space", str(space), "--study", "s",
                   "--n-trials", "2", "--checkpoint-every", "0", cwd=tmp_path)
    saved = wait_for_checkpoint(tmp_path / "results" / "s", step=3)
    search.send_signal(signal.SIGINT)
    out, err = search.communicate(timeout=60)
    assert search.returncode == 130
    assert err.splitlines() == [f"error: interrupted by SIGINT: trial {saved['trial']} will be retried from its last "
                                "checkpoint; run the same command again to go on."]


def test_ctrl_c_during_export_leaves_best_whole_or_as_it_was(demo_folder, tmp_path):
    space = write_space(tmp_path, epochs_head=2)
    assert start("search", "--data", str(demo_folder), "--space", str(space), "--study", "e", "--n-trials", "1",
                 cwd=tmp_path).wait(timeout=600) == 0
    best = tmp_path / "results" / "e" / "best"
    best.mkdir()
    (best / "metrics.json").write_text("an earlier export")

    export = start("export", "--study", "e", cwd=tmp_path)
    deadline = time.monotonic() + 300
    while not list(best.parent.rglob("model.keras")):  # the model is saved: the rest of best/ is being written
        assert export.poll() is None and time.monotonic() < deadline, export.communicate()
        time.sleep(0.005)
    export.send_signal(signal.SIGINT)
    out, err = export.communicate(timeout=120)
    written = {p.name: p for p in best.iterdir()}
    if export.returncode == 130:
        assert err.strip().splitlines()[-1] == "interrupted"
        assert list(written) == ["metrics.json"] and written["metrics.json"].read_text() == "an earlier export"
    else:  # the export was done before the signal arrived
        assert export.returncode == 0, err
        assert sorted(written) == ["embeddings.npz", "metrics.json", "model.keras"]
        assert json.loads(written["metrics.json"].read_text())["trial"] == 0
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
