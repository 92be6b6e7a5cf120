import math
import os

import pytest
import torch

from segkit.config import load_cfg
from segkit.data import build_train_loader, generate_demo_dataset
from segkit.utils.checkpoint import find_last_checkpoint, load_checkpoint
from segkit.engine.seg_trainer import NonFiniteError, SegTrainer
from segkit.engine import TRAINING_KEYS


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("seg_trainer") / "demo_cityscapes"
    generate_demo_dataset(str(root), (64, 128), num_train=4, num_val=2, seed=0, workers=1)
    return str(root)


def tiny_opts(root: str, out, **overrides) -> list[str]:
    """Overrides for a real BiSeNetV1 run that takes seconds: 64x128 crops, batch 2, no workers."""
    opts = {
        "DATASET.ROOT": root, "OUTPUT_DIR": str(out), "INPUT.CROP_SIZE": "[64, 128]",
        "INPUT.SCALE_RANGE": "[0.75, 1.25]", "SOLVER.IMS_PER_BATCH": 2, "SOLVER.MAX_ITER": 4,
        "SOLVER.WARMUP_ITERS": 1, "SOLVER.CHECKPOINT_PERIOD": 2, "SOLVER.BASE_LR": 0.01,
        "DATALOADER.NUM_WORKERS": 0, "LOG_PERIOD": 1, "TEST.EVAL_PERIOD": 0,
    }
    opts.update(overrides)
    return [str(x) for kv in opts.items() for x in kv]


def record_losses(trainer: SegTrainer, stop_at: int | None = None) -> dict[int, dict[str, float]]:
    """Losses per iteration index; raising KeyboardInterrupt at `stop_at` stands for a killed run."""
    seen: dict[int, dict[str, float]] = {}
    step = trainer.run_step

    def wrapped(batch, it):
        if it == stop_at:
            raise KeyboardInterrupt
        seen[it] = step(batch, it)
        return seen[it]

    trainer.run_step = wrapped
    return seen


def test_a_few_iterations_reduce_the_loss_on_a_fixed_batch(demo_root, tmp_path):
    cfg = load_cfg(None, tiny_opts(demo_root, tmp_path, **{"SOLVER.MAX_ITER": 100, "SOLVER.WARMUP_ITERS": 0}))
    trainer = SegTrainer(cfg)
    batch = next(build_train_loader(cfg))
    losses = [trainer.run_step(batch, i)["loss"] for i in range(8)]
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.7 * losses[0], losses


def test_resumed_run_gives_the_same_losses_and_weights_as_an_uninterrupted_one(demo_root, tmp_path):
    full = SegTrainer(load_cfg(None, tiny_opts(demo_root, tmp_path / "full")))
    full_losses = record_losses(full)
    full.train()

    cfg = load_cfg(None, tiny_opts(demo_root, tmp_path / "cut"))
    killed = SegTrainer(cfg)
    record_losses(killed, stop_at=2)
    with pytest.raises(KeyboardInterrupt):
        killed.train()
    assert find_last_checkpoint(cfg.OUTPUT_DIR).endswith("model_0000002.pth")

    resumed = SegTrainer(cfg, resume=True)
    assert resumed.start_iter == 2
    resumed_losses = record_losses(resumed)
    resumed.train()
    assert sorted(resumed_losses) == [2, 3]
    for it in (2, 3):
        for name, value in full_losses[it].items():
            assert resumed_losses[it][name] == pytest.approx(value, abs=1e-6), (it, name)
    a = load_checkpoint(os.path.join(tmp_path / "full", "model_final.pth"))
    b = load_checkpoint(os.path.join(cfg.OUTPUT_DIR, "model_final.pth"))
    for k, v in a["model"].items():
        assert torch.allclose(v.float(), b["model"][k].float(), atol=1e-6), k
    # The checkpoint is complete and loads under weights_only=True (load_checkpoint); its config reloads.
    assert set(b) == set(TRAINING_KEYS)  # the keys pretraining checkpoints start with too
    assert (b["iteration"], b["kind"], b["model_name"]) == (4, "segmentor", "bisenetv1")
    saved = tmp_path / "saved.yaml"
    saved.write_text(b["config"])
    assert load_cfg(str(saved)) == cfg


def test_resumed_loader_continues_the_stream(demo_root, tmp_path):
    # Augmentation is seeded per stream position (not by a worker's history), so start_iter resumes it.
    # NUM_WORKERS 0: forking a worker after OpenCV threads ran in this process (the demo generation) can hang.
    cfg = load_cfg(None, tiny_opts(demo_root, tmp_path))
    fresh = build_train_loader(cfg)
    batches = [next(fresh) for _ in range(3)]
    resumed = next(build_train_loader(cfg, start_iter=2))
    assert resumed["name"] == batches[2]["name"]
    assert torch.equal(resumed["image"], batches[2]["image"])
    assert torch.equal(resumed["label"], batches[2]["label"])
    assert not torch.equal(batches[1]["image"], batches[2]["image"])


def test_nan_loss_stops_naming_the_iteration_and_keeps_the_last_good_checkpoint(demo_root, tmp_path):
    cfg = load_cfg(None, tiny_opts(demo_root, tmp_path, **{"SOLVER.MAX_ITER": 6}))
    trainer = SegTrainer(cfg)
    criterion, calls = trainer.criterion, []

    def poisoned(outputs, target):
        total, parts = criterion(outputs, target)
        calls.append(1)
        return (total * float("nan") if len(calls) == 3 else total), parts

    trainer.criterion = poisoned
    with pytest.raises(NonFiniteError, match=r"non-finite loss at iteration 3.*model_0000002\.pth"):
        trainer.train()
    last = find_last_checkpoint(cfg.OUTPUT_DIR)
    assert last == os.path.join(cfg.OUTPUT_DIR, "model_0000002.pth")
    state = load_checkpoint(last)
    assert state["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert not os.path.exists(os.path.join(cfg.OUTPUT_DIR, "model_final.pth"))


def test_weights_turned_nan_are_never_written_over_a_good_checkpoint(demo_root, tmp_path):
    cfg = load_cfg(None, tiny_opts(demo_root, tmp_path, **{"SOLVER.MAX_ITER": 6}))
    trainer = SegTrainer(cfg)
    criterion, calls = trainer.criterion, []

    def nan_gradients(outputs, target):
        total, parts = criterion(outputs, target)
        calls.append(1)
        if len(calls) == 4:  # the loss is finite, the step that follows fills the weights with NaN
            total.register_hook(lambda g: g * float("nan"))
        return total, parts

    trainer.criterion = nan_gradients
    with pytest.raises(NonFiniteError, match=r"not finite after iteration 4; not writing model_0000004\.pth"):
        trainer.train()
    assert find_last_checkpoint(cfg.OUTPUT_DIR) == os.path.join(cfg.OUTPUT_DIR, "model_0000002.pth")
    assert not os.path.exists(os.path.join(cfg.OUTPUT_DIR, "model_0000004.pth"))


def test_amp_on_cpu_warns_and_trains_in_float32(demo_root, tmp_path):
    cfg = load_cfg(None, tiny_opts(demo_root, tmp_path, **{"SOLVER.AMP.ENABLED": True}))
    trainer = SegTrainer(cfg)
    assert trainer.amp_dtype is None and not trainer.scaler.is_enabled()
    with open(os.path.join(cfg.OUTPUT_DIR, "log.txt")) as f:
        assert "SOLVER.AMP.ENABLED needs CUDA" in f.read()


def test_median_frequency_class_weights_reach_every_head(demo_root, tmp_path):
    from segkit.data.stats import count_class_pixels, median_frequency_weights

    cfg = load_cfg(None, tiny_opts(demo_root, tmp_path, **{"LOSS.CLASS_WEIGHTING": "median_freq"}))
    trainer = SegTrainer(cfg)
    expected = torch.tensor(median_frequency_weights(count_class_pixels(trainer.train_set)))
    assert (expected > 0).sum() >= 5 and expected.max() > expected.min()  # skewed demo classes
    for loss in (trainer.criterion.main, *trainer.criterion.aux.values()):
        assert torch.allclose(loss.weight, expected)


def test_checkpoint_keep_prunes_older_periodic_checkpoints(demo_root, tmp_path):
    cfg = load_cfg(None, tiny_opts(demo_root, tmp_path, **{"SOLVER.MAX_ITER": 5, "SOLVER.CHECKPOINT_KEEP": 1}))
    trainer = SegTrainer(cfg)
    trainer.evaluate = lambda iteration: {}  # the checkpoints are the point here
    trainer.train()
    assert sorted(f for f in os.listdir(cfg.OUTPUT_DIR) if f.startswith("model_")) == [
        "model_0000004.pth", "model_final.pth"]
    assert find_last_checkpoint(cfg.OUTPUT_DIR).endswith("model_final.pth")


def _checksums(folder) -> dict[str, str]:
    import hashlib

    return {f: hashlib.sha256(open(os.path.join(folder, f), "rb").read()).hexdigest()
            for f in sorted(os.listdir(folder)) if os.path.isfile(os.path.join(folder, f))}


def test_a_second_run_over_a_finished_one_is_refused_and_changes_nothing(demo_root, tmp_path):
    cfg = load_cfg(None, tiny_opts(demo_root, tmp_path, **{"SOLVER.MAX_ITER": 2}))
    trainer = SegTrainer(cfg)
    trainer.evaluate = lambda iteration: {}
    trainer.train()
    before = _checksums(cfg.OUTPUT_DIR)
    assert {"config.yaml", "log.txt", "model_final.pth", "last_checkpoint", "events.jsonl"} <= set(before)
    with pytest.raises(ValueError, match=r"holds a run \(.*model_final\.pth.*\): continue it with --resume, "
                                         r"replace it with --overwrite"):
        SegTrainer(cfg)
    assert _checksums(cfg.OUTPUT_DIR) == before
    SegTrainer(cfg, overwrite=True)  # an explicit replacement starts afresh
    assert not os.path.exists(os.path.join(cfg.OUTPUT_DIR, "model_final.pth"))


def test_one_image_per_process_is_a_config_error_naming_the_batch_and_world_size(demo_root, tmp_path):
    from segkit.config import ConfigError

    cfg = load_cfg(None, tiny_opts(demo_root, tmp_path, **{"SOLVER.IMS_PER_BATCH": 1}))
    with pytest.raises(ConfigError, match=r"SOLVER.IMS_PER_BATCH 1 over a world size of 1 gives 1 image per process.*"
                                          r"bisenetv1.*set SOLVER.IMS_PER_BATCH 2"):
        SegTrainer(cfg)
    # FCN pools nothing: one image per process is fine for it.
    fcn = load_cfg(None, tiny_opts(demo_root, tmp_path / "fcn", **{"SOLVER.IMS_PER_BATCH": 1, "MODEL.NAME": "fcn",
                                                                    "MODEL.BACKBONE.OUTPUT_STRIDE": 32}))
    SegTrainer(fcn)


def test_events_feed_curves_and_tensorboard(demo_root, tmp_path):
    from segkit.utils.events import read_events

    cfg = load_cfg(None, tiny_opts(demo_root, tmp_path, **{"SOLVER.MAX_ITER": 2, "LOG.TENSORBOARD": True,
                                                            "LOG.NUM_VAL_IMAGES": 1}))
    SegTrainer(cfg).train()
    records = read_events(os.path.join(cfg.OUTPUT_DIR, "events.jsonl"))
    assert [r["iteration"] for r in records if "loss_main" in r] == [1, 2]
    assert any("mIoU" in r for r in records) and all("lr" in r for r in records if "loss" in r)
    assert os.path.getsize(os.path.join(cfg.OUTPUT_DIR, "curves.png")) > 1000
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(cfg.OUTPUT_DIR, "tb")))


def test_a_cityscapes_recipe_from_scratch_is_warned_about(demo_root, tmp_path):
    cfg = load_cfg(None, tiny_opts(demo_root, tmp_path))
    SegTrainer(cfg)
    with open(os.path.join(cfg.OUTPUT_DIR, "log.txt")) as f:
        assert "trains FROM SCRATCH" in f.read()


@pytest.mark.parametrize("overrides, message", [
    ({"TEST.SCALE": -0.5}, "TEST.SCALE must be positive, got -0.5"),
    ({"TEST.SLIDE": True, "TEST.STRIDE": "[0, 0]"}, r"TEST.STRIDE must be \(height, width\), integers >= 1, got \[0, 0\]"),
    ({"TEST.BATCH_SIZE": 0}, "TEST.BATCH_SIZE must be >= 1, got 0"),
    ({"TEST.SIZE_DIVISOR": 0}, "TEST.SIZE_DIVISOR must be >= 1, got 0"),
])
def test_a_bad_test_setting_fails_at_construction_not_after_training(overrides, message, tmp_path):
    from segkit.config import ConfigError

    # A data root that does not exist: the mode is checked before the data are even looked at.
    cfg = load_cfg(None, tiny_opts(str(tmp_path / "no_data"), tmp_path / "out", **overrides))
    with pytest.raises(ConfigError, match=message):
        SegTrainer(cfg)
    assert not os.path.exists(os.path.join(cfg.OUTPUT_DIR, "config.yaml"))  # no run left behind


def test_the_trainer_keeps_the_mode_its_evaluations_run(demo_root, tmp_path):
    cfg = load_cfg(None, tiny_opts(demo_root, tmp_path, **{"TEST.SCALE": 0.5, "TEST.FLIP": True}))
    assert SegTrainer(cfg).eval_mode.describe()["scales"] == [0.5]
