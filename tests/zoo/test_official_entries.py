"""Each zoo entry against its official format: a state_dict built from the format's manifest (segkit/zoo/manifests,
facts of the official model) is detected as the entry's format and converts to exactly the keys and shapes of
the entry's segkit model (on the meta device: no memory); one entry runs end to end from a file in the cache as
`--weights zoo:NAME` and through `tools/zoo.py convert`. Skipped, naming the record, where the format modules
(segkit.zoo.formats) do not define the entry's format."""
import json
import os

import pytest
import torch

from segkit.models import build_model
from segkit.utils.checkpoint import load_checkpoint
from segkit.zoo import ENTRIES, cached_path, entry_cfg, formats, load_model_for_inference
from segkit.zoo.weights import format_record
from tools import zoo as zoo_tool

MANIFESTS = os.path.join(os.path.dirname(formats.__file__), os.pardir, "manifests")


def official_state(entry, num_classes, device="meta"):
    """Every manifest key at its shape (the class dimension at `num_classes`): random class layers, zeros else."""
    try:
        record = format_record(entry)
    except (KeyError, formats.FormatError) as e:
        pytest.skip(f"no official format record for {entry.format} yet: {e}")
    with open(os.path.join(MANIFESTS, record.manifest), encoding="utf-8") as f:
        manifest = json.load(f)
    class_keys = set(manifest.get("class_dim_keys", []))
    state = {}
    for key, shape in manifest["keys"].items():
        shape = [num_classes, *shape[1:]] if key in class_keys else shape
        state[key] = (torch.randn if key in class_keys else torch.zeros)(shape, device=device)
    return record, state


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_entry_format_converts_to_its_model(name):
    entry = ENTRIES[name]
    cfg = entry_cfg(entry)
    record, state = official_state(entry, cfg.MODEL.NUM_CLASSES)
    detection = formats.detect_format(state)
    assert (detection.format, detection.num_classes) == (record, cfg.MODEL.NUM_CLASSES)
    converted = formats.convert_official(state, detection)
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in build_model(cfg).state_dict().items()}
    assert {k: tuple(v.shape) for k, v in converted.items()} == expected


def test_entry_runs_end_to_end_from_an_official_file(tmp_path, monkeypatch):
    name = "pidnet_s_camvid"  # small, and of another class count than the format's Cityscapes config
    entry = ENTRIES[name]
    cfg = entry_cfg(entry)
    record, state = official_state(entry, cfg.MODEL.NUM_CLASSES, device="cpu")
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path))
    os.makedirs(os.path.dirname(cached_path(entry)))
    torch.save(state, cached_path(entry))
    model = load_model_for_inference(cfg, f"zoo:{name}")  # strict: every weight of the model comes from the file
    out = tmp_path / "converted.pth"
    assert zoo_tool.main(["convert", name, "--src", cached_path(entry), "--out", str(out)]) == 0
    converted = load_checkpoint(str(out))["model"]
    assert all(torch.equal(converted[k], v) for k, v in model.state_dict().items())
