import json
import logging
import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TESTS = Path(__file__).parent
TINY_SPACE = TESTS / "tiny_space.yaml"
POSTGRES = os.environ.get("LEPIDOPT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def postgres_admin(sql: str) -> None:
    """Run ``sql`` on the server's postgres database, through a connection of its own: a test may have restarted
    the server since the last one."""
    import psycopg2

    connection = psycopg2.connect(f"{POSTGRES}/postgres", connect_timeout=10)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


@pytest.fixture(scope="session")
def postgres_server():
    """Skips the test when no PostgreSQL server answers at LEPIDOPT_TEST_POSTGRES."""
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        postgres_admin("select 1")
    except psycopg2.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server at {POSTGRES} ({str(exc).strip()}); set LEPIDOPT_TEST_POSTGRES")


@pytest.fixture
def postgres_url(postgres_server):
    """A throwaway database for one test."""
    name = f"lepidopt_test_{uuid.uuid4().hex[:10]}"
    postgres_admin(f"CREATE DATABASE {name}")
    yield f"{POSTGRES}/{name}"
    postgres_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(autouse=True)
def lepidopt_logger_as_it_was():
    """A CLI test points the logger at that test's captured stderr; later tests must not write to it."""
    logger = logging.getLogger("lepidopt")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


@pytest.fixture(autouse=True)
def training_only_in_slow_tests(request, monkeypatch):
    """A test that trains a model in this process must be marked slow, since make test-fast deselects those:
    every trial starts by clearing what earlier trials left, so an unmarked test that starts one fails (after
    it has run, as engines catch a trial's errors)."""
    if request.node.get_closest_marker("slow"):
        yield
        return
    import lepidopt.trial._trial as trial_module

    started = []
    clear = trial_module._clear_previous_trials

    def noted() -> None:
        started.append(True)
        clear()

    monkeypatch.setattr(trial_module, "_clear_previous_trials", noted)
    yield
    if started:
        pytest.fail(f"{request.node.nodeid} trains a model: mark it @pytest.mark.slow", pytrace=False)


@pytest.fixture(scope="session")
def demo_folder(tmp_path_factory) -> Path:
    """A small demo collection: six families, 12 to 22 images each, 48 px, with an ETHEC manifest."""
    from lepidopt.data import make_demo_collection

    root = tmp_path_factory.mktemp("demo") / "images"
    make_demo_collection(root, scale=0.01, image_size=48, seed=3, manifest=True, minimum=12)
    return root


@pytest.fixture
def demo_copy(demo_folder, tmp_path) -> Path:
    """A private copy of the demo folder that a test may damage."""
    target = tmp_path / "images"
    shutil.copytree(demo_folder, target)
    (target / "ethec_manifest.json").unlink()
    return target


def write_image(path: Path, *, mode: str = "RGB", size=(48, 40), fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(abs(hash(str(path))) % 2**32)
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65535, size=size[::-1], dtype=np.uint16))
    else:
        img = Image.fromarray(rng.integers(0, 255, size=size[::-1] + (3,), dtype=np.uint8), mode="RGB")
        if mode == "P":
            img = img.convert("P", palette=Image.Palette.ADAPTIVE)
            img.info["transparency"] = 0
        elif mode != "RGB":
            img = img.convert(mode)
    save_kwargs = {"transparency": 0} if mode == "P" else {}
    img.save(path, format=fmt, **save_kwargs)
    return path


def wait_for_checkpoint(study_folder: Path, *, step: int, timeout: float = 180) -> dict:
    """The first checkpoint of a running study that reached ``step``, with ``trial``: its folder's name under
    trials/ (the trial's number, or kt-<id> under Keras Tuner)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for state in study_folder.glob("trials/*/state.json"):
            try:
                saved = json.loads(state.read_text())
            except (OSError, ValueError):
                continue
            if saved["step"] >= step:
                return {**saved, "trial": state.parent.name}
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint reached step {step} in {timeout} s")


def write_space(folder: Path, *, epochs_head: int = 3, finetune: bool = False) -> Path:
    """The tiny space with ``epochs_head`` head epochs, without its fine-tuning parameters unless ``finetune``."""
    space = yaml.safe_load(TINY_SPACE.read_text())
    space["fixed"]["epochs_head"] = epochs_head
    if not finetune:
        space["fixed"]["finetune.unfreeze"] = "none"
        space["params"] = {k: v for k, v in space["params"].items() if not k.startswith("finetune.")}
        space["baseline"] = {k: v for k, v in space["baseline"].items() if not k.startswith("finetune.")}
    path = folder / "space.yaml"
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def browse(page, *flags):
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--virtual-time-budget=20000", *flags, page.as_uri()],
                          capture_output=True, text=True, timeout=120)


def assert_every_figure_draws(page, picture):
    """Open the report ``page`` in headless Chromium: its scripts run without an error, plotly draws every figure
    (an svg.main-svg in each figure's div once the scripts ran), and a screenshot goes to ``picture``. The figures'
    ids, in page order."""
    source = page.read_text()
    figures = re.findall(r'<div id="([^"]+)" class="plotly-graph-div"', source)
    assert figures and len(figures) == source.count("Plotly.newPlot(")
    shown = browse(page, "--dump-dom")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "Uncaught" not in shown.stderr, [line for line in shown.stderr.splitlines() if "Uncaught" in line]
    dom = shown.stdout
    starts = [(m.start(), m.group(1)) for m in re.finditer(r'<div id="([^"]+)" class="plotly-graph-div', dom)]
    assert [figure for _, figure in starts] == figures
    ends = [start for start, _ in starts[1:]] + [len(dom)]
    for (start, figure), end in zip(starts, ends):
        assert 'class="main-svg"' in dom[start:end], f"figure {figure} was not drawn"
    browse(page, "--window-size=1300,2000", f"--screenshot={picture}")
    assert picture.stat().st_size > 50_000  # a drawn page, not a blank one
    return figures
