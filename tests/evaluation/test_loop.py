import pytest
import torch

from segkit.evaluation import InferenceMode, SampleInfo, evaluate_dataset, inference, inference_on_dataset
from tests.evaluation.test_evaluator import TinySet, _cfg, _model


class Recorder:
    """A consumer that keeps what it is given."""

    def __init__(self):
        self.seen: list[tuple[torch.Tensor, torch.Tensor, SampleInfo]] = []

    def process(self, pred, label, info):
        self.seen.append((pred, label, info))

    def finish(self):
        return {"recorded": len(self.seen)}


class WithInstances(TinySet):
    """Yields a key beyond the contract's four, as a dataset with instance maps would."""

    def __getitem__(self, i):
        item = super().__getitem__(i)
        item["instances"] = torch.full(item["label"].shape, i)
        return item


def test_every_consumer_sees_every_image_with_its_info_and_extras():
    ds, recorder = WithInstances(3), Recorder()
    result = inference_on_dataset(_model(), ds, _cfg(), "cpu", [recorder])
    assert result == {"recorded": 3, "mode": InferenceMode.from_config(_cfg()).describe(), "num_images": 3}
    for i, (pred, label, info) in enumerate(recorder.seen):
        item = ds.items[i]
        assert pred.dtype == torch.int64 and pred.shape == label.shape == item["label"].shape
        assert torch.equal(label, item["label"]) and info.name == item["name"] and info.path == ""
        assert torch.equal(info.extras["instances"], torch.full(label.shape, i))
        assert torch.equal(pred, inference(_model(), item["image"], return_probs=False))


def test_a_callable_is_a_model_too():
    net = _model()

    def runtime(x: torch.Tensor) -> torch.Tensor:  # e.g. an exported graph: no nn.Module, no eval mode
        with torch.no_grad():
            return net(x)

    ds = TinySet(2)
    expected = evaluate_dataset(net, ds, _cfg(), "cpu", flip=True)
    assert evaluate_dataset(runtime, ds, _cfg(), "cpu", flip=True) == expected


def test_the_inference_mode_of_a_config_and_its_overrides():
    cfg = _cfg()
    assert InferenceMode.from_config(cfg).describe() == {"scales": [1.0], "flip": False, "slide": False,
                                                         "crop_size": None, "stride": None, "batch_size": 4}
    cfg.TEST.MSC, cfg.TEST.SLIDE = True, True
    mode = InferenceMode.from_config(cfg, flip=True)
    assert mode.scales == (0.75, 1.0, 1.25) and mode.flip and mode.stride == (11, 16)  # 2/3 of [16, 24]
    assert InferenceMode.from_config(cfg, msc=False, scales=[2.0]).scales == (1.0,)  # msc off wins over scales
    with pytest.raises(ValueError, match="scales must be positive"):
        InferenceMode(scales=(1.0, 0.0))
