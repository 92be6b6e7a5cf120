import os

import pytest
import torch
from torch import nn

from segkit.utils.checkpoint import (
    extract_model_state,
    find_last_checkpoint,
    load_checkpoint,
    load_weights,
    save_checkpoint,
)


class Net(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.backbone = nn.Conv2d(3, width, 3)
        self.head = nn.Conv2d(width, 2, 1)


def test_save_is_atomic_and_last_checkpoint_is_tracked(tmp_path):
    out = tmp_path / "run"
    save_checkpoint(str(out / "model_0000010.pth"), {"model": Net().state_dict(), "iteration": 10})
    save_checkpoint(str(out / "model_0000020.pth"), {"model": Net().state_dict(), "iteration": 20})
    assert find_last_checkpoint(str(out)).endswith("model_0000020.pth")
    assert not [f for f in os.listdir(out) if ".tmp" in f]
    assert load_checkpoint(find_last_checkpoint(str(out)))["iteration"] == 20
    # Without the marker the newest numbered file is found.
    os.remove(out / "last_checkpoint")
    assert find_last_checkpoint(str(out)).endswith("model_0000020.pth")
    assert find_last_checkpoint(str(tmp_path / "empty")) is None


def test_load_refuses_pickled_objects_and_names_missing_files(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"obj": Net()}, path)  # a whole module: not loadable with weights_only=True
    with pytest.raises(RuntimeError, match="evil.pth"):
        load_checkpoint(str(path))
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_checkpoint(str(tmp_path / "nope.pth"))


def test_ddp_prefix_is_stripped():
    state = {"module.a": torch.zeros(1), "module.b": torch.ones(1)}
    assert sorted(extract_model_state({"model": state})) == ["a", "b"]


def test_checkpoint_of_another_model_is_an_error_naming_file_and_keys(tmp_path):
    path = str(tmp_path / "wide.pth")
    torch.save(Net(width=8).state_dict(), path)
    with pytest.raises(ValueError, match=r"(?s)wide\.pth does not fit.*backbone\.weight"):
        load_weights(Net(width=4), path)
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ValueError, match="no key in common"):
        load_weights(Net(), path)


def test_submodule_part_of_a_bigger_checkpoint(tmp_path):
    src = Net()
    path = str(tmp_path / "full.pth")
    save_checkpoint(path, {"model": src.state_dict(), "iteration": 1})
    target = nn.Conv2d(3, 4, 3)
    missing, unexpected = load_weights(target, path, submodule="backbone")
    assert missing == [] and unexpected == []
    assert torch.equal(target.weight, src.backbone.weight)
