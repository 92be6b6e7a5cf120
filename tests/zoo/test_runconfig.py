"""A checkpoint is enough: the config comes from the weights; an explicit config wins and a mismatch is named;
fine-tuning starts from weights of another class count with fresh class layers."""
import pytest
import torch

from segkit.config import ConfigError
from segkit.models import build_model
from segkit.utils.checkpoint import save_state
from segkit.zoo import load_initial_weights, resolve_config
from tests.zoo.conftest import NAME
from tools import evaluate, train_seg


@pytest.fixture
def checkpoint(zoo, tmp_path):
    """A segkit checkpoint of the tiny model carrying its config (as training writes it), and the config."""
    entry, cfg, model = zoo
    path = tmp_path / "model_final.pth"
    save_state(str(path), {"model": model.state_dict(), "config": cfg.dump(), "kind": "segmentor",
                           "model_name": cfg.MODEL.NAME})
    return str(path), cfg


def test_config_comes_from_the_checkpoint_with_overrides(checkpoint):
    path, cfg = checkpoint
    got = resolve_config(None, path, ["TEST.SCALE", "0.5"])
    assert got.MODEL.BACKBONE.NAME == "tiny" and got.DATASET.ROOT == cfg.DATASET.ROOT and got.TEST.SCALE == 0.5


def test_config_comes_from_the_zoo_entry(zoo):
    assert resolve_config(None, f"zoo:{NAME}").MODEL.NUM_CLASSES == 19


def test_explicit_config_wins_and_a_mismatch_is_named(checkpoint, tmp_path, capsys):
    path, cfg = checkpoint
    other = tmp_path / "camvid.yaml"
    other.write_text(cfg.dump().replace("NUM_CLASSES: 19", "NUM_CLASSES: 11").replace("NAME: tiny", "NAME: resnet18"))
    with pytest.raises(ConfigError, match=r"builds another model than .*model_final.pth holds \(its config: the "
                                          r"config saved in .*\): MODEL.BACKBONE.NAME 'resnet18' \(weights: 'tiny'\), "
                                          r"MODEL.NUM_CLASSES 11 \(weights: 19\); drop --config-file"):
        resolve_config(str(other), path)
    assert evaluate.main(["--config-file", str(other), "--weights", path]) == 1
    assert "MODEL.NUM_CLASSES 11 (weights: 19)" in capsys.readouterr().err
    same = tmp_path / "same.yaml"  # the same model with other test settings: the file's values are used
    same.write_text(cfg.dump().replace("BATCH_SIZE: 2", "BATCH_SIZE: 1"))
    assert resolve_config(str(same), path).TEST.BATCH_SIZE == 1


def test_weights_without_config_need_a_config_file(zoo, tmp_path):
    entry, cfg, model = zoo
    bare = tmp_path / "bare.pth"
    torch.save(model.state_dict(), bare)
    with pytest.raises(ConfigError, match="carries no config .*: give --config-file"):
        resolve_config(None, str(bare))
    with pytest.raises(FileNotFoundError, match=f"ONNX file not found: {tmp_path}/model.onnx"):
        resolve_config(None, str(tmp_path / "model.onnx"))


def test_finetune_for_another_class_count_reinitialises_the_class_layers(zoo, segkit_log):
    entry, cfg, model = zoo
    camvid = cfg.clone()
    camvid.defrost()
    camvid.MODEL.NUM_CLASSES, camvid.MODEL.WEIGHTS = 11, f"zoo:{NAME}"
    torch.manual_seed(1)
    fresh = build_model(camvid)
    init = {k: v.clone() for k, v in fresh.state_dict().items()}
    tuned = load_initial_weights(fresh, camvid).state_dict()
    source = model.state_dict()
    class_keys = {k for k in tuned if tuned[k].shape != source[k].shape}
    assert class_keys == {f"{h}.classifier.{p}" for h in ("head", "aux16", "aux32") for p in ("weight", "bias")}
    assert all(torch.equal(tuned[k], init[k]) for k in class_keys)  # their initialisation is kept
    assert all(torch.equal(tuned[k], source[k]) for k in tuned if k not in class_keys)
    assert "has another class count than MODEL.NUM_CLASSES 11: the class layers ['head.classifier.weight'" \
        in segkit_log.text


def test_train_seg_starts_from_zoo_weights(zoo, tmp_path):
    entry, cfg, model = zoo
    args = train_seg.parse_args(["--weights", f"zoo:{NAME}", "OUTPUT_DIR", str(tmp_path / "ft")])
    run = train_seg.run_config(args)
    assert run.MODEL.WEIGHTS == f"zoo:{NAME}" and run.MODEL.BACKBONE.NAME == "tiny"
    other = tmp_path / "eleven.yaml"
    other.write_text(cfg.dump().replace("NUM_CLASSES: 19", "NUM_CLASSES: 11"))
    run = train_seg.run_config(train_seg.parse_args(["--config-file", str(other), "--weights", f"zoo:{NAME}"]))
    assert run.MODEL.NUM_CLASSES == 11  # fine-tuning may change the class count; nothing else
    assert train_seg.main(["--weights", f"zoo:{NAME}", "OUTPUT_DIR", str(tmp_path / "ft"), "SOLVER.MAX_ITER", "1",
                           "SOLVER.IMS_PER_BATCH", "2", "INPUT.CROP_SIZE", "[32, 32]", "TEST.EVAL_PERIOD", "0",
                           "DATASET.TRAIN_SPLIT", "val", "SOLVER.WARMUP_ITERS", "0"]) == 0
    assert (tmp_path / "ft" / "model_final.pth").is_file()


def test_an_onnx_file_carries_its_config_and_its_normalisation_is_checked(zoo, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from segkit.utils.onnx_meta import CONFIG_KEY

    entry, cfg, model = zoo
    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["logits"])], "g",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["n", 3, "h", "w"])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 3, "h", "w"])])
    file = helper.make_model(graph)
    helper.set_model_props(file, {CONFIG_KEY: cfg.dump()})
    path = str(tmp_path / "model.onnx")
    onnx.save(file, path)
    got = resolve_config(None, path, ["TEST.SCALE", "0.5"])
    assert got.MODEL.BACKBONE.NAME == "tiny" and got.INPUT.MEAN == cfg.INPUT.MEAN and got.TEST.SCALE == 0.5
    other = tmp_path / "other.yaml"
    other.write_text(cfg.dump().replace(f"STD:\n  - {cfg.INPUT.STD[0]}", "STD:\n  - 1.0"))
    with pytest.raises(ConfigError, match=r"INPUT.STD \[1.0, .*\] \(weights: \[0.229, .*\]\); drop --config-file"):
        resolve_config(str(other), path)
    bare = tmp_path / "bare.onnx"  # a file from elsewhere: no config
    onnx.save(helper.make_model(graph), str(bare))
    with pytest.raises(ConfigError, match="carries no config"):
        resolve_config(None, str(bare))
