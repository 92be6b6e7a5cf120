"""The zoo's records: every entry issue 22 names, each runnable from its config, with its facts in order."""
import os
import re

import pytest

from segkit.zoo import ENTRIES, entry_cfg, get_entry
from segkit.zoo import formats
from segkit.zoo.weights import format_record

REQUIRED = {
    "bisenetv1_cityscapes", "bisenetv2_cityscapes", "pidnet_s_cityscapes", "pidnet_m_cityscapes",
    "pidnet_l_cityscapes", "pidnet_s_camvid", "pidnet_m_camvid", "ddrnet_23_slim_cityscapes", "ddrnet_23_cityscapes",
    "stdc1_seg50_cityscapes", "stdc1_seg75_cityscapes", "stdc2_seg50_cityscapes", "stdc2_seg75_cityscapes",
    "fcn_r50_d8_cityscapes", "pspnet_r50_d8_cityscapes", "deeplabv3plus_r50_d8_cityscapes",
}


def test_every_required_entry_is_there():
    assert REQUIRED <= set(ENTRIES)


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_entry_runs_from_its_config(name):
    entry = ENTRIES[name]
    cfg = entry_cfg(entry)
    assert name.endswith(f"_{cfg.DATASET.NAME}"), "names are <model>_<dataset>"
    assert entry.format.split(":")[1] in (cfg.MODEL.VARIANT, cfg.MODEL.BACKBONE.NAME, cfg.MODEL.NAME,
                                          os.path.basename(entry.config)[:-5])
    assert entry.licence.split(" ")[0] in ("MIT", "Apache-2.0") and entry.page.startswith("https://")
    assert entry.miou is None or 0 < entry.miou < 100


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_download_facts(name):
    entry = ENTRIES[name]
    if entry.direct:
        assert entry.url.startswith("https://") and entry.url.endswith(entry.filename)
    else:
        assert "drive.google.com" in entry.url and entry.sha256 is None
    if "openmmlab" in entry.url:  # the file name carries the first 8 hex digits of its SHA-256
        assert entry.sha256 == re.search(r"-([0-9a-f]{8})\.pth$", entry.filename).group(1)


def test_protocols_follow_the_published_ones():
    for depth in (1, 2):
        assert entry_cfg(ENTRIES[f"stdc{depth}_seg50_cityscapes"]).TEST.SCALE == 0.5
        assert entry_cfg(ENTRIES[f"stdc{depth}_seg75_cityscapes"]).TEST.SCALE == 0.75
    for name in ("pidnet_s_cityscapes", "ddrnet_23_cityscapes", "fcn_r50_d8_cityscapes"):
        cfg = entry_cfg(ENTRIES[name])
        assert (cfg.TEST.SCALE, cfg.TEST.MSC, cfg.TEST.FLIP, cfg.TEST.SLIDE) == (1.0, False, False, False)
    assert list(entry_cfg(ENTRIES["bisenetv1_cityscapes"]).INPUT.MEAN) == [0.3257, 0.3690, 0.3223]
    assert entry_cfg(ENTRIES["pidnet_m_camvid"]).MODEL.VARIANT == "pidnet_m"


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="no zoo entry 'pidnet_xl_cityscapes'; known: bisenetv1_ade20k, bisenetv1_cityscapes"):
        get_entry("pidnet_xl_cityscapes")


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_entry_names_a_defined_format_and_its_protocol(name):
    """Against the format modules (segkit.zoo.formats): skipped while the entry's record is not there."""
    entry = ENTRIES[name]
    try:
        record = format_record(entry)
    except (KeyError, formats.FormatError) as e:
        pytest.skip(f"no official format record for {entry.format} yet: {e}")
    assert record.variant == entry.format.split(":")[1]
    protocol = getattr(formats, "PROTOCOLS", {}).get(name)
    if protocol is not None:  # the format module's account of the official evaluation names the same config
        assert protocol.config == entry.config and not entry.opts
        cfg = entry_cfg(entry)
        assert (list(cfg.INPUT.MEAN), cfg.TEST.SCALE, cfg.TEST.FLIP) == (list(protocol.mean), protocol.scale,
                                                                         protocol.flip)
