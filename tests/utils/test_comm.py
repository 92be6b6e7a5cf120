import torch

from segkit.utils import comm as d


def test_single_process_helpers(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    rank, world, device = d.init_distributed()
    assert (rank, world) == (0, 1) and not d.is_distributed()
    assert d.get_rank() == 0 and d.get_world_size() == 1 and d.is_main_process()
    t = torch.tensor([1.0, 2.0])
    assert torch.equal(d.all_reduce_sum(t), torch.tensor([1.0, 2.0]))
    assert d.reduce_mean_dict({"a": 1.5}, device) == {"a": 1.5}
    d.barrier()
    d.cleanup()
