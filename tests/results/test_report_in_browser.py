"""The report as a reader sees it: opened in a real headless Chromium, its scripts run and every figure draws."""

import numpy as np
import pytest

from conftest import CHROMIUM, assert_every_figure_draws
from lepidopt.results import ClusteringSettings, report_embeddings

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium); "
                                                         ".ci/run installs it")


def test_every_figure_of_the_report_draws_in_a_browser_without_a_script_error(tmp_path):
    rng = np.random.default_rng(0)
    embeddings = np.concatenate([rng.normal(c * 4, 1.0, size=(30, 12)) for c in range(3)]).astype(np.float32)
    np.savez(tmp_path / "e.npz", embeddings=embeddings, labels=np.repeat(np.arange(3), 30),
             classes=np.array(["Nymphalidae", "Pieridae", "Lycaenidae"]))
    page = report_embeddings(embeddings=tmp_path / "e.npz", out=tmp_path / "report",
                             settings=ClusteringSettings(k_min=2, k_max=6, umap_neighbors=10)).index
    figures = assert_every_figure_draws(page, tmp_path / "report.png")
    assert len(figures) >= 8
