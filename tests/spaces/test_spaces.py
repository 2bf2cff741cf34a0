import pytest
import yaml

from lepidopt.errors import SpaceError
from lepidopt.recipe import Recipe
from lepidopt.spaces import Choice, FloatRange, IntRange, builtin_space_names, load_space, space_from_dict

BASE = {
    "name": "t",
    "fixed": {"image_size": 64},
    "params": {
        "head.dense_layers": {"int": [0, 2]},
        "head.units": {"int": [64, 1024], "log": True, "when": {"head.dense_layers": [1, 2]}},
        "augment.strength": {"float": [0.0, 1.0], "step": 0.25},
        "finetune.unfreeze": {"choice": ["none", "conv5"]},
    },
    "baseline": {"head.dense_layers": 0, "augment.strength": 0.5, "finetune.unfreeze": "none"},
}


def with_(path, value):
    import copy

    data = copy.deepcopy(BASE)
    node = data
    keys = path.split("/")
    for k in keys[:-1]:
        node = node[k]
    if value is ...:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return data


@pytest.mark.parametrize("name", ["resnet50", "demo"])
def test_builtin_spaces_load_and_round_trip(name):
    space = load_space(name)
    assert space_from_dict(space.to_dict()) == space
    assert space_from_dict(yaml.safe_load(space.to_yaml())) == space
    baseline = space.recipe(space.baseline).to_flat()
    assert {k: baseline[k] for k in space.baseline} == dict(space.baseline)
    assert {k: baseline[k] for k in space.fixed if k in baseline} == {k: v for k, v in space.fixed.items() if k in baseline}


def test_builtin_names():
    assert builtin_space_names() == ["demo", "demo-taxonomy", "resnet50", "resnet50-taxonomy"]


def test_resnet50_baseline_is_the_hand_made_recipe():
    space = load_space("resnet50")
    recipe = space.recipe(space.baseline)
    assert (recipe.image_size, recipe.head_pooling, recipe.head_dense_layers) == (224, "avg", 0)
    assert (recipe.optimizer, recipe.finetune_unfreeze, recipe.sampling_class_weight) == ("adam", "all", "balanced")
    assert recipe.weights == "imagenet"


def test_parsed_objects_and_conditions():
    space = space_from_dict(BASE)
    units = space.param("head.units")
    assert isinstance(units, IntRange) and units.log and units.when == (("head.dense_layers", (1, 2)),)
    assert isinstance(space.param("augment.strength"), FloatRange)
    assert isinstance(space.param("finetune.unfreeze"), Choice)
    assert space.active_names({"head.dense_layers": 0}) == ["head.dense_layers", "augment.strength", "finetune.unfreeze"]
    assert "head.units" in space.active_names({"head.dense_layers": 2})
    # inactive params fall back to defaults, fixed values override defaults
    recipe = space.recipe({"head.dense_layers": 0, "head.units": 512, "augment.strength": 0.25, "finetune.unfreeze": "none"})
    assert recipe.head_units == Recipe().head_units and recipe.image_size == 64


@pytest.mark.parametrize(
    "path, value, match",
    [
        ("params/head.units", {"int": [1024, 64]}, r"t\.params\.head\.units\.int: low must not exceed high, got \[1024, 64\]"),
        ("params/head.unit", {"int": [1, 2]}, r"t\.params\.head\.unit: unknown parameter"),
        ("params/head.dense_layers", {"int": [0, 2], "log": True}, r"head\.dense_layers\.log: a log scale needs low > 0, got low=0"),
        ("params/augment.strength", {"float": [0.0, 1.5]}, r"augment\.strength: value 1\.5 is not allowed: must lie in \[0, 1\]"),
        ("params/augment.strength", {"float": [0.1, 1.0], "log": True, "step": 0.1}, r"'step' and 'log: true' cannot be combined"),
        ("params/finetune.unfreeze", {"choice": ["none", "conv9"]}, r"finetune\.unfreeze: value 'conv9' is not allowed: must be one of"),
        ("params/finetune.unfreeze", {"choice": []}, r"finetune\.unfreeze\.choice: must be a non-empty list"),
        ("params/finetune.unfreeze", {"choose": ["none"]}, r"must have exactly one of 'choice', 'int' or 'float'"),
        ("params/head.units", {"int": [64, 1024], "when": {"finetune.unfreeze": ["conv5"]}}, r"head\.units\.when\.finetune\.unfreeze: must name a parameter declared above"),
        ("params/head.units", {"int": [64, 1024], "when": {"head.dense_layers": [7]}}, r"when\.head\.dense_layers: value 7 can never be sampled"),
        ("params/head.units", {"int": [64, 1024], "scale": 2}, r"head\.units: unknown option 'scale'"),
        ("fixed", {"image_size": 16}, r"t\.fixed\.image_size: ResNet-50 needs at least 32 px, got 16"),
        ("fixed", {"head.dense_layers": 1}, r"head\.dense_layers: is also under 'fixed'"),
        ("fixed", {"epochs": 3}, r"t\.fixed: unknown key 'epochs'"),
        ("baseline/augment.strength", 0.3, r"t\.baseline\.augment\.strength: value 0\.3 lies outside its range"),
        ("baseline/head.units", 128, r"t\.baseline\.head\.units: is inactive for this baseline"),
        ("baseline/finetune.unfreeze", ..., r"t\.baseline: misses 'finetune\.unfreeze'"),
        ("params", {}, r"t\.params: must be a non-empty mapping"),
        ("name", "", r"t\.name: must be a non-empty string"),
        ("extra", 1, r"unknown top-level key 'extra'"),
    ],
)
def test_every_error_names_path_rule_and_value(path, value, match):
    with pytest.raises(SpaceError, match=match):
        space_from_dict(with_(path, value), source="t")


def test_space_error_is_a_value_error():
    with pytest.raises(ValueError):
        space_from_dict({"name": "x"})


def test_load_space_by_path_and_bad_names(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(BASE))
    assert load_space(path).name == "t"
    with pytest.raises(SpaceError, match=r"space 'nonesuch': is neither a built-in space \(demo, demo-taxonomy, resnet50, "
                                           r"resnet50-taxonomy\) nor a YAML file"):
        load_space("nonesuch")
    with pytest.raises(SpaceError, match=r"space file '.*missing\.yaml': does not exist"):
        load_space(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(SpaceError, match=r"space file '.*bad\.yaml': is not valid YAML"):
        load_space(bad)


def test_the_readme_example_space_is_valid():
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    space = space_from_dict(yaml.safe_load(block), source="README")
    assert space.name == "mine" and space.recipe(space.baseline).finetune_unfreeze == "conv5"


def test_numbers_written_with_an_exponent_are_numbers(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: e\nfixed: {head.lr: 1e-3}\nparams:\n  finetune.lr: {float: [1e-5, 1E-3], log: true}\n")
    space = load_space(path)
    assert space.param("finetune.lr").low == 1e-5 and space.param("finetune.lr").high == 1e-3
    assert space.fixed["head.lr"] == 1e-3


def test_a_key_written_twice_is_refused_with_both_lines(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("name: d\nparams:\n  head.dropout: {float: [0.0, 0.5]}\n  head.dropout: {float: [0.1, 0.2]}\n")
    with pytest.raises(SpaceError, match=r"space file '.*twice.yaml', line 4: key 'head.dropout' is written twice "
                                         r"\(first on line 3\); a YAML reader keeps only the last. Keep one of them."):
        load_space(path)


@pytest.mark.parametrize("spec, match", [
    ({"float": [0.0, 1.0], "step": 0.3}, r"t\.params\.augment\.strength\.step: 0\.3 does not divide the range \[0\.0, 1\.0\] "
                                         r".* the last value would be 0\.9. Choose a step that divides it, or set high "
                                         r"to 0\.9"),
    ({"float": [0.0, 1.0], "step": 0.25}, None),
    ({"float": [0.0, 1.0], "step": 0.1}, None),
])
def test_a_step_must_divide_the_range(spec, match):
    data = with_("params/augment.strength", spec)
    data["baseline"]["augment.strength"] = 0.0
    if match is None:
        space_from_dict(data, source="t")
    else:
        with pytest.raises(SpaceError, match=match):
            space_from_dict(data, source="t")
    with pytest.raises(SpaceError, match=r"t\.params\.head\.dense_layers\.step: 2 does not divide the range \[0, 3\]"):
        space_from_dict(with_("params/head.dense_layers", {"int": [0, 3], "step": 2}), source="t")


def test_spaces_validate_reports_a_weights_file_that_does_not_exist(tmp_path, capsys):
    from lepidopt.cli import main

    path = tmp_path / "w.yaml"
    path.write_text("name: w\nfixed: {weights: missing/resnet50.weights.h5}\nparams:\n  head.dropout: {float: [0.0, 0.5]}\n")
    assert main(["spaces", "validate", str(path)]) == 4
    assert ("w.yaml.fixed.weights: weights file 'missing/resnet50.weights.h5' does not exist (a relative path is read "
            "from the current folder") in capsys.readouterr().err
    path.write_text("name: w\nparams:\n  weights: {choice: [none, gone.h5]}\n")
    assert main(["spaces", "validate", str(path)]) == 4
    assert "w.yaml.params.weights.choice: weights file 'gone.h5' does not exist" in capsys.readouterr().err
