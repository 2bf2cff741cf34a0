import os
import subprocess
import sys

import pytest

from lepidopt.cli import main


def test_help_answers_without_importing_tensorflow_or_optuna():
    code = (
        "import sys, time; t = time.perf_counter()\n"
        "from lepidopt.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'optuna', 'sklearn') if m in sys.modules))\n"
        "print(time.perf_counter() - t)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out[-2] == "[]"
    assert float(out[-1]) < 2.0


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for command in ("data", "spaces", "search", "status", "demo"):
        assert command in text


def test_data_inspect_prints_counts_imbalance_and_skipped(demo_copy, capsys):
    (demo_copy / "Pieridae" / "broken.jpg").write_bytes(b"")
    assert main(["data", "inspect", str(demo_copy)]) == 0
    out = capsys.readouterr().out
    assert "usable images in 6 classes" in out and "imbalance ratio (largest / smallest class):" in out
    assert "skipped files: 1" in out and "broken.jpg: zero-byte file" in out


def test_spaces_commands(tmp_path, capsys):
    assert main(["spaces", "list"]) == 0
    assert "resnet50" in capsys.readouterr().out
    assert main(["spaces", "show", "demo"]) == 0
    assert "head.pooling" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nparams:\n  head.dropout: {float: [0.0, 1.2]}\n")
    assert main(["spaces", "validate", str(bad)]) == 4
    assert "bad.yaml.params.head.dropout: value 1.2 is not allowed" in capsys.readouterr().err
    good = tmp_path / "good.yaml"
    good.write_text("name: x\nparams:\n  head.dropout: {float: [0.0, 0.5]}\n")
    assert main(["spaces", "validate", str(good)]) == 0


def test_errors_are_one_line_with_an_exit_code_and_create_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["status", "--study", "ghost"]) == 6
    assert "study 'ghost': no run.yaml in" in capsys.readouterr().err
    assert main(["search", "--study", "ghost", "--n-trials", "1"]) == 6
    err = capsys.readouterr().err
    assert "does not exist yet" in err and "needs --data to start" in err
    assert main(["search", "--study", "bad/name", "--data", "x", "--space", "demo"]) == 6
    assert "study name 'bad/name'" in capsys.readouterr().err
    assert main(["search", "--study", "s", "--data", str(tmp_path / "none"), "--space", "demo"]) == 3
    assert "does not exist" in capsys.readouterr().err
    assert main(["search", "--study", "s", "--data", str(tmp_path), "--space", "demo",
                 "--storage", "redis://ann:pw@localhost"]) == 7
    err = capsys.readouterr().err
    assert "storage 'redis://ann:***@localhost': not a storage URL lepidopt knows" in err and "pw" not in err
    assert not (tmp_path / "results" / "s" / "study.db").exists()
    assert main(["search", "--study", "s", "--data", str(tmp_path), "--space", "demo",
                 "--feature-cache-limit", "lots"]) == 2
    assert "--feature-cache-limit lots: not a size; write a size such as 500MB" in capsys.readouterr().err
    assert main(["search", "--study", "s", "--data", str(tmp_path), "--space", "demo", "--max-rss", "6XB"]) == 2
    assert "--max-rss 6XB: not a size; write a size such as 500MB" in capsys.readouterr().err
    assert main(["search", "--study", "s", "--data", str(tmp_path), "--space", "demo", "--augment-views", "0"]) == 2
    assert "--augment-views 0: must be a whole number of at least 1" in capsys.readouterr().err
    assert main(["search", "--study", "s", "--data", str(tmp_path), "--space", "demo",
                 "--max-trials-per-process", "0"]) == 2
    assert "--max-trials-per-process 0: must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "results" / "s").exists()


def test_an_argument_error_is_one_line_that_points_at_help():
    result = subprocess.run([sys.executable, "-m", "lepidopt", "search", "--n-trials", "many"], capture_output=True,
                            text=True)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["lepidopt search: error: argument --n-trials: invalid int value: 'many' "
                                          "(see lepidopt search --help)"]


@pytest.mark.parametrize("argv, message", [
    (["search", "--study", "s", "--n-trials", "0"], "lepidopt search: error: --n-trials 0: must be a whole number of "
                                                    "at least 1"),
    (["search", "--study", "s", "--timeout", "-5"], "lepidopt search: error: --timeout -5.0: must be a positive number "
                                                    "of seconds"),
    (["search", "--study", "s", "--heartbeat", "5", "--grace", "5"], "--grace 5: must be longer than the heartbeat's "
                                                                     "interval, 5 s"),
    (["search", "--study", "s", "--min-size", "40"], "--min-size 40: applies to --data, which is not given: a resumed "
                                                     "study reads its data settings from its run.yaml"),
    (["status", "--study", "s", "--last", "0"], None),
    (["data", "demo", "out", "--size", "16"], "lepidopt data: error: --size 16: must be at least 32 px"),
    (["report", "--embeddings", "x.npy", "--k-min", "1"], "lepidopt report: error: --k-min 1: must be at least 2"),
    (["dashboard", "--study", "s", "--port", "0"], "lepidopt dashboard: error: --port 0: must be a TCP port"),
])
def test_a_value_a_setting_cannot_take_is_a_usage_error_named_by_its_flag(argv, message, tmp_path, capsys,
                                                                          monkeypatch, demo_folder):
    monkeypatch.chdir(tmp_path)
    if argv[0] == "status":  # --last is checked on a study that exists
        from lepidopt.api import search

        search(study="s", data=str(demo_folder), space="demo", create_only=True)
        message = "lepidopt status: error: --last 0: must be a whole number of at least 1"
        before = sorted(os.listdir(tmp_path / "results" / "s"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err
    if argv[0] == "status":
        assert main(["status", "--study", "s", "--last", "-2"]) == 2
        assert sorted(os.listdir(tmp_path / "results" / "s")) == before
    else:
        assert os.listdir(tmp_path) == []


def test_the_demo_collection_is_drawn_only_into_a_new_or_empty_folder(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "photo.jpg").write_bytes(b"x")
    assert main(["data", "demo", str(tmp_path / "mine")]) == 3
    assert ("demo folder '" + str(tmp_path / "mine") + "': already holds 1 file(s), e.g. 'photo.jpg'; the demo "
            "collection is drawn into a new or empty folder") in capsys.readouterr().err
    assert os.listdir(tmp_path / "mine") == ["photo.jpg"]


def test_report_refuses_options_that_do_not_go_with_a_study(tmp_path, capsys):
    assert main(["report", "--study", "s", "--labels", "y.txt"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "lepidopt report: error: --labels, --label-column and --out go with --embeddings; a study's report is written "
        "to its folder, RESULTS/STUDY/report (see lepidopt report --help)"]
