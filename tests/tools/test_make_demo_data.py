import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import make_demo_data  # noqa: E402

SMALL = ["DATASET.DEMO_SIZE", "[32, 64]", "DATASET.DEMO_NUM_TRAIN", "1", "DATASET.DEMO_NUM_VAL", "1"]


def test_writes_the_set_and_refuses_to_overwrite_without_force(tmp_path, capsys):
    root = tmp_path / "demo"
    assert make_demo_data.main(["--root", str(root), *SMALL]) == 0
    assert len(os.listdir(root / "leftImg8bit" / "val" / "frankfurt")) == 1
    assert make_demo_data.main(["--root", str(root), *SMALL]) == 1
    assert "pass --force" in capsys.readouterr().err
    assert make_demo_data.main(["--root", str(root), "--force", *SMALL]) == 0


def test_an_unwritable_root_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert make_demo_data.main(["--root", str(blocker / "demo"), "DATASET.DEMO_NUM_TRAIN", "1"]) == 1
    assert capsys.readouterr().err.strip() == (f"error: cannot write --root {blocker}/demo: {blocker} is a file, "
                                               "not a folder")
