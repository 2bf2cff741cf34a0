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


def test_demo_genera_are_drawn_variants_and_genus_zero_is_the_family_as_before(tmp_path):
    import json

    from lepidopt.data import make_demo_collection

    plain = make_demo_collection(tmp_path / "plain", scale=0.005, image_size=40, seed=2, minimum=6, manifest=True)
    split = make_demo_collection(tmp_path / "split", scale=0.005, image_size=40, seed=2, minimum=6, manifest=True,
                                 genera=3)
    records = json.loads(split.manifest.read_text()).values()
    genus_of = {r["image_name"] or r["image_path"].split("/")[-1]: r["genus"] for r in records}
    assert set(genus_of.values()) == set(split.genera) and len(split.genera) == 18
    assert all(n >= 6 for n in split.genera.values())
    sizes = [split.genera[f"Nymphal{ending}"] for ending in ("us", "ia", "ops")]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[2]  # imbalanced within the family too
    assert {r["genus"] for r in json.loads(plain.manifest.read_text()).values()} == set(plain.genera)
    assert len(plain.genera) == 6  # without genera, one genus per family
    for path in sorted((tmp_path / "plain" / "Pieridae").glob("*.jpg")):
        twin = tmp_path / "split" / "Pieridae" / path.name
        same = path.read_bytes() == twin.read_bytes()
        assert same == (genus_of[path.name] == "Pierus"), path.name  # genus 0 draws as before; the others differ
