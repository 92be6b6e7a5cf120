import numpy as np
import pytest
import torch

from segkit.config import ConfigError
from segkit.data import build_dataset
from segkit.data.cityscapes import CLASS_NAMES as CITYSCAPES
from segkit.evaluation import evaluate_dataset
from segkit.evaluation.cross_dataset import ClassMappedModel, adapt_to_dataset, checkpoint_config, model_dataset
from tests.data.test_official import ConstantNet
from tests.data.tiny import write_tiny_dataset


@pytest.fixture
def bdd(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path / "cache"))
    return write_tiny_dataset("bdd100k", tmp_path / "bdd100k")


def test_same_classes_evaluate_directly(bdd):
    bdd.MODEL.TRAINED_ON = "cityscapes"
    ds = build_dataset(bdd, "val", train=False)
    model = ConstantNet(19, 0)
    adapted, report = adapt_to_dataset(bdd, model, ds)
    assert adapted is model and report == {"trained_on": "cityscapes", "evaluated_on": "bdd100k"}


def test_the_checkpoint_config_names_the_model_dataset(bdd, tmp_path):
    trained = bdd.clone()
    trained.DATASET.NAME = "cityscapes"
    torch.save({"model": {}, "config": trained.dump()}, tmp_path / "ckpt.pth")
    carried = checkpoint_config(str(tmp_path / "ckpt.pth"))
    assert carried.DATASET.NAME == "cityscapes"
    assert model_dataset(bdd, carried) == ("cityscapes", CITYSCAPES)
    torch.save({"w": torch.zeros(1)}, tmp_path / "bare.pth")  # a bare state_dict: the config's own dataset
    assert checkpoint_config(str(tmp_path / "bare.pth")) is None and model_dataset(bdd, None)[0] == "bdd100k"
    assert checkpoint_config("zoo:bisenetv1_r18_cityscapes") is None and checkpoint_config(None) is None
    bdd.MODEL.TRAINED_ON = "kitti"  # the key wins over the carried config
    assert model_dataset(bdd, carried)[0] == "kitti"


def test_other_classes_without_a_mapping_are_refused_naming_both_lists(bdd):
    bdd.MODEL.TRAINED_ON = "ade20k"
    bdd.MODEL.NUM_CLASSES = 150
    ds = build_dataset(bdd, "val", train=False)
    with pytest.raises(ConfigError) as e:
        adapt_to_dataset(bdd, ConstantNet(150, 0), ds)
    msg = str(e.value)
    assert "trained on ADE20K (150 classes: wall, building, sky" in msg and ", flag)" in msg
    assert "on BDD100K (19 classes: road, sidewalk" in msg and ", bicycle)" in msg
    bdd.MODEL.NUM_CLASSES = 19
    with pytest.raises(ConfigError, match="MODEL.NUM_CLASSES is 19 but the model's dataset ade20k has 150 classes"):
        adapt_to_dataset(bdd, ConstantNet(150, 0), ds)


def test_class_mapped_model_sums_probabilities():
    logits = torch.log(torch.tensor([0.5, 0.2, 0.3])).view(1, 3, 1, 1)

    def net(x):
        return logits.expand(x.shape[0], 3, *x.shape[2:])

    mapped = ClassMappedModel(net, [1, 1, -1], num_targets=2)
    out = mapped(torch.zeros(1, 3, 2, 2))
    assert out.shape == (1, 2, 2, 2)
    assert torch.allclose(out[0, :, 0, 0].exp(), torch.tensor([0.0, 0.7]), atol=1e-6)


def test_mapillary_model_on_a_cityscapes_class_dataset(bdd):
    bdd.MODEL.TRAINED_ON, bdd.MODEL.NUM_CLASSES = "mapillary_v12", 65
    ds = build_dataset(bdd, "val", train=False)
    road = 13  # construction--flat--road: Cityscapes road
    adapted, report = adapt_to_dataset(bdd, ConstantNet(65, road), ds)
    assert isinstance(adapted, ClassMappedModel) and report["class_mapping"] == "Mapillary Vistas -> Cityscapes"
    result = evaluate_dataset(adapted, ds, bdd, "cpu")
    conf = np.array(result["confusion_matrix"])
    assert conf[:, 0].sum() == conf.sum()  # every pixel predicted road


def test_cityscapes_model_on_mapillary_reads_its_labels_as_cityscapes(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path / "cache"))
    cfg = write_tiny_dataset("mapillary_v12", tmp_path / "vistas")
    cfg.MODEL.TRAINED_ON = "cityscapes"
    ds = build_dataset(cfg, "val", train=False)
    raw = ds.read_raw_label(ds.samples[0].label)
    adapted, report = adapt_to_dataset(cfg, ConstantNet(19, 0), ds)
    assert report["class_mapping"] == "Mapillary Vistas -> Cityscapes" and ds.class_names == CITYSCAPES
    label = ds[0]["label"].numpy()
    # Stored 13 (road) -> road 0; 0 (bird), 64 (ego vehicle), 65 (unlabeled) have no counterpart -> ignored.
    assert (label[raw == 13] == 0).all() and (label[raw != 13] == 255).all()
    result = evaluate_dataset(adapted, ds, cfg, "cpu")
    assert result["per_class"]["road"]["IoU"] == 100.0 and list(result["per_class"]) == CITYSCAPES
