import os
import random

import numpy as np
import torch

from segkit.utils.logger import setup_logger
from segkit.utils.seed import seed_everything


def test_main_process_logs_to_file_and_others_do_not(tmp_path):
    log = setup_logger(str(tmp_path / "a"), rank=0, name="segkit_test_a")
    log.info("hello")
    assert "hello" in (tmp_path / "a" / "log.txt").read_text()
    other = setup_logger(str(tmp_path / "b"), rank=1, name="segkit_test_b")
    other.info("quiet")
    assert not os.path.exists(tmp_path / "b" / "log.txt")


def test_seed_everything_repeats_every_generator():
    seed_everything(3)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(3)
    assert first == (random.random(), np.random.rand(), torch.rand(1).item())
