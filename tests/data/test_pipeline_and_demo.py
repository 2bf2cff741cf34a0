import numpy as np

from lepidopt.data import (DataSpec, demo_class_sizes, image_batches, load_rgb, make_demo_collection, make_split,
                           scan_source)
from lepidopt.data._pipeline import decoded_images


def test_images_are_decoded_once_per_study_and_size(demo_folder, tmp_path, monkeypatch):
    split = make_split(scan_source(DataSpec(str(demo_folder))), seed=0)
    images = decoded_images(split, image_size=40, cache_dir=tmp_path)
    assert images.shape == (len(split.paths), 40, 40, 3) and images.dtype == np.uint8
    first = np.asarray(load_rgb(split.paths[0]).resize((40, 40)))
    assert np.abs(images[0].astype(int) - first.astype(int)).mean() < 2

    from lepidopt.data import _pipeline

    def fail(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(_pipeline, "_decode_batches", fail)
    again = decoded_images(split, image_size=40, cache_dir=tmp_path)
    assert np.array_equal(np.asarray(again), np.asarray(images))
    assert len(list(tmp_path.glob("images-40px-*.npy"))) == 1


def test_image_batches_gather_the_asked_rows(demo_folder, tmp_path):
    split = make_split(scan_source(DataSpec(str(demo_folder))), seed=0)
    images = decoded_images(split, image_size=32, cache_dir=tmp_path)
    idx = split.indices("val")
    batches = list(image_batches(images, split.labels, idx, batch_size=7).as_numpy_iterator())
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    assert x.dtype == np.float32 and x.shape == (len(idx), 32, 32, 3)
    assert np.array_equal(x, images[idx].astype(np.float32)) and np.array_equal(y, split.labels[idx])
    shuffled = np.concatenate([b[1] for b in image_batches(images, split.labels, idx, batch_size=7, shuffle_seed=1)])
    assert sorted(shuffled) == sorted(y)


def test_demo_collection_is_deterministic_and_shaped_like_ethec(tmp_path):
    sizes = demo_class_sizes(0.1)
    assert list(sizes) == ["Nymphalidae", "Lycaenidae", "Hesperiidae", "Pieridae", "Papilionidae", "Riodinidae"]
    assert sizes["Nymphalidae"] > sizes["Lycaenidae"] > sizes["Hesperiidae"] > sizes["Pieridae"] > sizes["Papilionidae"]
    a = make_demo_collection(tmp_path / "a", scale=0.005, image_size=40, seed=7, minimum=3)
    b = make_demo_collection(tmp_path / "b", scale=0.005, image_size=40, seed=7, minimum=3)
    c = make_demo_collection(tmp_path / "c", scale=0.005, image_size=40, seed=8, minimum=3)
    files = sorted(p.relative_to(a.root) for p in a.root.glob("*/*.jpg"))
    assert len(files) == sum(a.counts.values())
    assert all((a.root / f).read_bytes() == (b.root / f).read_bytes() for f in files)
    assert any((a.root / f).read_bytes() != (c.root / f).read_bytes() for f in files)
    assert a.manifest is None
