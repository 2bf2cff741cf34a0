import pytest

from lepidopt.errors import StorageError
from lepidopt.study import open_storage


def test_sqlite_and_journal_storages_open(tmp_path):
    import optuna

    for url in (f"sqlite:///{tmp_path}/study.db", f"journal:{tmp_path}/journal.log"):
        study = optuna.create_study(study_name="x", storage=open_storage(url))
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        assert len(optuna.load_study(study_name="x", storage=open_storage(url)).trials) == 2


@pytest.mark.parametrize(
    "url, match",
    [
        ("postgres//ann:secret@host/db", r"storage 'postgres//ann:\*\*\*@host/db': not a storage URL"),
        ("sqlite://", r"an SQLite URL needs a file path"),
        ("journal:", r"storage 'journal:': names no file. Write sqlite:///PATH \(three slashes"),
        ("sqlite:///", r"storage 'sqlite:///': names no file"),
        ("postgresql://ann:secret@127.0.0.1:1/db", r"storage 'postgresql://ann:\*\*\*@127.0.0.1:1/db': cannot be opened"),
    ],
)
def test_bad_storage_urls_are_clear_and_masked(url, match):
    with pytest.raises(StorageError, match=match) as caught:
        open_storage(url)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("scheme, name", [("journal:", "j.log"), ("sqlite:///", "x.db")])
def test_one_rule_for_file_storages_a_folder_that_does_not_exist_is_refused_not_created(scheme, name, tmp_path):
    missing = tmp_path / "no" / "such"
    with pytest.raises(StorageError, match=rf"the folder '{missing}' of its file does not exist. Create it first"):
        open_storage(f"{scheme}{missing / name}")
    assert not (tmp_path / "no").exists()
