import json
import math
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.utils.data import Dataset

from segkit.config import get_cfg
from segkit.data import build_dataset
from segkit.evaluation import (InferenceMode, compute_metrics, confusion_matrix, evaluate_dataset, inference,
                               metrics_to_json, predict_dataset)
from tests.evaluation.test_inference import PointwiseNet

NAMES = ["road", "car", "sky", "bus", "tree"]


class TinySet(Dataset):
    """Items as segkit.data returns them, in memory; sizes differ per image, labels partly ignored.
    Declares the dataset contract (segkit/data/base.py) as attributes: the evaluator reads nothing else."""

    def __init__(self, n: int = 5, has_labels: bool = True, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.items = []
        for i in range(n):
            h, w = 20 + 3 * i, 30 + 5 * i
            label = torch.randint(0, len(NAMES), (h, w), generator=g)
            label[torch.rand(h, w, generator=g) < 0.1] = 255
            if not has_labels:
                label[:] = 255
            # The image carries the label (one-hot-ish) plus noise, so the dummy net is mostly right.
            image = torch.randn(3, h, w, generator=g) * 0.5
            image[0] += (label % 5).float() * 0.8
            self.items.append({"image": image, "label": label, "name": f"city_{i:06d}_000019", "path": ""})
        self.class_names = NAMES
        self.num_classes = len(NAMES)
        self.ignore_index = 255
        self.palette = [(i * 40, 255 - i * 40, 7 * i) for i in range(len(NAMES))]
        self.has_labels = has_labels
        self.train_id_to_label_id = None
        self.instance_spec = None

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return dict(self.items[i])


def _model():
    torch.manual_seed(3)
    return PointwiseNet(len(NAMES)).eval()


def _cfg():
    cfg = get_cfg()
    cfg.MODEL.NUM_CLASSES = len(NAMES)
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.TEST.CROP_SIZE = [16, 24]
    cfg.TEST.SCALES = [0.75, 1.0, 1.25]
    return cfg


def test_metrics_equal_direct_computation():
    ds, model, cfg = TinySet(), _model(), _cfg()
    result = evaluate_dataset(model, ds, cfg, "cpu", msc=True, flip=True)
    cm = torch.zeros(5, 5, dtype=torch.int64)
    for item in ds.items:
        pred = inference(model, item["image"], InferenceMode(scales=[0.75, 1.0, 1.25], flip=True), return_probs=False)
        cm += confusion_matrix(pred, item["label"], 5)
    want = compute_metrics(cm, NAMES)
    assert result["mIoU"] == pytest.approx(want["mIoU"], abs=0)
    assert result["per_class"] == want["per_class"]
    assert result["num_images"] == 5
    assert result["mode"] == {"scales": [0.75, 1.0, 1.25], "flip": True, "slide": False,
                              "crop_size": None, "stride": None, "batch_size": 4}
    assert 0 < result["mIoU"] < 100


@pytest.mark.parametrize("has_labels, save, warned", [(True, False, False), (True, True, False),
                                                      (False, True, False), (False, False, True)])
def test_only_an_unlabelled_split_without_a_prediction_folder_warns_of_nothing_to_do(
        has_labels, save, warned, tmp_path, caplog):
    with caplog.at_level("WARNING", logger="segkit"):
        evaluate_dataset(_model(), TinySet(2, has_labels=has_labels), _cfg(), "cpu",
                         save_pred_dir=str(tmp_path) if save else None)
    assert ("nothing to evaluate or save" in caplog.text) == warned


def test_mode_from_config_and_arguments():
    cfg = _cfg()
    cfg.TEST.SLIDE = True
    cfg.TEST.STRIDE = [8, 12]
    result = evaluate_dataset(_model(), TinySet(2), cfg, "cpu", scales=[1.0, 0.5])
    assert result["mode"]["slide"] and result["mode"]["crop_size"] == [16, 24] and result["mode"]["stride"] == [8, 12]
    assert result["mode"]["scales"] == [1.0, 0.5]  # `scales` implies multi-scale
    plain = evaluate_dataset(_model(), TinySet(2), cfg, "cpu", slide=False)["mode"]
    assert plain["scales"] == [1.0] and plain["slide"] is False and plain["stride"] is None


def test_model_mode_restored_and_test_split_saves_without_metrics(tmp_path):
    model = _model().train()
    result = evaluate_dataset(model, TinySet(3, has_labels=False), _cfg(), "cpu", save_pred_dir=str(tmp_path))
    assert model.training
    assert "mIoU" not in result and result["num_images"] == 3
    assert sorted(os.listdir(tmp_path / "trainIds")) == [f"city_{i:06d}_000019.png" for i in range(3)]
    assert len(os.listdir(tmp_path / "color")) == 3


def test_absent_class_is_nan_in_result_and_null_in_json():
    ds = TinySet(2)
    for item in ds.items:  # class 4 disappears from the ground truth ...
        item["label"][item["label"] == 4] = 255
    model = _model()
    with torch.no_grad():  # ... and the net can never predict it
        model.conv.bias[4] = -1e4
    result = evaluate_dataset(model, ds, _cfg(), "cpu")
    assert math.isnan(result["per_class"]["tree"]["IoU"])
    valid = [v["IoU"] for v in result["per_class"].values() if not math.isnan(v["IoU"])]
    assert result["mIoU"] == pytest.approx(sum(valid) / 4)
    assert json.loads(metrics_to_json(result))["per_class"]["tree"] == {"IoU": None, "Acc": None}


def _worker(rank: int, world: int, init_file: str, out: str, pred_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        result = evaluate_dataset(_model(), TinySet(5), _cfg(), "cpu", flip=True, save_pred_dir=pred_dir)
        if rank == 0:
            with open(out, "w") as f:
                json.dump(result, f)
    finally:
        dist.destroy_process_group()


def test_distributed_equals_single_process(tmp_path):
    # 5 images on 2 ranks: 3 + 2, each counted once (the evaluator also checks the total).
    single = evaluate_dataset(_model(), TinySet(5), _cfg(), "cpu", flip=True)
    out = str(tmp_path / "dist.json")
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), out, str(tmp_path / "pred")), nprocs=2, join=True)
    with open(out) as f:
        distributed = json.load(f)
    assert distributed["num_images"] == 5
    assert distributed["mIoU"] == single["mIoU"] and distributed["aAcc"] == single["aAcc"]
    assert distributed["per_class"] == json.loads(json.dumps(single["per_class"]))
    assert len(os.listdir(tmp_path / "pred" / "trainIds")) == 5


def test_every_registered_dataset_evaluates_and_exports(tiny_dataset, tmp_path):
    val = build_dataset(tiny_dataset, "val", train=False)
    model = PointwiseNet(val.num_classes).eval()
    result = evaluate_dataset(model, val, tiny_dataset, "cpu", save_pred_dir=str(tmp_path / "val"))
    assert list(result["per_class"]) == val.class_names and result["num_images"] == 2
    # The dataset's declared table decides the submission format; its palette colours the maps.
    kind = "trainIds" if val.train_id_to_label_id is None else "labelIds"
    assert {kind, "color", "overlay"} <= set(os.listdir(tmp_path / "val"))
    assert len(os.listdir(tmp_path / "val" / "overlay")) == 2
    test = build_dataset(tiny_dataset, "test", train=False)
    result = evaluate_dataset(model, test, tiny_dataset, "cpu", save_pred_dir=str(tmp_path / "test"))
    assert ("mIoU" in result) is test.has_labels and len(os.listdir(tmp_path / "test" / kind)) == 2


def test_predict_writes_files_and_no_metrics(tmp_path):
    result = predict_dataset(_model(), TinySet(3), _cfg(), "cpu", str(tmp_path), flip=True)
    assert set(result) == {"mode", "num_images"} and result["num_images"] == 3 and result["mode"]["flip"]
    assert len(os.listdir(tmp_path / "trainIds")) == 3 and len(os.listdir(tmp_path / "color")) == 3


def test_a_bad_test_setting_fails_before_the_model_runs():
    from segkit.config import ConfigError

    cfg, model = _cfg(), _model()
    cfg.TEST.SIZE_DIVISOR = 0  # divided by in the padding: a ZeroDivisionError at the first image otherwise
    with pytest.raises(ConfigError, match="TEST.SIZE_DIVISOR must be >= 1, got 0"):
        evaluate_dataset(model, TinySet(2), cfg, "cpu")
    assert model.calls == []
