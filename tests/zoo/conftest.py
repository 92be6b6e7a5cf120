"""A zoo of one tiny entry for the tests: a config in a temporary configs/ folder, a throwaway official format
("fake": the segkit keys under 'net.', wrapped in {'state_dict', 'meta'}) and a temporary segkit cache.

The fake format stands in for the format modules (segkit.zoo.formats), so these tests check the zoo's own
plumbing whether or not the real records are there; tests of the real formats use segkit.zoo.formats itself.
"""
import logging
import os
from dataclasses import dataclass

import pytest
import torch

from segkit.config import load_cfg
from segkit.models import build_model
from segkit.zoo import ENTRIES, ZooEntry, cached_path, formats
from segkit.zoo.formats import FormatError, OfficialFormat
from segkit.zoo.runconfig import CONFIGS_DIR
from tests.evaluation.test_prediction_files import make_cityscapes

NAME = "tinyseg_cityscapes"


@dataclass
class Detection:
    format: OfficialFormat
    num_classes: int


def _fake_convert(state):
    return {k[len("net."):]: v for k, v in state.items()}


FAKE = OfficialFormat(name="fake", source="tests (a throwaway format)", variant="tinyseg", config="tiny.yaml",
                      manifest="", convert=_fake_convert)


def fake_detect(state):
    misfits = [k for k in state if not k.startswith("net.")]
    if misfits or not state:
        raise FormatError(f"no official format fits: keys {misfits[:4]} fit no manifest")
    return Detection(FAKE, state["net.head.classifier.weight"].shape[0])


def official_file(state, path):
    """`state` (segkit keys) saved as the fake official format."""
    torch.save({"state_dict": {f"net.{k}": v for k, v in state.items()}, "meta": {"epoch": 3}}, path)
    return path


@pytest.fixture
def segkit_log(caplog):
    """The text segkit logs during the test (its logger may not propagate once a tool has set it up)."""
    logger = logging.getLogger("segkit")
    logger.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.INFO)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.setLevel(old)


@pytest.fixture
def zoo(tmp_path, monkeypatch, tiny_backbone_name):
    """(entry, cfg, model): the tiny entry, its config and a seeded model whose weights its cached file holds."""
    root = tmp_path / "cityscapes"
    make_cityscapes(str(root), n=2, size=(48, 64))
    configs = tmp_path / "configs"
    configs.mkdir()
    for folder in os.listdir(CONFIGS_DIR):  # the real entries' configs stay reachable
        os.symlink(os.path.join(CONFIGS_DIR, folder), configs / folder)
    (configs / "tiny.yaml").write_text(
        f"OUTPUT_DIR: {tmp_path / 'out'}\nMODEL:\n  NAME: bisenetv1\n  NUM_CLASSES: 19\n"
        f"  BACKBONE:\n    NAME: {tiny_backbone_name}\nDATASET:\n  ROOT: {root}\nDATALOADER:\n  NUM_WORKERS: 0\n"
        "TEST:\n  BATCH_SIZE: 2\n")
    monkeypatch.setattr("segkit.zoo.runconfig.CONFIGS_DIR", str(configs))
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path / "cache"))
    for attr, value in (("FORMATS", {"fake:tinyseg": FAKE}), ("unwrap", lambda obj: obj.get("state_dict", obj)),
                        ("detect_format", fake_detect), ("convert_official", lambda s, d: d.format.convert(s))):
        monkeypatch.setattr(formats, attr, value, raising=False)
    entry = ZooEntry(name=NAME, config="tiny.yaml", format="fake:tinyseg", url="https://example.org/page",
                     direct=False, filename="tiny_official.pth", miou=None, protocol="whole image",
                     licence="MIT (tests)", page="https://example.org")
    monkeypatch.setitem(ENTRIES, NAME, entry)
    cfg = load_cfg(str(configs / "tiny.yaml"))
    model = build_model(cfg).eval()
    with torch.no_grad():  # BN statistics away from 0/1, so a missed buffer would show
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    (tmp_path / "cache" / "zoo" / NAME).mkdir(parents=True)
    official_file(model.state_dict(), cached_path(entry))
    return entry, cfg, model
