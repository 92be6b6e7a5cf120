import json

import numpy as np
import pytest

from segkit.data import build_dataset, dataset_classes
from segkit.data.cityscapes import CLASS_NAMES as CITYSCAPES
from segkit.data.mapillary import builtin_labels, cityscapes_class_of
from segkit.data.mapillary_tables import TABLES
from tests.data.tiny import write_tiny_dataset

# Every Mapillary label with a Cityscapes counterpart; every other label of the table has none.
V12_TO_CITYSCAPES = {
    "construction--flat--road": "road", "construction--flat--bike-lane": "road",
    "construction--flat--crosswalk-plain": "road", "construction--flat--service-lane": "road",
    "marking--crosswalk-zebra": "road", "marking--general": "road", "object--manhole": "road",
    "object--pothole": "road",
    "construction--flat--sidewalk": "sidewalk", "construction--flat--curb-cut": "sidewalk",
    "construction--flat--pedestrian-area": "sidewalk", "construction--barrier--curb": "sidewalk",
    "construction--structure--building": "building", "construction--barrier--wall": "wall",
    "construction--barrier--fence": "fence",
    "object--support--pole": "pole", "object--support--utility-pole": "pole",
    "object--support--traffic-sign-frame": "pole",
    "object--traffic-light": "traffic light", "object--traffic-sign--front": "traffic sign",
    "nature--vegetation": "vegetation", "nature--terrain": "terrain", "nature--sky": "sky",
    "human--person": "person", "human--rider--bicyclist": "rider", "human--rider--motorcyclist": "rider",
    "human--rider--other-rider": "rider",
    "object--vehicle--car": "car", "object--vehicle--truck": "truck", "object--vehicle--bus": "bus",
    "object--vehicle--on-rails": "train", "object--vehicle--motorcycle": "motorcycle",
    "object--vehicle--bicycle": "bicycle",
}
V20_TO_CITYSCAPES = {
    **{k: v for k, v in V12_TO_CITYSCAPES.items()
       if k not in ("human--person", "object--traffic-light", "marking--crosswalk-zebra", "marking--general")},
    "construction--flat--road-shoulder": "road", "object--support--pole-group": "pole",
    "human--person--individual": "person", "human--person--person-group": "person",
    "object--traffic-sign--direction-front": "traffic sign", "object--traffic-sign--temporary-front": "traffic sign",
    **{f"object--traffic-light--{k}": "traffic light"
       for k in ("cyclists", "general-horizontal", "general-single", "general-upright", "other", "pedestrians")},
    **{name: "road" for name, _ in TABLES["v2.0"] if name.startswith("marking--")},
}


@pytest.mark.parametrize("version,expected", [("v1.2", V12_TO_CITYSCAPES), ("v2.0", V20_TO_CITYSCAPES)])
def test_cityscapes_mapping_over_the_whole_table(version, expected):
    names = [name for name, _ in TABLES[version]]
    assert set(expected) <= set(names)  # the declared mapping names only labels of the table
    assert {name: cityscapes_class_of(name) for name in names} == {name: expected.get(name) for name in names}
    assert set(expected.values()) == set(CITYSCAPES)  # every Cityscapes class has a source
    if version == "v2.0":  # 20 of v2.0's labels are lane markings, all on the road; "marking-only--" ones are not
        assert sum(n.startswith("marking--") for n in names) == 20
        assert cityscapes_class_of("marking-only--discrete--text") is None


def test_builtin_tables():
    assert len(TABLES["v1.2"]) == 66 and len(TABLES["v2.0"]) == 124
    for version in TABLES:
        labels = builtin_labels(version)
        assert labels[-1].name == "void--unlabeled" and not labels[-1].evaluate
        assert len({lab.name for lab in labels}) == len(labels)
    assert TABLES["v1.2"][13] == ("construction--flat--road", (128, 64, 128))
    assert [lab.name for lab in builtin_labels("v1.2") if not lab.evaluate] == ["void--unlabeled"]
    # config_v2.0.json's "evaluate": false labels, by their stored values.
    v20 = builtin_labels("v2.0")
    assert [i for i, lab in enumerate(v20) if not lab.evaluate] == [2, 31, 38, 79, 86, 96, 115, 123]
    assert v20[86].name == "object--support--pole-group" and v20[115].name == "object--vehicle--vehicle-group"
    # The traffic lights in the release's order, not alphabetical.
    assert [v20[i].name.rsplit("--", 1)[1] for i in range(90, 96)] == [
        "general-single", "pedestrians", "general-upright", "general-horizontal", "cyclists", "other"]


def test_layout_table_and_palette_png(tmp_path):
    cfg = write_tiny_dataset("mapillary_v12", tmp_path / "vistas")
    val = build_dataset(cfg, "val", train=False)
    assert val.num_classes == 65 and val.class_names[13] == "construction--flat--road"
    assert val.palette[13] == (128, 64, 128)
    assert all("/validation/v1.2/labels/" in s.label for s in val.samples)
    assert (val.value_lut[:65] == np.arange(65)).all() and val.value_lut[65] == 255 and (val.value_lut[66:] == -1).all()
    # Labels are indexed PNGs: their indices are the label values (0, 13, 64, and 65 unlabeled -> ignore).
    assert set(np.unique(val[0]["label"].numpy())) <= {0, 13, 64, 255}
    assert not build_dataset(cfg, "test", train=False).has_labels
    v20 = write_tiny_dataset("mapillary_v20", tmp_path / "vistas20")
    assert build_dataset(v20, "train", train=False).num_classes == 116


def test_the_downloads_config_json_is_read(tmp_path):
    cfg = write_tiny_dataset("mapillary_v12", tmp_path / "vistas")
    labels = [{"name": n, "color": list(c), "evaluate": n not in ("void--unlabeled", "void--ego-vehicle")}
              for n, c in TABLES["v1.2"]]
    (tmp_path / "vistas" / "config_v1.2.json").write_text(json.dumps({"labels": labels}))
    names, _ = dataset_classes(cfg)
    assert len(names) == 64 and "void--ego-vehicle" not in names
    ds = build_dataset(cfg, "val", train=False)
    assert ds.value_lut[64] == 255 and ds.value_lut[63] == 63  # ego vehicle now ignored
    (tmp_path / "vistas" / "config_v1.2.json").write_text('{"classes": []}')
    with pytest.raises(ValueError, match=r"config_v1.2.json is not a Mapillary Vistas config"):
        dataset_classes(cfg)


def test_the_v12_release_on_its_own(tmp_path):
    """The v1.2 download without the v2.0 bundle: config.json and <split>/labels, no version folder."""
    root = tmp_path / "vistas"
    cfg = write_tiny_dataset("mapillary_v12", root)
    for split in ("training", "validation"):
        (root / split / "v1.2" / "labels").rename(root / split / "labels")
        (root / split / "v1.2").rmdir()
    labels = [{"name": n, "color": list(c), "evaluate": n not in ("void--unlabeled", "nature--sand")}
              for n, c in TABLES["v1.2"]]
    (root / "config.json").write_text(json.dumps({"labels": labels}))
    val = build_dataset(cfg, "val", train=False)
    assert all(s.label.startswith(str(root / "validation" / "labels")) for s in val.samples)
    assert val.num_classes == 64 and "nature--sand" not in val.class_names  # config.json was read
    # v2.0 has no such layout: its labels are looked for under v2.0/ and the error names that folder.
    v20 = write_tiny_dataset("mapillary_v20", tmp_path / "vistas20")
    for split in ("training", "validation"):
        (tmp_path / "vistas20" / split / "v2.0" / "labels").rename(tmp_path / "vistas20" / split / "labels")
    with pytest.raises(FileNotFoundError, match=r"v2\.0/labels"):
        build_dataset(v20, "val", train=False)
