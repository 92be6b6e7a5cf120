import os
import shutil

import cv2
import numpy as np
import pytest
import torch

from segkit.config import load_cfg
from segkit.data.cityscapes import PALETTE
from segkit.data.seg_transforms import normalise, normalise_luts
from segkit.evaluation import inference
from segkit.models import build_model
from tests.evaluation.test_prediction_files import make_cityscapes
from tools.predict import main

MEAN, STD = [0.3, 0.4, 0.5], [0.2, 0.25, 0.3]  # not the defaults: the tool must take the config's


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("predicttool")
    root = tmp / "cityscapes"
    make_cityscapes(str(root), n=2, size=(48, 64))
    shutil.copytree(root / "leftImg8bit" / "val", root / "leftImg8bit" / "test")  # images only, as on the benchmark
    cfg_file = tmp / "cfg.yaml"
    cfg_file.write_text(
        f"OUTPUT_DIR: {tmp / 'out'}\nMODEL:\n  NAME: bisenetv1\n  NUM_CLASSES: 19\nDATASET:\n  ROOT: {root}\n"
        f"DATALOADER:\n  NUM_WORKERS: 0\nINPUT:\n  MEAN: {MEAN}\n  STD: {STD}\n"
        "TEST:\n  CROP_SIZE: [32, 32]\n  BATCH_SIZE: 4\n"
    )
    cfg = load_cfg(str(cfg_file))
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    weights = tmp / "weights.pth"
    torch.save(model.state_dict(), weights)
    images = tmp / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name, (h, w) in {"wide": (70, 90), "square": (64, 64)}.items():
        assert cv2.imwrite(str(images / f"{name}.{'jpg' if h == 64 else 'png'}"),
                           rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    (images / "notes.txt").write_text("not an image: skipped")
    return tmp, cfg_file, model, weights, images


def run(cfg_file, weights, *extra):
    return main(["--config-file", str(cfg_file), "--weights", str(weights), *extra])


def test_folder_of_images_without_dataset_files(setup):
    tmp, cfg_file, model, weights, images = setup
    out = tmp / "pred_folder"
    # The dataset's files are not needed: classes and palette come from DATASET.NAME alone.
    assert run(cfg_file, weights, "--input", str(images), "--out", str(out), "DATASET.ROOT", str(tmp / "absent")) == 0
    for stem, size in (("wide", (70, 90)), ("square", (64, 64))):
        color = cv2.imread(str(out / "color" / f"{stem}_color.png"))
        overlay = cv2.imread(str(out / "overlay" / f"{stem}_overlay.png"))
        ids = cv2.imread(str(out / "trainIds" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        assert color.shape == overlay.shape == (*size, 3) and ids.shape == size
        # Same labels as the library on the image normalised with the config's INPUT.MEAN / STD.
        src = cv2.imread(str(next(images.glob(f"{stem}.*"))))
        x = torch.from_numpy(normalise(src, normalise_luts(MEAN, STD)))
        expected = inference(model, x, return_probs=False).numpy()
        np.testing.assert_array_equal(ids, expected)
        # Painted with the Cityscapes palette (written as BGR).
        np.testing.assert_array_equal(color[..., ::-1], np.asarray(PALETTE, dtype=np.uint8)[ids])
    assert sorted(os.listdir(out / "color")) == ["square_color.png", "wide_color.png"]


def test_single_image_with_slide_and_flip_on_a_folder_dataset(setup):
    tmp, cfg_file, _, weights, images = setup
    out = tmp / "pred_one"
    names = str([f"c{i}" for i in range(19)]).replace(" ", "")
    assert run(cfg_file, weights, "--input", str(images / "wide.png"), "--out", str(out), "--slide", "--flip",
               "DATASET.NAME", "folder", "DATASET.ROOT", str(tmp / "absent"), "DATASET.CLASS_NAMES", names) == 0
    assert os.listdir(out / "color") == ["wide_color.png"] and os.listdir(out / "overlay") == ["wide_overlay.png"]
    assert cv2.imread(str(out / "color" / "wide_color.png")).shape == (70, 90, 3)


def test_split_predictions_through_the_dataset(setup):
    tmp, cfg_file, _, weights, _ = setup
    out = tmp / "pred_test"
    assert run(cfg_file, weights, "--split", "test", "--out", str(out)) == 0
    labels = sorted(os.listdir(out / "labelIds"))
    assert labels == ["aachen_000000_000019_leftImg8bit.png", "bremen_000001_000019_leftImg8bit.png"]
    assert len(os.listdir(out / "color")) == 2 and len(os.listdir(out / "overlay")) == 2
    assert cv2.imread(str(out / "labelIds" / labels[0]), cv2.IMREAD_UNCHANGED).shape == (48, 64)


def test_split_of_a_demo_config_generates_its_set_first(setup):
    tmp, cfg_file, _, weights, _ = setup
    root, out = tmp / "demo", tmp / "pred_demo"
    assert run(cfg_file, weights, "--split", "val", "--out", str(out), "DATASET.ROOT", str(root),
               "DATASET.GENERATE_DEMO", "True", "DATASET.DEMO_SIZE", "[32, 64]", "DATASET.DEMO_NUM_TRAIN", "1",
               "DATASET.DEMO_NUM_VAL", "1") == 0
    assert len(os.listdir(out / "labelIds")) == 1 and (root / "gtFine" / "val").is_dir()


def test_missing_and_unreadable_inputs_are_named(setup, capsys):
    tmp, cfg_file, _, weights, _ = setup
    missing = tmp / "nowhere" / "x.png"
    assert run(cfg_file, weights, "--input", str(missing)) == 1
    assert str(missing) in capsys.readouterr().err
    garbage = tmp / "garbage.png"
    garbage.write_bytes(b"this is no png")
    assert run(cfg_file, weights, "--input", str(garbage)) == 1
    assert str(garbage) in capsys.readouterr().err
    # A valid signature with the data cut off: only decoding finds out.
    truncated = tmp / "truncated.png"
    ok, png = cv2.imencode(".png", np.zeros((16, 16, 3), np.uint8))
    truncated.write_bytes(png.tobytes()[:40])
    assert run(cfg_file, weights, "--input", str(truncated)) == 1
    assert f"skipping unreadable image {truncated}" in capsys.readouterr().out


def test_a_folder_with_bad_files_predicts_the_rest_and_says_what_it_skipped(setup, capsys):
    tmp, cfg_file, _, weights, images = setup
    folder = tmp / "mixed"
    shutil.copytree(images, folder)  # two good images and notes.txt
    ok, png = cv2.imencode(".png", np.zeros((16, 16, 3), np.uint8))
    (folder / "cut.png").write_bytes(png.tobytes()[:-20])  # signature intact, end missing
    out = tmp / "pred_mixed"
    assert run(cfg_file, weights, "--input", str(folder), "--out", str(out), "--runtime", "torch") == 1
    printed = capsys.readouterr().out
    assert f"skipping {folder / 'notes.txt'}: not an image" in printed
    assert "predicted 2 image(s)" in printed and "1 unreadable image(s) skipped" in printed and "cut.png" in printed
    assert sorted(os.listdir(out / "trainIds")) == ["square.png", "wide.png"]


def test_tool_equals_the_predictor_pixel_for_pixel(setup):
    from segkit import Predictor

    tmp, cfg_file, _, weights, images = setup
    out = tmp / "pred_api"
    assert run(cfg_file, weights, "--input", str(images), "--out", str(out), "--runtime", "torch", "--flip") == 0
    predictor = Predictor.from_config(str(cfg_file), str(weights), runtime="torch", flip=True)
    for stem, ext in (("wide", "png"), ("square", "jpg")):
        written = cv2.imread(str(out / "trainIds" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(written, predictor(cv2.imread(str(images / f"{stem}.{ext}"))))


def test_a_video_gives_an_overlay_video_of_as_many_frames(setup):
    tmp, cfg_file, _, weights, _ = setup
    clip = tmp / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 12.0, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(12):
        writer.write(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    writer.release()
    out = tmp / "pred_video"
    assert run(cfg_file, weights, "--input", str(clip), "--out", str(out), "--runtime", "torch") == 0
    result = cv2.VideoCapture(str(out / "clip_overlay.mp4"))
    assert int(result.get(cv2.CAP_PROP_FRAME_COUNT)) == 12 and result.get(cv2.CAP_PROP_FPS) == 12.0
    assert (int(result.get(cv2.CAP_PROP_FRAME_WIDTH)), int(result.get(cv2.CAP_PROP_FRAME_HEIGHT))) == (64, 48)


def test_images_sharing_a_stem_are_an_error(setup, capsys):
    tmp, cfg_file, _, weights, _ = setup
    folder = tmp / "twins"
    folder.mkdir()
    for ext in ("png", "jpg"):  # both would be written to color/a_color.png
        assert cv2.imwrite(str(folder / f"a.{ext}"), np.zeros((8, 8, 3), np.uint8))
    assert run(cfg_file, weights, "--input", str(folder)) == 1
    err = capsys.readouterr().err
    assert str(folder / "a.png") in err and str(folder / "a.jpg") in err


def test_unwritable_out_fails_before_any_prediction(setup, capsys, monkeypatch):
    from segkit.deploy import Predictor

    tmp, cfg_file, _, weights, images = setup
    monkeypatch.setattr(Predictor, "from_config", lambda *a, **k: pytest.fail("built the model before checking --out"))
    blocker = tmp / "a_file"
    blocker.write_text("a file where a folder is needed")
    assert run(cfg_file, weights, "--input", str(images), "--out", str(blocker)) == 1
    assert capsys.readouterr().err.strip() == f"error: --out {blocker} is a file, not a folder"
    assert run(cfg_file, weights, "--input", str(tmp / "absent"), "--out", str(tmp / "p")) == 1
    assert capsys.readouterr().err.strip() == f"error: --input not found: {tmp / 'absent'}"


def test_an_export_that_disagrees_is_one_line(setup, capsys, monkeypatch, tmp_path):
    import segkit.deploy.fastpath as fastpath
    from segkit.deploy import ParityError

    tmp, cfg_file, *_ = setup

    def disagree(*args, **kwargs):
        raise ParityError("the export of BiSeNetV1 disagrees at 1x3x96x160")

    monkeypatch.setattr(fastpath, "_exported_runtime", disagree)
    assert main(["--config-file", str(cfg_file), "--weights", str(tmp / "weights.pth"), "--input", str(tmp / "images"),
                 "--out", str(tmp_path / "preds"), "--runtime", "onnx"]) == 1
    assert capsys.readouterr().err == "error: the export of BiSeNetV1 disagrees at 1x3x96x160\n"
