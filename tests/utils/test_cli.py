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
