"""Each zoo entry with a file in its official format: a synthetic state_dict built from the format's manifest
(segkit/zoo/manifests, facts of the official model) placed in a temporary cache runs as `--weights zoo:NAME`
(strict load into the entry's model) and through `tools/zoo.py convert`. Skipped, naming the record, where the
format modules (segkit.zoo.formats) do not define the entry's format."""
import json
import os

import pytest
import torch

from segkit.utils.checkpoint import load_checkpoint
from segkit.zoo import ENTRIES, cached_path, entry_cfg, formats, load_model_for_inference
from segkit.zoo.weights import format_record
from tools import zoo as zoo_tool

MANIFESTS = os.path.join(os.path.dirname(formats.__file__), os.pardir, "manifests")


def official_state(entry, num_classes):
    """Zeros of every manifest shape (the class dimension at `num_classes`), random class layers."""
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
        state[key] = torch.randn(shape) if key in class_keys else torch.zeros(shape)
    return state, class_keys


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_entry_runs_from_a_file_in_its_official_format(name, tmp_path, monkeypatch):
    entry = ENTRIES[name]
    cfg = entry_cfg(entry)
    state, class_keys = official_state(entry, cfg.MODEL.NUM_CLASSES)
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path))
    os.makedirs(os.path.dirname(cached_path(entry)))
    torch.save(state, cached_path(entry))
    model = load_model_for_inference(cfg, f"zoo:{name}")  # strict: every weight of the model comes from the file
    out = tmp_path / "converted.pth"
    assert zoo_tool.main(["convert", name, "--src", cached_path(entry), "--out", str(out)]) == 0
    converted = load_checkpoint(str(out))["model"]
    assert all(torch.equal(converted[k], v) for k, v in model.state_dict().items())
