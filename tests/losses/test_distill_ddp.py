"""Two processes (gloo, CPU): a distributed distillation criterion averages its projection's gradients."""
from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _grads(features: list[torch.Tensor], distribute: bool, rank: int = 0) -> list[torch.Tensor]:
    """Connector gradients of the CWD feature term on `features[rank]` (the same initial weights everywhere)."""
    from segkit.losses.distill import ChannelWiseDivergence, DistillCriterion, feature_connector

    torch.manual_seed(0)
    crit = DistillCriterion({"cwd_feature": (ChannelWiseDivergence(1.0, ("feature", "teacher_feature")), 1.0)},
                            feature_connector(3, 5))
    if distribute:
        crit.distribute()
    student, teacher = features[rank]
    total, _ = crit(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long),
                    student, teacher)
    total.backward()
    assert list(crit.state_dict()) == ["connector.0.weight", "connector.1.weight", "connector.1.bias",
                                       "connector.1.running_mean", "connector.1.running_var",
                                       "connector.1.num_batches_tracked"]
    return [p.grad.clone() for p in crit.connector.parameters()]


def _worker(rank: int, world: int, port: int, features, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.save(_grads(features, True, rank), os.path.join(out_dir, f"grads{rank}.pt"))
    finally:
        torch.distributed.destroy_process_group()


def test_projection_gradients_are_the_mean_over_processes(tmp_path):
    g = torch.Generator().manual_seed(1)
    features = [(torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 5, 4, 4, generator=g)) for _ in range(2)]
    mp.start_processes(_worker, args=(2, _free_port(), features, str(tmp_path)), nprocs=2, start_method="spawn")
    got = [torch.load(tmp_path / f"grads{r}.pt") for r in range(2)]
    alone = [_grads(features, False, r) for r in range(2)]
    for a, b, g0, g1 in zip(got[0], got[1], alone[0], alone[1]):
        assert torch.allclose(a, b) and torch.allclose(a, (g0 + g1) / 2, atol=1e-6)
    assert not torch.allclose(alone[0][0], alone[1][0])  # the processes did see different features
