import subprocess
import sys

import pytest

from segkit.config import ConfigError
from segkit.utils.cli import run_tool


def test_user_errors_become_one_line_and_exit_code_1(capsys):
    def bad():
        raise ConfigError("unknown config key 'SOLVER.NOPE'")

    assert run_tool(bad) == 1
    assert capsys.readouterr().err.strip() == "error: unknown config key 'SOLVER.NOPE'"

    def missing():
        raise KeyError("unknown backbone 'resnet19'")

    assert run_tool(missing) == 1
    assert capsys.readouterr().err.strip() == "error: unknown backbone 'resnet19'"


def test_success_and_bugs():
    assert run_tool(lambda: None) == 0
    with pytest.raises(ZeroDivisionError):
        run_tool(lambda: 1 / 0)


def test_traceback_switch(monkeypatch):
    monkeypatch.setenv("SEGKIT_TRACEBACK", "1")
    with pytest.raises(ValueError):
        run_tool(lambda: (_ for _ in ()).throw(ValueError("x")))


def test_run_ending_errors_reach_log_txt(tmp_path, capsys):
    from segkit.utils.logger import setup_logger

    setup_logger(str(tmp_path))

    def bad():
        raise ValueError(f"{tmp_path}/x.png is truncated")

    assert run_tool(bad) == 1
    with pytest.raises(ZeroDivisionError):
        run_tool(lambda: 1 / 0)
    log = (tmp_path / "log.txt").read_text()
    assert "error: " + f"{tmp_path}/x.png is truncated" in log
    assert "run ended by an unexpected error" in log and "ZeroDivisionError" in log
    assert "error:" not in capsys.readouterr().out  # the console gets the line once, on stderr


def test_exit_code_of_a_checker_passes_through():
    assert run_tool(lambda: 3) == 3


def _parser():
    import argparse

    from segkit.utils.cli import add_config_args, add_inference_args

    p = argparse.ArgumentParser()
    add_config_args(p)
    add_inference_args(p)
    p.add_argument("--weights")
    return p


@pytest.mark.parametrize("argv", [
    ["--config-file", "c.yaml", "OUTPUT_DIR", "x", "--flip", "--scales", "0.5", "1", "TEST.BATCH_SIZE", "2"],
    ["--scales", "0.5", "1.0", "--config-file", "c.yaml", "--flip", "OUTPUT_DIR", "x", "TEST.BATCH_SIZE", "2"],
    ["OUTPUT_DIR", "x", "--config-file", "c.yaml", "TEST.BATCH_SIZE", "2", "--flip", "--scales", "0.5", "1.0"],
])
def test_flags_and_overrides_in_any_order(argv):
    from segkit.utils.cli import parse_tool_args

    args = parse_tool_args(_parser(), argv)
    assert args.opts == ["OUTPUT_DIR", "x", "TEST.BATCH_SIZE", "2"]
    assert args.flip is True and args.scales == [0.5, 1.0] and args.config_file == "c.yaml"


def test_every_tool_with_overrides_parses_them_in_any_order():
    """A tool that takes KEY VALUE overrides parses them with parse_tool_args (README: flags and overrides in any
    order, in every tool); argparse's REMAINDER would swallow every flag after the first override."""
    import glob
    import os

    tools = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "tools")
    for path in sorted(glob.glob(os.path.join(tools, "*.py"))):
        source = open(path, encoding="utf-8").read()
        if "add_config_args" in source or '"opts"' in source:
            assert "parse_tool_args" in source and "REMAINDER" not in source, os.path.basename(path)


def test_scales_without_numbers_is_an_error(capsys):
    from segkit.utils.cli import parse_tool_args

    with pytest.raises(SystemExit):
        parse_tool_args(_parser(), ["--config-file", "c.yaml", "--scales", "OUTPUT_DIR", "x"])
    assert "--scales needs at least one number" in capsys.readouterr().err


def test_a_mistyped_scale_is_named(capsys):
    from segkit.utils.cli import parse_tool_args

    with pytest.raises(SystemExit):
        parse_tool_args(_parser(), ["--config-file", "c.yaml", "--scales", "0.5", "abc", "OUTPUT_DIR", "x"])
    assert "'abc' is not one" in capsys.readouterr().err


# A real loader worker, in a process of its own: a DataLoader's worker processes inside a pytest-xdist worker
# crashed that worker in CI (forked and spawned alike), and a crash there loses the test's output.
LOADER_ERROR_SCRIPT = """
import torch
from segkit.utils.cli import run_tool

class BadFile(torch.utils.data.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        raise ValueError(f"cannot decode image file /data/img_{index}.jpg")

raise SystemExit(run_tool(lambda: next(iter(torch.utils.data.DataLoader(BadFile(), num_workers=1)))))
"""


def test_an_error_of_a_loader_worker_is_its_own_line():
    # torch re-raises it in the main process with the worker's traceback as the message.
    proc = subprocess.run([sys.executable, "-c", LOADER_ERROR_SCRIPT], capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip() == "error: cannot decode image file /data/img_0.jpg"


def test_threads_with_a_pytorch_runtime_is_refused_not_ignored(capsys):
    from tools.evaluate import parse_args as evaluate_args
    from tools.predict import parse_args as predict_args

    with pytest.raises(SystemExit):
        evaluate_args(["--config-file", "c.yaml", "--weights", "w.pth", "--runtime", "torch", "--threads", "2"])
    assert "--threads sets onnxruntime's threads; --runtime torch runs PyTorch" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        predict_args(["--config-file", "c.yaml", "--weights", "w.pth", "--input", "x", "--runtime", "fused",
                      "--threads", "1"])
    assert "--runtime fused runs PyTorch" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # evaluate.py's default runtime is torch
        evaluate_args(["--config-file", "c.yaml", "--weights", "w.pth", "--threads", "2"])
    assert "--runtime torch runs PyTorch" in capsys.readouterr().err
    assert evaluate_args(["--config-file", "c.yaml", "--weights", "w.pth", "--runtime", "auto", "--threads", "2"]
                         ).threads == 2


def test_int8_ops_are_one_comma_list_and_need_an_int8_precision(capsys):
    from tools.evaluate import parse_args as evaluate_args
    from tools.predict import parse_args as predict_args

    base = ["--config-file", "c.yaml", "--weights", "w.pth"]
    args = evaluate_args([*base, "--runtime", "openvino", "--precision", "int8+bf16", "--int8-ops", "Conv,MatMul",
                          "DATASET.ROOT", "/data"])
    assert args.int8_ops == ["Conv", "MatMul"] and args.opts == ["DATASET.ROOT", "/data"]
    with pytest.raises(SystemExit):
        predict_args([*base, "--input", "x", "--precision", "bf16", "--int8-ops", "Conv"])
    assert "--int8-ops chooses what --precision int8 or int8+bf16 quantizes; --precision bf16" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        evaluate_args([*base, "--precision", "int8", "--int8-ops", "Conv,DATASET.ROOT"])
    assert "not ONNX operator types: 'DATASET.ROOT'" in capsys.readouterr().err


def test_a_deliberate_exit_keeps_its_code_and_logs_no_traceback(tmp_path):
    from segkit.utils.logger import setup_logger

    setup_logger(str(tmp_path))

    def preempted():
        raise SystemExit(75)  # what a training run stopped by a signal raises (segkit.engine.Preempted)

    with pytest.raises(SystemExit) as stop:
        run_tool(preempted)
    assert stop.value.code == 75
    assert "Traceback" not in (tmp_path / "log.txt").read_text()


def test_split_choice_names_the_config_split():
    from segkit.config import get_cfg
    from segkit.utils.cli import SPLIT_KEYS, dataset_split

    cfg = get_cfg()
    cfg.DATASET.VAL_SPLIT, cfg.DATASET.TEST_SPLIT = "validation", "benchmark"
    assert tuple(SPLIT_KEYS) == ("val", "test")
    assert (dataset_split(cfg, "val"), dataset_split(cfg, "test")) == ("validation", "benchmark")


def test_calib_images_default_is_the_one_given():
    import argparse

    from segkit.utils.cli import add_runtime_args

    parser = argparse.ArgumentParser()
    add_runtime_args(parser, ("torch", "onnx"), ("fp32", "int8"), 7)
    assert parser.parse_args([]).calib_images == 7 and parser.parse_args(["--calib-images", "3"]).calib_images == 3
