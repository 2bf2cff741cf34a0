"""Images per second and peak memory of `lepidopt predict`, against a plain loop over the same images.

    .venv/bin/python benchmarks/predict.py [--sizes 1000,10000] [--image-size 64] [--batch-size 64]

A ResNet-50 classifier (random weights: the speed is the same as trained ones) with a head, saved as
export saves it (model.keras with its card) and as ONNX. Image files are 96 x 72 px JPEGs, as a scanner
might give at thumbnail size; the model squashes them to --image-size. Each case runs in a fresh process:

  lepidopt predict     write_predictions(): decode each file (Pillow, the study's squash), run the model
                       batch by batch, write the CSV, stream with two decoding threads
  plain loop           the baseline: the same files decoded into one array first (not timed), then
                       Keras's own model.predict over it, or an ONNX session.run loop, in the same batches

for the Keras model and the ONNX model, at each size. Goals (issue 19): lepidopt within 1.5x of the plain
loop's time; peak RSS at 10,000 images within 10% of that at 1,000 (the plain loop holds every image, so
its memory grows with the count; lepidopt's should not).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def make_model(folder: Path, image_size: int) -> tuple[Path, Path]:
    import lepidopt
    from lepidopt.model import build_backbone, build_classifier, build_deployable, build_head
    from lepidopt.predictor import ModelCard, write_format
    from lepidopt.recipe import Recipe

    classes = ("Hesperiidae", "Lycaenidae", "Nymphalidae", "Papilionidae", "Pieridae", "Riodinidae")
    recipe = Recipe(image_size=image_size)
    backbone = build_backbone(weights="none", image_size=image_size)
    head = build_head(recipe, n_classes=len(classes), feature_dim=2048)
    classifier = build_classifier(backbone, head, pooling=recipe.head_pooling)
    deployable = build_deployable(classifier, image_size=image_size)
    card = ModelCard(classes=classes, image_size=image_size, recipe=recipe.to_flat(),
                     data={"min_size": 32}, lepidopt_version=lepidopt.__version__)
    return write_format("keras", deployable, card, folder), write_format("onnx", deployable, card, folder)


def make_images(folder: Path, count: int) -> list[str]:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (72, 96, 3), dtype=np.uint8)
    paths = []
    for i in range(count):
        path = folder / f"{i:05d}.jpg"
        if not path.exists():
            shifted = np.roll(base, i % 96, axis=1) // 2 + rng.integers(0, 128, (72, 96, 3), dtype=np.uint8)
            Image.fromarray(shifted).save(path, quality=90)
        paths.append(str(path))
    return paths


def run_case(kind: str, model_path: str, paths_file: str, batch_size: int, out_dir: str, size: int) -> dict:
    """One measured case, in this (fresh) process."""
    import numpy as np

    paths = Path(paths_file).read_text().split("\n")
    if kind == "lepidopt":
        import lepidopt
        from lepidopt.predictor import Item, write_predictions

        model = lepidopt.load_model(model_path)
        model.predict_proba(np.zeros((batch_size, size, size, 3), np.float32))  # warm-up, as the plain loop gets
        started = time.perf_counter()
        write_predictions(model, [Item(p) for p in paths], out=Path(out_dir) / "p.csv", batch_size=batch_size)
        seconds = time.perf_counter() - started
    else:
        from lepidopt.data import load_resized

        onnx = model_path.endswith(".onnx")
        images = np.stack([load_resized(p, size) for p in paths]).astype(np.float32)
        if onnx:
            import onnxruntime

            session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
            name = session.get_inputs()[0].name

            def predict(batch):
                return session.run(None, {name: batch})[0]
            predict(images[:batch_size])  # warm-up
            started = time.perf_counter()
            for start in range(0, len(images), batch_size):
                predict(images[start:start + batch_size])
            seconds = time.perf_counter() - started
        else:
            from lepidopt.model import load_classifier

            keras_model = load_classifier(model_path)
            keras_model.predict(images[:batch_size], batch_size=batch_size, verbose=0)  # warm-up
            started = time.perf_counter()
            keras_model.predict(images, batch_size=batch_size, verbose=0)
            seconds = time.perf_counter() - started
    return {"seconds": seconds, "images": len(paths), "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike getrusage's maxrss, not carried over an exec from
    the parent that started it)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measured(kind: str, model: Path, paths_file: Path, batch_size: int, out_dir: Path, size: int) -> dict:
    done = subprocess.run([sys.executable, __file__, "--case", kind, str(model), str(paths_file), str(batch_size),
                           str(out_dir), str(size)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} on {model.name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--case", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        kind, model, paths_file, batch_size, out_dir, size = args.case
        print(json.dumps(run_case(kind, model, paths_file, int(batch_size), out_dir, int(size))))
        return
    from environment import print_environment

    print_environment()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="lepidopt-predict-") as tmp:
        folder = Path(tmp)
        keras_file, onnx_file = make_model(folder, args.image_size)
        all_paths = make_images(folder / "images", max(sizes))
        rows = []
        for size in sizes:
            paths_file = folder / f"paths-{size}.txt"
            paths_file.write_text("\n".join(all_paths[:size]))
            for label, model in (("keras", keras_file), ("onnx", onnx_file)):
                ours = measured("lepidopt", model, paths_file, args.batch_size, folder, args.image_size)
                plain = measured("plain", model, paths_file, args.batch_size, folder, args.image_size)
                rows.append((label, size, ours, plain))
                print(f"{label:5} {size:6} images: lepidopt predict {size / ours['seconds']:7.1f} img/s, "
                      f"peak {ours['peak_rss_mb']:6.0f} MB | plain loop {size / plain['seconds']:7.1f} img/s, "
                      f"peak {plain['peak_rss_mb']:6.0f} MB | time ratio {ours['seconds'] / plain['seconds']:.2f}x",
                      flush=True)
    print()
    for label in ("keras", "onnx"):
        mine = [(size, ours) for name, size, ours, _ in rows if name == label]
        if len(mine) >= 2:
            (small, at_small), (large, at_large) = mine[0], mine[-1]
            growth = at_large["peak_rss_mb"] / at_small["peak_rss_mb"] - 1
            print(f"{label}: lepidopt predict peak RSS {at_small['peak_rss_mb']:.0f} MB at {small} images, "
                  f"{at_large['peak_rss_mb']:.0f} MB at {large}: {growth:+.1%} (goal: within 10%)")
        ratios = [ours["seconds"] / plain["seconds"] for name, _, ours, plain in rows if name == label]
        print(f"{label}: lepidopt predict time / plain loop time: {', '.join(f'{r:.2f}x' for r in ratios)} "
              "(goal: at most 1.5x)")


if __name__ == "__main__":
    main()
