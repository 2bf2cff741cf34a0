"""The report as a reader sees it: opened in a real headless Chromium, its scripts run and every figure draws."""

import re
import shutil
import subprocess

import numpy as np
import pytest

from lepidopt.results import ClusteringSettings, report_embeddings

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium); "
                                                         ".ci/run installs it")


def browse(page, *flags):
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--virtual-time-budget=20000", *flags, page.as_uri()],
                          capture_output=True, text=True, timeout=120)


def test_every_figure_of_the_report_draws_in_a_browser_without_a_script_error(tmp_path):
    rng = np.random.default_rng(0)
    embeddings = np.concatenate([rng.normal(c * 4, 1.0, size=(30, 12)) for c in range(3)]).astype(np.float32)
    np.savez(tmp_path / "e.npz", embeddings=embeddings, labels=np.repeat(np.arange(3), 30),
             classes=np.array(["Nymphalidae", "Pieridae", "Lycaenidae"]))
    page = report_embeddings(embeddings=tmp_path / "e.npz", out=tmp_path / "report",
                             settings=ClusteringSettings(k_min=2, k_max=6, umap_neighbors=10)).index
    source = page.read_text()
    figures = re.findall(r'<div id="([^"]+)" class="plotly-graph-div"', source)
    assert len(figures) >= 8 and len(figures) == source.count("Plotly.newPlot(")

    shown = browse(page, "--dump-dom")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "Uncaught" not in shown.stderr, [line for line in shown.stderr.splitlines() if "Uncaught" in line]
    dom = shown.stdout
    starts = [(m.start(), m.group(1)) for m in re.finditer(r'<div id="([^"]+)" class="plotly-graph-div', dom)]
    assert [figure for _, figure in starts] == figures
    ends = [start for start, _ in starts[1:]] + [len(dom)]
    for (start, figure), end in zip(starts, ends):  # plotly fills each empty div with an svg.main-svg
        assert 'class="main-svg"' in dom[start:end], f"figure {figure} was not drawn"
    assert dom.count('class="main-svg"') >= len(figures)

    picture = tmp_path / "report.png"
    browse(page, "--window-size=1300,2000", f"--screenshot={picture}")
    assert picture.stat().st_size > 50_000  # a drawn page, not a blank one
