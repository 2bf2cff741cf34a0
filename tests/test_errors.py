"""One message, named for where it arrives: Python arguments through the API, flags on the command line."""

import pickle
import re
from pathlib import Path

import pytest

import lepidopt
from lepidopt.cli import _flag, build_parser, main
from lepidopt.errors import SettingError, StudyError, command, option, rendered
from lepidopt.runs import DEFINING

# Settings only Python can give (ClusteringSettings fields the report command does not expose, the split's
# fractions, which run.yaml records but no command sets, arrays given to Predictor, the format write_predictions
# is told rather than reading it from the file name).
PYTHON_ONLY = {"umap_input", "umap_neighbors", "variance", "test_fraction", "val_fraction", "images", "output_format"}


def test_a_setting_reads_as_an_argument_in_python_and_as_a_flag_on_the_command_line():
    text = (f"give {option('results_dir', '/data/my runs')} or {option('storage')}; "
            f"create it with {command('search', 'data', 'space')}")
    assert rendered(text) == ("give results_dir='/data/my runs' or storage=; "
                              "create it with lepidopt.search(data=..., space=...)")
    flag = {"results_dir": "--results-dir", "storage": "--storage", "data": "--data", "space": "--space"}.get
    assert rendered(text, flag) == ("give --results-dir '/data/my runs' or --storage; "
                                    "create it with lepidopt search --data ... --space ...")


def test_the_same_refusal_names_the_argument_in_python_and_the_flag_on_the_command_line(tmp_path, capsys):
    with pytest.raises(StudyError) as raised:
        lepidopt.status(study="unknown", results_dir=tmp_path)
    assert "pass storage= with the study's storage URL" in str(raised.value)
    assert "--" not in str(raised.value)
    assert main(["status", "--study", "unknown", "--results-dir", str(tmp_path)]) == 6
    err = capsys.readouterr().err
    assert "Check --study and --results-dir, or pass --storage with the study's storage URL" in err
    with pytest.raises(StudyError, match="Check study= and results_dir="):  # the command line's naming did not stay
        lepidopt.status(study="unknown", results_dir=tmp_path)


def test_a_setting_error_shows_its_value_as_python_and_the_shell_write_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingError, match=r"^feature_cache_limit='a lot': not a size"):
        lepidopt.search(study="s", feature_cache_limit="a lot")
    assert main(["search", "--study", "s", "--feature-cache-limit", "a lot"]) == 2
    assert "lepidopt search: error: --feature-cache-limit 'a lot': not a size" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_an_error_from_another_process_keeps_its_settings_for_the_command_line():
    error = pickle.loads(pickle.dumps(StudyError("study 's'", f"pass {option('storage')}.", fix="Or not.")))
    assert str(error) == "study 's': pass storage=. Or not."
    assert error.for_command_line({"storage": "--storage"}.get) == "study 's': pass --storage. Or not."
    assert (error.thing, error.rule, error.fix) == ("study 's'", "pass storage=.", "Or not.")


def test_every_setting_a_message_names_is_a_flag_of_some_command():
    parser = build_parser()
    named = set()
    for source in Path(lepidopt.__file__).parent.rglob("*.py"):
        named |= set(re.findall(r"(?:option|SettingError)\(\s*['\"]([a-z_]+)['\"]", source.read_text()))
    named |= set(DEFINING)
    assert len(named) > 40
    no_flag = sorted(name for name in named - PYTHON_ONLY if not _flag(parser, name).startswith("--"))
    assert not no_flag, f"settings named in messages with no flag on the command line: {no_flag}"
