"""The inference graph that gets exported: Conv+BN folded, and every op written so that it holds at any size.

`make_exportable(model)` returns an eval-mode copy. Besides the BN folding it replaces each
nn.AdaptiveAvgPool2d (other than the global 1x1 pool) by `ExactAdaptiveAvgPool2d`: the exporters turn
adaptive pooling into a fixed-kernel AveragePool, or a gather pattern sized for the trace input, chosen by
whether the traced size happens to divide by the bins. The file then computes PSPNet's pyramid right at
the export size and wrong at every other. Written as two matrix products whose bin edges are computed
from the input's shape inside the graph, the pooling is the same function at every size.
"""
from __future__ import annotations

import torch
from torch import nn

from ..models.fuse import fuse_conv_bn


def _bin_weights(length: int | torch.SymInt, bins: int, like: torch.Tensor) -> torch.Tensor:
    """[bins, length] averaging weights of adaptive pooling along one axis (PyTorch's bin edges).

    Bin i covers [floor(i*L/b), ceil((i+1)*L/b)); both edges are integer tensor arithmetic, so an
    exporter records them as graph ops of the input's shape rather than constants of the trace size.
    """
    i = torch.arange(bins, device=like.device)
    start = torch.div(i * length, bins, rounding_mode="floor")
    end = torch.div((i + 1) * length + bins - 1, bins, rounding_mode="floor")
    pos = torch.arange(length, device=like.device)
    inside = (pos[None, :] >= start[:, None]) & (pos[None, :] < end[:, None])
    return inside.to(like.dtype) / (end - start).to(like.dtype)[:, None]


class ExactAdaptiveAvgPool2d(nn.Module):
    """nn.AdaptiveAvgPool2d as `Wh @ x @ Ww^T`: equal to it at every input size, and exportable as such."""

    def __init__(self, output_size: int | tuple[int | None, int | None]) -> None:
        super().__init__()
        self.output_size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        out_h = h if self.output_size[0] is None else self.output_size[0]
        out_w = w if self.output_size[1] is None else self.output_size[1]
        return _bin_weights(h, out_h, x) @ x @ _bin_weights(w, out_w, x).transpose(0, 1)


def _is_global(pool: nn.AdaptiveAvgPool2d) -> bool:
    # A 1x1 pool is a mean over H and W, which every exporter writes size-independently.
    size = pool.output_size
    return all(s == 1 for s in ((size, size) if isinstance(size, int) else size))


def make_exportable(model: nn.Module) -> nn.Module:
    """An eval-mode copy of `model` with Conv+BN folded and size-dependent adaptive pools made exact."""
    exportable = fuse_conv_bn(model)
    for parent in list(exportable.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.AdaptiveAvgPool2d) and not _is_global(child):
                setattr(parent, name, ExactAdaptiveAvgPool2d(child.output_size))
    return exportable
