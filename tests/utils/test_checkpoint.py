import glob
import os

import pytest
import torch
from torch import nn

import segkit
from segkit.utils.checkpoint import (
    TRAINING_ONLY_KEYS,
    CheckpointError,
    checkpoint_candidates,
    extract_model_state,
    find_last_checkpoint,
    load_checkpoint,
    load_newest_readable,
    load_weights,
    prune_checkpoints,
    remove_stale_temporaries,
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
    assert (out / "last_checkpoint").read_text().strip() == "model_0000020.pth"
    # The marker, not the file names, says which checkpoint is the last one.
    (out / "last_checkpoint").write_text("model_0000010.pth")
    assert find_last_checkpoint(str(out)).endswith("model_0000010.pth")
    # Without the marker the newest numbered file is found.
    os.remove(out / "last_checkpoint")
    assert find_last_checkpoint(str(out)).endswith("model_0000020.pth")
    assert find_last_checkpoint(str(tmp_path / "empty")) is None


def test_load_refuses_pickled_objects_and_names_missing_files(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"obj": Net()}, path)  # a whole module: not loadable with weights_only=True
    with pytest.raises(CheckpointError, match="evil.pth holds objects other than tensors"):
        load_checkpoint(str(path))
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_checkpoint(str(tmp_path / "nope.pth"))
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07")
    with pytest.raises(CheckpointError, match=r"model.onnx is an ONNX file.*tools/evaluate.py takes it with --onnx"):
        load_checkpoint(str(tmp_path / "model.onnx"))


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


def _sha(path) -> str:
    import hashlib

    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_truncated_file_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "model_0000010.pth"
    save_checkpoint(str(path), {"model": Net().state_dict(), "iteration": 10})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model_0000010\.pth is truncated or corrupt") as info:
        load_checkpoint(str(path))
    assert "\n" not in str(info.value)


def test_resume_falls_back_to_the_newest_readable_checkpoint(tmp_path):
    out = str(tmp_path)
    for it in (10, 20, 30):
        save_checkpoint(os.path.join(out, f"model_{it:07d}.pth"), {"model": Net().state_dict(), "iteration": it})
    newest = os.path.join(out, "model_0000030.pth")
    with open(newest, "r+b") as f:
        f.truncate(100)  # killed mid-copy
    stale = os.path.join(out, "model_0000040.pth.tmp.999999999")  # a writer that died
    open(stale, "wb").write(b"partial")
    kept = {p: _sha(os.path.join(out, p)) for p in ("model_0000010.pth", "model_0000020.pth", "model_0000030.pth")}
    warnings = []
    path, ckpt = load_newest_readable(out, warnings.append)
    assert path.endswith("model_0000020.pth") and ckpt["iteration"] == 20
    assert any("model_0000030.pth is truncated" in w for w in warnings)
    assert any("model_0000040.pth.tmp.999999999" in w for w in warnings) and not os.path.exists(stale)
    assert {p: _sha(os.path.join(out, p)) for p in kept} == kept  # nothing written was changed
    assert load_newest_readable(str(tmp_path / "none"), warnings.append) is None


def test_temporaries_of_a_live_writer_are_kept(tmp_path):
    live = tmp_path / f"model_0000010.pth.tmp.{os.getpid()}"
    live.write_bytes(b"x")
    assert remove_stale_temporaries(str(tmp_path)) == [] and live.exists()


def test_prune_keeps_the_newest_periodic_final_and_best(tmp_path):
    out = str(tmp_path)
    for it in (10, 20, 30, 40):
        save_checkpoint(os.path.join(out, f"model_{it:07d}.pth"), {"iteration": it})
    for name in ("model_best.pth", "model_final.pth"):
        torch.save({}, os.path.join(out, name))
    removed = prune_checkpoints(out, keep=2)
    assert sorted(os.path.basename(p) for p in removed) == ["model_0000010.pth", "model_0000020.pth"]
    assert sorted(os.listdir(out)) == ["last_checkpoint", "model_0000030.pth", "model_0000040.pth",
                                       "model_best.pth", "model_final.pth"]
    assert prune_checkpoints(out, keep=0) == []


def test_backbone_weights_of_another_depth_are_an_error_unless_partial(tmp_path):
    class Deeper(Net):
        def __init__(self):
            super().__init__()
            self.extra = nn.Conv2d(4, 4, 1)

    path = str(tmp_path / "deeper.pth")
    torch.save(Deeper().state_dict(), path)
    with pytest.raises(CheckpointError, match=r"deeper\.pth does not match the model: 0 missing keys \[\], 2 unexpected keys \['extra"):
        load_weights(Net(), path)
    missing, unexpected = load_weights(Net(), path, strict=False)
    assert missing == [] and unexpected == ["extra.weight", "extra.bias"]


def test_a_state_dict_read_elsewhere_loads_and_named_keys_may_keep_their_init():
    source, target = Net(), Net()
    state = {**source.state_dict(), "head.weight": torch.zeros(5, 4, 1, 1), "head.bias": torch.zeros(5)}
    with pytest.raises(CheckpointError, match=r"zoo:x does not fit the model; first mismatching keys:\n  head.weight"):
        load_weights(target, state, name="zoo:x")
    init = target.head.weight.clone()
    missing, unexpected = load_weights(target, state, name="zoo:x", reinit=["head.weight", "head.bias"])
    assert missing == ["head.weight", "head.bias"] and unexpected == []  # strict, all the same
    assert torch.equal(target.head.weight, init) and torch.equal(target.backbone.weight, source.backbone.weight)


def test_every_training_only_key_is_one_a_trainer_writes():
    # A stale name (an entry no trainer writes any more) would silently drop a user's entry of that name.
    package = os.path.dirname(segkit.__file__)
    writers = glob.glob(os.path.join(package, "engine", "*.py")) + [os.path.join(package, "pretrain", "trainer.py")]
    source = "".join(open(p, encoding="utf-8").read() for p in writers)
    assert [k for k in TRAINING_ONLY_KEYS if f'"{k}":' not in source] == []


def test_candidates_are_the_marker_then_final_then_periodic_newest_first(tmp_path):
    out = str(tmp_path)
    for it in (5, 40, 300):
        save_checkpoint(os.path.join(out, f"model_{it:07d}.pth"), {"iteration": it})
    (tmp_path / "last_checkpoint").write_text("model_0000040.pth")
    for name in ("model_best.pth", "model_final.pth"):
        torch.save({}, os.path.join(out, name))
    names = [os.path.basename(p) for p in checkpoint_candidates(out)]
    assert names == ["model_0000040.pth", "model_final.pth", "model_0000300.pth", "model_0000005.pth"]
    os.remove(tmp_path / "last_checkpoint")
    assert os.path.basename(find_last_checkpoint(out)) == "model_final.pth"  # model_best.pth is never the newest
