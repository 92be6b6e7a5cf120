import functools
import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Two cores are shared between pytest-xdist workers: one intra-op thread each avoids oversubscription.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _segkit_logger_propagates():
    """A tool's setup_logger stops the "segkit" logger propagating; caplog (on the root logger) would then miss
    its records in every later test of the same worker, so each test starts with propagation on."""
    import logging

    logger = logging.getLogger("segkit")
    logger.propagate = True
    yield


@pytest.fixture(autouse=True, scope="session")
def _own_cache(tmp_path_factory):
    """Label histograms and ONNX exports go to a cache of the test session, never the user's ~/.cache:
    a warm cache there would hide the cost (and the bugs) of a first run."""
    os.environ["SEGKIT_CACHE"] = str(tmp_path_factory.getbasetemp() / "segkit-cache-session")


@pytest.fixture
def segkit_log(caplog):
    """caplog receiving the "segkit" logger's records at INFO and above, even after a tool's setup_logger
    stopped that logger propagating (its records would then never reach caplog)."""
    import logging

    logger = logging.getLogger("segkit")
    level, propagate = logger.level, logger.propagate
    logger.addHandler(caplog.handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # caplog's handler also sits on the root logger: each record once
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.setLevel(level)
    logger.propagate = propagate


from segkit.data import DATASETS  # noqa: E402  (after the path set-up above)


@pytest.fixture(params=sorted(DATASETS))
def tiny_dataset(request, tmp_path, monkeypatch):
    """Config of a generated tiny dataset, once per name registered in segkit.data.DATASETS: splits train
    and val labelled, test without labels (writers in tests/data/tiny.py). The label cache stays in tmp_path."""
    from tests.data.tiny import write_tiny_dataset

    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path / "cache"))
    return write_tiny_dataset(request.param, tmp_path / request.param)


from collections import OrderedDict  # noqa: E402

from segkit.models.backbones import BACKBONES  # noqa: E402
from segkit.models.backbones.base import FEATURE_NAMES, ShapeSpec, StagedBackbone, dilation_schedule  # noqa: E402
from segkit.models.layers import ConvBNAct  # noqa: E402


class TinyBackbone(StagedBackbone):
    """The zoo contract at toy cost: a stride-4 stem and one 3x3 conv-norm-ReLU per stage (c2..c5: 8, 16, 24,
    32 channels), honouring output_stride (stride becomes dilation), norm and frozen stages."""

    def __init__(self, output_stride: int = 32, norm: str = "BN", **kwargs) -> None:
        super().__init__()
        chans = (8, 8, 16, 24, 32)
        self.stem = ConvBNAct(3, chans[0], 3, stride=4, norm=norm)
        self._out_shapes, stride = OrderedDict(), 4
        for i, (s, d) in enumerate(((1, 1),) + dilation_schedule(output_stride)):
            setattr(self, f"layer{i + 1}", ConvBNAct(chans[i], chans[i + 1], 3, stride=s, dilation=d, norm=norm))
            stride *= s
            self._out_shapes[FEATURE_NAMES[i]] = ShapeSpec(chans[i + 1], stride)


@pytest.fixture
def tiny_backbone_name(monkeypatch) -> str:
    """Registers TinyBackbone in the backbone zoo as 'tiny' for one test and returns that name."""
    monkeypatch.setitem(BACKBONES, "tiny", TinyBackbone)
    return "tiny"


# Narrow heads keep the models cheap; the architecture is the same at any width. Each goes only to the models
# that read it: build_model refuses a model-specific key that a model would ignore (Segmentor.reads).
NARROW_HEADS = {"MODEL.HEAD_CHANNELS": "64", "MODEL.AUX_CHANNELS": "32", "MODEL.ASPP_CHANNELS": "32"}


@functools.lru_cache(maxsize=None)
def keys_read_by(model: str) -> frozenset[str]:
    """The model-specific keys `model` reads in its default form, from one build on the meta device (shapes only,
    once per model and worker). Keys a non-default form adds (DEEPLAB_STYLE mmseg: AUX_CHANNELS) are not in it."""
    from segkit.config import load_cfg
    from segkit.models import build_model

    with torch.device("meta"):
        return build_model(load_cfg(None, ["MODEL.NAME", model])).reads


@pytest.fixture
def seg_cfg(tiny_backbone_name):
    """seg_cfg(model, backbone=None, output_stride=None, *opts): a segmentation config with narrow heads.

    The narrow heads go to the models that read them, the tiny zoo backbone (when `backbone` is None) to those
    that stand on a zoo backbone; a `backbone` or `output_stride` given goes to every model, so one given to a
    model that ignores it is refused."""
    from segkit.config import load_cfg
    from segkit.models.segmentors.base import ZOO_BACKBONE_KEYS

    def make(model: str, backbone: str | None = None, output_stride: int | None = None, *opts: str):
        reads = keys_read_by(model)
        chosen = {key: value for key, value in NARROW_HEADS.items() if key in reads}
        if backbone is None and ZOO_BACKBONE_KEYS <= reads:  # not BiSeNetV2, which takes only its own name
            backbone = tiny_backbone_name
        if backbone is not None:
            chosen["MODEL.BACKBONE.NAME"] = backbone
        if output_stride is not None:
            chosen["MODEL.BACKBONE.OUTPUT_STRIDE"] = str(output_stride)
        return load_cfg(None, ["MODEL.NAME", model, *(x for item in chosen.items() for x in item), *opts])

    return make
