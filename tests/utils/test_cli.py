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


def test_scales_without_numbers_is_an_error(capsys):
    from segkit.utils.cli import parse_tool_args

    with pytest.raises(SystemExit):
        parse_tool_args(_parser(), ["--config-file", "c.yaml", "--scales", "OUTPUT_DIR", "x"])
    assert "--scales needs at least one number" in capsys.readouterr().err


def test_a_deliberate_exit_keeps_its_code_and_logs_no_traceback(tmp_path):
    from segkit.utils.logger import setup_logger

    setup_logger(str(tmp_path))

    def preempted():
        raise SystemExit(75)  # what a training run stopped by a signal raises (segkit.engine.Preempted)

    with pytest.raises(SystemExit) as stop:
        run_tool(preempted)
    assert stop.value.code == 75
    assert "Traceback" not in (tmp_path / "log.txt").read_text()
