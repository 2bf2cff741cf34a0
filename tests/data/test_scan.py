import logging

import numpy as np
import pytest
from PIL import Image

from conftest import write_image
from lepidopt.data import DataSpec, load_rgb, scan_source
from lepidopt.errors import DataError


def _good_count(folder):
    return sum(1 for _ in folder.glob("*/*.jpg"))


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda d: (d / "Pieridae" / "empty.jpg").write_bytes(b""), "zero-byte file"),
        (lambda d: (d / "Pieridae" / "notes.txt").write_text("field notes, not an image"), "not an image"),
        (lambda d: (d / "Pieridae" / "fake.jpg").write_text("<html>not a jpeg</html>"), "not an image"),
        (lambda d: _truncate(write_image(d / "Pieridae" / "cut.jpg", size=(200, 200))), "truncated image"),
        (lambda d: write_image(d / "Pieridae" / "tiny.png", size=(12, 10)), "too small: 12x10 px, below the minimum of 32 px"),
    ],
    ids=["zero-byte", "text-file", "text-as-jpg", "truncated", "too-small"],
)
def test_each_bad_file_is_skipped_with_its_reason_and_the_good_images_are_kept(demo_copy, damage, reason, caplog):
    good = _good_count(demo_copy)
    damage(demo_copy)
    with caplog.at_level(logging.WARNING, logger="lepidopt"):
        scan = scan_source(DataSpec(str(demo_copy)))
    assert len(scan.records) == good
    assert len(scan.skipped) == 1 and reason in scan.skipped[0].reason
    assert reason in caplog.text


def test_missing_file_named_by_a_manifest_is_skipped(demo_copy, tmp_path):
    table = tmp_path / "m.csv"
    rows = [f"{p.relative_to(demo_copy)},{p.parent.name}" for p in sorted(demo_copy.glob("*/*.jpg"))]
    table.write_text("path,label\n" + "\n".join(rows + ["Pieridae/gone.jpg,Pieridae"]) + "\n")
    scan = scan_source(DataSpec(str(table), image_root=str(demo_copy)))
    assert [s.reason for s in scan.skipped] == ["missing file"]
    assert len(scan.records) == len(rows)


@pytest.mark.parametrize("mode, fmt", [("L", "PNG"), ("RGBA", "PNG"), ("P", "PNG"), ("CMYK", "JPEG"), ("I;16", "PNG")])
def test_unusual_modes_are_converted_not_rejected(demo_copy, mode, fmt):
    path = write_image(demo_copy / "Pieridae" / f"odd_{mode.replace(';', '')}.{fmt.lower()}", mode=mode, fmt=fmt)
    with Image.open(path) as img:
        assert img.mode.startswith(mode[0]) or img.mode == "I"
    scan = scan_source(DataSpec(str(demo_copy)))
    assert not scan.skipped
    assert str(path) in {r.path for r in scan.records}
    rgb = load_rgb(path)
    assert rgb.mode == "RGB" and rgb.size == (48, 40)
    if mode == "I;16":
        assert np.asarray(rgb).max() > 64  # scaled from 16 bits, not clipped to black or white


def test_a_too_small_class_is_dropped_with_a_warning_naming_it(demo_copy, caplog):
    for extra in sorted((demo_copy / "Riodinidae").glob("*.jpg"))[5:]:
        extra.unlink()
    with caplog.at_level(logging.WARNING, logger="lepidopt"):
        scan = scan_source(DataSpec(str(demo_copy), min_per_class=8))
    assert scan.dropped_classes == {"Riodinidae": 5}
    assert "dropped class 'Riodinidae': 5 usable images, fewer than the 8" in caplog.text
    assert "Riodinidae" not in scan.class_counts and len(scan.class_counts) == 5
    kept = scan_source(DataSpec(str(demo_copy), min_per_class=5))
    assert kept.class_counts["Riodinidae"] == 5


def test_all_broken_source_is_a_clear_error(tmp_path):
    for i in range(3):
        (tmp_path / "A" / f"{i}.jpg").parent.mkdir(exist_ok=True)
        (tmp_path / "A" / f"{i}.jpg").write_bytes(b"")
    (tmp_path / "B").mkdir()
    (tmp_path / "B" / "x.jpg").write_text("nope")
    with pytest.raises(DataError, match=r"none of its 4 images can be used \(3 zero-byte file, 1 not an image"):
        scan_source(DataSpec(str(tmp_path)))


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"holds 0 files and no class subfolder with files in it. Expected one "
                                        r"subfolder per class"):
        scan_source(DataSpec(str(tmp_path)))


def test_a_single_usable_class_is_a_clear_error(tmp_path):
    for i in range(12):
        write_image(tmp_path / "Only" / f"{i}.png")
    with pytest.raises(DataError, match=r"1 class\(es\) left with at least 10 usable images; a classifier needs 2 or more"):
        scan_source(DataSpec(str(tmp_path)))


def test_a_manifest_whose_paths_are_all_missing_says_to_give_the_image_root(demo_copy, tmp_path, caplog):
    table = tmp_path / "lists" / "m.csv"
    table.parent.mkdir()
    rows = [f"{p.relative_to(demo_copy)},{p.parent.name}" for p in sorted(demo_copy.glob("*/*.jpg"))]
    table.write_text("path,label\n" + "\n".join(rows) + "\n")
    with caplog.at_level(logging.WARNING, logger="lepidopt"):
        with pytest.raises(DataError, match=rf"none of the {len(rows)} image paths it names exists \(e.g. "
                                            rf"'{tmp_path}/lists/.*jpg'\); the paths are read relative to "
                                            rf"'{tmp_path}/lists'; if they are relative to another folder, give it "
                                            r"with image_root=."):
            scan_source(DataSpec(str(table)))
    assert caplog.text.count("\n") <= 1  # one message, not a line per file

    table.write_text("path,label\n" + "\n".join(rows + [f"Pieridae/gone{i}.jpg,Pieridae" for i in range(30)]) + "\n")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="lepidopt"):
        scan = scan_source(DataSpec(str(table), image_root=str(demo_copy)))
    assert len(scan.records) == len(rows) and len(scan.skipped) == 30
    assert len(caplog.records) == 1
    assert "30 of the" in caplog.text and "give it with image_root=" in caplog.text


def test_an_empty_csv_manifest_says_it_is_empty(tmp_path):
    (tmp_path / "m.csv").write_bytes(b"")
    with pytest.raises(DataError, match=r"CSV manifest '.*m.csv': is empty \(0 bytes\); it needs a header line with "
                                        r"the columns 'path' and 'label', then one line per image"):
        scan_source(DataSpec(str(tmp_path / "m.csv")))


def test_images_at_the_top_of_a_folder_without_class_subfolders_are_named(tmp_path):
    for i in range(3):
        write_image(tmp_path / f"{i}.jpg", fmt="JPEG")
    (tmp_path / ".hidden").mkdir()
    write_image(tmp_path / ".hidden" / "x.jpg", fmt="JPEG")
    with pytest.raises(DataError, match=r"holds 3 image files at its top level \(e.g. '0.jpg'\) and no class "
                                        r"subfolders. Expected one subfolder per class with its images inside, e.g. "
                                        r"root/Nymphalidae/img001.jpg; for images labelled another way, give a CSV"):
        scan_source(DataSpec(str(tmp_path)))


def test_hidden_files_and_folders_are_not_images_of_a_class(demo_copy):
    good = _good_count(demo_copy)
    write_image(demo_copy / "Pieridae" / ".thumbs" / "t.jpg", fmt="JPEG")
    (demo_copy / "Pieridae" / ".DS_Store").write_bytes(b"\0\0")
    scan = scan_source(DataSpec(str(demo_copy)))
    assert len(scan.records) == good and not scan.skipped
