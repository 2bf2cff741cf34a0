import pytest

from lepidopt.errors import SettingError, StudyError
from lepidopt.resolve import resolve_run
from lepidopt.runs import mask_password, write_run


def test_mask_password():
    assert mask_password("postgresql://ann:s3cr:et@db.example:5432/x") == "postgresql://ann:***@db.example:5432/x"
    assert mask_password("sqlite:///results/a/study.db") == "sqlite:///results/a/study.db"
    assert mask_password("mysql://root@localhost/test") == "mysql://root@localhost/test"


def test_precedence_cli_over_file_over_default(tmp_path, demo_folder):
    run = resolve_run(study="p", results_dir=tmp_path, data=str(demo_folder), space="demo", sampler="random")
    assert (run.sampler, run.pruner, run.seed, run.objective) == ("random", "median", 0, "balanced_accuracy")
    assert run.storage == f"sqlite:///{tmp_path / 'p' / 'study.db'}"
    write_run(run)
    again = resolve_run(study="p", results_dir=tmp_path)
    assert again.sampler == "random" and again.space == run.space and again.data == run.data
    assert resolve_run(study="p", results_dir=tmp_path, sampler="qmc", seed=3).sampler == "qmc"


def test_defining_settings_cannot_change(tmp_path, demo_folder):
    write_run(resolve_run(study="p", results_dir=tmp_path, data=str(demo_folder), space="demo"))
    with pytest.raises(StudyError, match=r"was created with val_fraction = 0.15, not 0.2; val_fraction cannot change"):
        resolve_run(study="p", results_dir=tmp_path, val_fraction=0.2)
    with pytest.raises(StudyError, match=rf"its data is {demo_folder}, and data= names {tmp_path}; a study's data "
                                         "cannot change. Drop data= to resume, or start a new study="):
        resolve_run(study="p", results_dir=tmp_path, data=str(tmp_path))
    with pytest.raises(StudyError, match=rf"its data {demo_folder} was read with min_size 32, not 40"):
        resolve_run(study="p", results_dir=tmp_path, data={"source": str(demo_folder), "min_size": 40})


def test_a_password_never_reaches_run_yaml(tmp_path, demo_folder):
    url = "postgresql://ann:hunter2@127.0.0.1/db"
    run = resolve_run(study="p", results_dir=tmp_path, data=str(demo_folder), space="demo", storage=url)
    write_run(run)
    assert "hunter2" not in (tmp_path / "p" / "run.yaml").read_text()
    with pytest.raises(StudyError, match=r"holds a password, which run.yaml does not keep; pass storage= with"):
        resolve_run(study="p", results_dir=tmp_path)
    assert resolve_run(study="p", results_dir=tmp_path, storage=url).storage == url


def test_unknown_option_and_bad_choices(tmp_path, demo_folder):
    with pytest.raises(StudyError, match=r"run option 'smapler': unknown"):
        resolve_run(study="p", results_dir=tmp_path, smapler="tpe")
    with pytest.raises(SettingError, match=r"sampler='bayes': must be one of tpe, gp"):
        resolve_run(study="p", results_dir=tmp_path, data=str(demo_folder), space="demo", sampler="bayes")
