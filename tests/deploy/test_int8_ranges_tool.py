"""tools/int8_ranges.py: the widest-spread tensors and the logits of a model on generated images; bad flags."""
from __future__ import annotations

import pytest

from tools.int8_ranges import main


def test_the_spreads_of_a_model_on_the_demo_set(exported, tmp_path, capsys):
    demo = ["DATASET.ROOT", str(tmp_path / "demo"), "DATASET.GENERATE_DEMO", "True", "DATASET.DEMO_SIZE", "[64, 128]",
            "DATASET.DEMO_NUM_TRAIN", "1", "DATASET.DEMO_NUM_VAL", "3"]
    assert main(["--config-file", exported.cfg_file, "--weights", exported.weights, "--split", "val",
                 "--images", "3", "--top", "4", *demo]) == 0
    out = capsys.readouterr().out
    assert "3 images of" in out and "val; per image the largest |value|" in out
    table, logits = out.split("the logits:")
    assert len([line for line in table.splitlines() if line.endswith("x") and "spread" not in line]) == 4
    assert len([line for line in logits.splitlines() if line.startswith("logits ")]) == 1


def test_bad_counts_are_refused(capsys):
    with pytest.raises(SystemExit):
        main(["--weights", "w.pth", "--images", "0"])
    assert "--images must be at least 1, got 0" in capsys.readouterr().err
