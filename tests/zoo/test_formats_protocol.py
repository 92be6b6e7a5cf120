"""Each official evaluation protocol is what its named config runs: normalisation, scale, flip, last resize."""
from __future__ import annotations

import pytest

from segkit.config import load_cfg
from segkit.models.segmentors.base import output_align_corners
from segkit.zoo.formats import PROTOCOLS

ENTRIES = ["bisenetv1_cityscapes", "bisenetv2_cityscapes", "pidnet_s_cityscapes", "pidnet_m_cityscapes",
           "pidnet_l_cityscapes", "pidnet_s_camvid", "pidnet_m_camvid", "ddrnet_23_slim_cityscapes",
           "ddrnet_23_cityscapes", "stdc1_seg50_cityscapes", "stdc1_seg75_cityscapes", "stdc2_seg50_cityscapes",
           "stdc2_seg75_cityscapes"]


def test_every_entry_of_the_issue_has_a_protocol():
    assert set(ENTRIES) <= set(PROTOCOLS)


@pytest.mark.parametrize("entry", ENTRIES)
def test_config_runs_the_protocol(entry):
    protocol = PROTOCOLS[entry]
    cfg = load_cfg(f"configs/{protocol.config}")
    assert tuple(cfg.INPUT.MEAN) == pytest.approx(protocol.mean)
    assert tuple(cfg.INPUT.STD) == pytest.approx(protocol.std)
    assert cfg.TEST.SCALE == protocol.scale and cfg.TEST.FLIP == protocol.flip
    assert not cfg.TEST.MSC and not cfg.TEST.SLIDE
    assert output_align_corners(cfg) == protocol.output_align_corners
