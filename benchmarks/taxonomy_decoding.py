"""Consistent against independent decoding of one taxonomy model, on the same test predictions.

    .venv/bin/python benchmarks/taxonomy_decoding.py [--results-dir results] [--study demo-taxonomy]

Runs ``lepidopt demo --taxonomy`` first when the study has no exported model (the drawn tree: 6 families,
12 subfamilies, 18 genera, 36 species, 64 px, the demo-taxonomy space, a randomly initialised ResNet-50),
then predicts the study's test split once with its exported model and decodes the same probabilities
both ways: each level's own most probable class (independent), and the most probable path of the tree
(consistent). Prints each level's accuracy and balanced accuracy, the share of predictions that are paths
of the tree, the mistake severity (the height of the lowest common ancestor of the predicted and the
true path, over the mistakes; 1 is a wrong species of the right genus, 4 a wrong family) and the
hierarchical distance (that height over every prediction, 0 for a right one).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--study", default="demo-taxonomy")
    parser.add_argument("--data-dir", default="demo-data-taxonomy")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).parent))
    from environment import print_environment

    import numpy as np

    from lepidopt import load_model
    from lepidopt.data import read_split
    from lepidopt.demo import run_demo
    from lepidopt.predictor import taxonomy_test_metrics

    print_environment()
    folder = Path(args.results_dir) / args.study
    if not (folder / "best" / "model.keras").is_file():
        started = time.perf_counter()
        run_demo(data_dir=args.data_dir, results_dir=args.results_dir, study=args.study, taxonomy=True)
        print(f"taxonomy demo: {time.perf_counter() - started:.0f} s")
    model = load_model(study=args.study, results_dir=args.results_dir)
    split = read_split(folder / "split.json")
    assert model.taxonomy is not None and split.lineage is not None
    test = split.indices("test")
    probabilities = model.predict_proba([split.paths[i] for i in test])
    lineage = split.lineage[test]
    levels = model.taxonomy.levels
    print(f"{args.study}: {len(test)} test images; the model's own decoding: {model.card.decode}")
    print(f"  {'decoding':12}" + "".join(f"{level + ' acc / bal':>26}" for level in levels)
          + f"{'real paths':>12}{'severity':>10}{'distance':>10}")
    for decode in ("independent", "consistent"):
        m = taxonomy_test_metrics(lineage, probabilities, model.taxonomy, decode)
        row = "".join(f"{m['levels'][level]['accuracy']:>17.4f} / {m['levels'][level]['balanced_accuracy']:.4f}"
                      for level in levels)
        tree = m["tree"]
        print(f"  {decode:12}{row}{tree['consistent_share']:>12.4f}{tree['mistake_severity']:>10.3f}"
              f"{tree['hierarchical_distance']:>10.3f}")
    print(f"  ({int((np.asarray(lineage) >= 0).sum())} placed labels over {len(levels)} levels)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
