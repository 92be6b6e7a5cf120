import pytest

from segkit.config import ConfigError, add_solver_config, get_cfg, get_cls_cfg, load_cfg, save_cfg


def _write(path, text):
    path.write_text(text)
    return str(path)


def test_one_solver_schema_for_both_pipelines():
    seg, cls = get_cfg().SOLVER, get_cls_cfg().SOLVER
    lengths = {"MAX_ITER", "WARMUP_ITERS", "CHECKPOINT_PERIOD", "EPOCHS", "WARMUP_EPOCHS"}
    assert set(seg) ^ set(cls) == lengths  # the only keys of one pipeline are its lengths
    assert set(seg.AMP) == set(cls.AMP)


def test_add_solver_config_refuses_keys_it_does_not_define():
    from yacs.config import CfgNode

    with pytest.raises(KeyError, match="MAX_ITER"):
        add_solver_config(CfgNode(), MAX_ITER=10)
    assert add_solver_config(CfgNode(), BASE_LR=0.5).SOLVER.BASE_LR == 0.5


def test_base_inheritance_and_override(tmp_path):
    base = _write(tmp_path / "base.yaml", "SOLVER:\n  BASE_LR: 0.05\n  MAX_ITER: 10\n")
    child = _write(tmp_path / "child.yaml", "_BASE_: base.yaml\nSOLVER:\n  MAX_ITER: 20\n")
    cfg = load_cfg(child, ["SOLVER.WARMUP_ITERS", "3", "INPUT.CROP_SIZE", "[64, 128]"])
    assert cfg.SOLVER.BASE_LR == 0.05
    assert cfg.SOLVER.MAX_ITER == 20
    assert cfg.SOLVER.WARMUP_ITERS == 3
    assert list(cfg.INPUT.CROP_SIZE) == [64, 128]
    assert cfg.is_frozen()


def test_unknown_key_in_file_is_an_error_naming_key_and_file(tmp_path):
    bad = _write(tmp_path / "bad.yaml", "SOLVER:\n  BASE_LRR: 0.05\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*SOLVER\.BASE_LRR"):
        load_cfg(bad)


def test_unknown_key_in_base_names_the_base(tmp_path):
    _write(tmp_path / "base.yaml", "MODELL:\n  NAME: x\n")
    child = _write(tmp_path / "child.yaml", "_BASE_: base.yaml\n")
    with pytest.raises(ConfigError, match=r"base\.yaml.*MODELL"):
        load_cfg(child)


def test_unknown_key_on_command_line():
    with pytest.raises(ConfigError, match="SOLVER.NOPE"):
        load_cfg(None, ["SOLVER.NOPE", "1"])


def test_bad_value_type_is_an_error():
    with pytest.raises(ConfigError, match="SOLVER.MAX_ITER"):
        load_cfg(None, ["SOLVER.MAX_ITER", "'many'"])


def test_missing_file_and_odd_overrides(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_cfg(str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="pairs"):
        load_cfg(None, ["SOLVER.MAX_ITER"])


def test_invalid_yaml_is_one_line_naming_file_line_column_and_problem(tmp_path):
    from segkit.config import load_cfg_text

    base = _write(tmp_path / "base.yaml", "MODEL:\n  NAME: [bisenetv1\n  NUM_CLASSES: 19\n")
    child = _write(tmp_path / "child.yaml", "_BASE_: base.yaml\n")
    with pytest.raises(ConfigError) as err:
        load_cfg(child)  # the file at fault is the base, not the one given
    assert str(err.value) == (f"config {base}: not valid YAML at line 3, column 14: expected ',' or ']', but got "
                              "':' (while parsing a flow sequence started at line 2, column 9)")
    tab = _write(tmp_path / "tab.yaml", "SOLVER:\n\tBASE_LR: 0.1\n")
    with pytest.raises(ConfigError, match=rf"^config {tab}: not valid YAML at line 2, column 1: found character "
                                          r"'\\t' that cannot start any token$"):
        load_cfg(tab)
    with pytest.raises(ConfigError, match=r"^ckpt\.pth: not valid YAML at line 1, column 8: mapping values are not "
                                          r"allowed here$"):
        load_cfg_text("SEED: 1: 2", "ckpt.pth")


def test_saved_config_loads_back(tmp_path):
    cfg = load_cfg(None, ["SOLVER.MAX_ITER", "7", "MODEL.BACKBONE.NAME", "resnet34"])
    save_cfg(cfg, str(tmp_path / "out" / "config.yaml"))
    again = load_cfg(str(tmp_path / "out" / "config.yaml"))
    assert again == cfg
    assert get_cfg().SOLVER.MAX_ITER != 7


def test_an_int_where_a_float_is_expected_says_what_to_write(tmp_path):
    import pytest

    from segkit.config import ConfigError, load_cfg

    with pytest.raises(ConfigError, match=r"command line: 'SOLVER.BASE_LR' expects a float, got 1 \(an int\): write 1\.0"):
        load_cfg(None, ["SOLVER.BASE_LR", "1"])
    f = tmp_path / "c.yaml"
    f.write_text("SOLVER:\n  MAX_ITER: 1.5\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: 'SOLVER.MAX_ITER' expects a int .* got 1\.5"):
        load_cfg(str(f))
    assert load_cfg(None, ["SOLVER.BASE_LR", "1.0", "INPUT.CROP_SIZE", "(64, 64)"]).SOLVER.BASE_LR == 1.0


def test_config_text_of_a_checkpoint_loads_and_names_its_source():
    from segkit.config import load_cfg_text

    cfg = load_cfg_text(load_cfg(None, ["MODEL.NUM_CLASSES", "11"]).dump(), "ckpt.pth", ["TEST.SCALE", "0.5"])
    assert cfg.MODEL.NUM_CLASSES == 11 and cfg.TEST.SCALE == 0.5 and cfg.is_frozen()
    with pytest.raises(ConfigError, match="the config saved in old.pth: unknown config key 'MODEL.GONE'"):
        load_cfg_text("MODEL:\n  GONE: 1\n", "the config saved in old.pth")
@pytest.mark.parametrize("key, meant", [
    ("SOLVER.BASE_LRR", "'SOLVER.BASE_LR'"),  # a typo
    ("TRAIN.BASE_LR", "'SOLVER.BASE_LR'"),  # the right name in the wrong section
    ("DATALOADER.WORKERS", "'DATALOADER.NUM_WORKERS'"),
    ("SOLVER.AMP.ENABLE", "'SOLVER.AMP.ENABLED'"),
])
def test_unknown_key_suggests_the_known_keys_it_resembles(key, meant):
    with pytest.raises(ConfigError, match=rf"^command line: unknown config key '{key}'; did you mean {meant}\?$"):
        load_cfg(None, [key, "1"])


def test_unknown_key_in_a_file_suggests_too_and_a_stranger_gets_no_guess(tmp_path):
    bad = _write(tmp_path / "bad.yaml", "MODELL:\n  NAME: x\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown config key 'MODELL'; did you mean 'MODEL'\?$"):
        load_cfg(bad)
    with pytest.raises(ConfigError, match=r"unknown config key 'XYZZY'$"):
        load_cfg(None, ["XYZZY", "1"])
