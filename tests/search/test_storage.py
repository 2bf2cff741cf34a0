import pytest

from lepidopt.errors import StorageError
from lepidopt.search import open_storage


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
        # One rule for both file storages: a folder that does not exist is refused, not created.
        ("journal:/no/such/folder/j.log", r"the folder '/no/such/folder' of its file does not exist. Create it first"),
        ("sqlite:////no/such/folder/x.db", r"the folder '/no/such/folder' of its file does not exist. Create it first"),
        ("postgresql://ann:secret@127.0.0.1:1/db", r"storage 'postgresql://ann:\*\*\*@127.0.0.1:1/db': cannot be opened"),
    ],
)
def test_bad_storage_urls_are_clear_and_masked(url, match):
    with pytest.raises(StorageError, match=match) as caught:
        open_storage(url)
    assert "secret" not in str(caught.value)
