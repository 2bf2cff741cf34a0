import csv
import json

import pytest

from lepidopt.data import DataSpec, read_records, scan_source
from lepidopt.errors import DataError, SettingError


def _pairs(records):
    return sorted((r.path, r.label) for r in records)


def test_ethec_manifest_with_empty_image_name_quirk_and_csv_load_what_the_folder_holds(demo_folder, tmp_path):
    folder = scan_source(DataSpec(str(demo_folder)))
    manifest = demo_folder / "ethec_manifest.json"
    entries = json.loads(manifest.read_text())
    assert any(e["image_name"] == "" and e["image_path"].endswith(".jpg") for e in entries.values())
    ethec = scan_source(DataSpec(str(manifest), label_level="family"))

    table = tmp_path / "images.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "family"])
        for r in folder.records:
            writer.writerow([r.path.replace(str(demo_folder) + "/", ""), r.label])
    table_scan = scan_source(DataSpec(str(table), image_root=str(demo_folder), path_column="file", label_column="family"))

    assert _pairs(folder.records) == _pairs(ethec.records) == _pairs(table_scan.records)
    assert len(folder.records) == sum(1 for _ in demo_folder.glob("*/*.jpg"))


def test_ethec_label_levels(tmp_path):
    from lepidopt.data import make_demo_collection

    made = make_demo_collection(tmp_path / "g", scale=0.005, image_size=32, manifest=True, minimum=3, genera=2)
    manifest = str(made.manifest)
    species = {r.label for r in read_records(DataSpec(manifest, label_level="species"))}
    genus = {r.label for r in read_records(DataSpec(manifest, label_level="genus"))}
    subfamily = {r.label for r in read_records(DataSpec(manifest, label_level="subfamily"))}
    assert all(s.split("_")[0] in genus for s in species)
    assert "Nymphalus_alba" in species or any(s.startswith("Nymphal") for s in species)
    assert len(subfamily) == 6 and len(genus) == 12 and genus == set(made.genera)
    assert all(n >= 3 for n in made.genera.values())


def test_ethec_own_split_files_are_the_split(demo_folder, tmp_path):
    from lepidopt.data import make_split

    entries = list(json.loads((demo_folder / "ethec_manifest.json").read_text()).items())
    parts = {"train": entries[0::3], "val": entries[1::3], "test": entries[2::3]}
    paths = {}
    for name, items in parts.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(dict(items)))
    spec = DataSpec(str(paths["train"]), val_manifest=str(paths["val"]), test_manifest=str(paths["test"]),
                    image_root=str(demo_folder), min_per_class=3)
    split = make_split(scan_source(spec), seed=0)
    assert split.predefined
    by_name = {p.rsplit("/", 1)[1]: s for p, s in zip(split.paths, split.subsets)}
    for name, items in parts.items():
        for _, entry in items:
            file = entry["image_name"] or entry["image_path"].rsplit("/", 1)[1]
            assert by_name[file] == name


def test_csv_with_a_wrong_column_names_it_and_the_fix(tmp_path):
    table = tmp_path / "x.csv"
    table.write_text("filename,label\na.jpg,A\n")
    with pytest.raises(DataError, match=r"has no column 'path' \(columns: \['filename', 'label'\]\); name the right one with path_column="):
        read_records(DataSpec(str(table)))


def test_unknown_source_kinds(tmp_path):
    with pytest.raises(DataError, match=r"data source '.*nowhere': does not exist"):
        read_records(DataSpec(str(tmp_path / "nowhere")))
    other = tmp_path / "x.parquet"
    other.write_text("x")
    with pytest.raises(DataError, match=r"cannot tell its format .* Set format= to folder, ethec or csv"):
        read_records(DataSpec(str(other)))
    with pytest.raises(SettingError, match=r"label_level='order': must be one of family, subfamily"):
        DataSpec("x", label_level="order")
    with pytest.raises(SettingError, match=r"min_per_class=2: must be at least 3"):
        DataSpec("x", min_per_class=2)
    broken = tmp_path / "m.json"
    broken.write_text("{not json")
    with pytest.raises(DataError, match=r"ETHEC manifest .*m\.json': is not valid JSON"):
        read_records(DataSpec(str(broken)))
    missing_field = tmp_path / "n.json"
    missing_field.write_text(json.dumps({"t1": {"image_path": "a/", "image_name": "b.jpg", "family": "F"}}))
    with pytest.raises(DataError, match=r"record 't1': field 'genus' is missing or empty, needed for label_level='genus'"):
        read_records(DataSpec(str(missing_field), label_level="genus"))
