"""Dark Zurich (Sakaridis et al., ICCV 2019), its downloads unpacked into one folder:

    ROOT/rgb_anon/<split>/<time of day>/<sequence>/<name>_rgb_anon.png
    ROOT/gt/val/night/<sequence>/<name>_gt_labelIds.png                Cityscapes label ids

Only val (50 night images, Dark_Zurich_val_anon.zip) has labels; train (day, twilight and night,
for adaptation) and test (Dark_Zurich_test_anon.zip, judged on the benchmark server) have none.
Classes are Cityscapes', so a Cityscapes model is evaluated directly.
"""
from __future__ import annotations

from yacs.config import CfgNode

from .acdc import CityscapesIdsDataset, anon_pairs
from .base import Sample


class DarkZurichDataset(CityscapesIdsDataset):
    """DATASET.NAME 'dark_zurich': splits val (labelled), train and test (no labels)."""

    title = "Dark Zurich"
    unlabelled_splits = ("train", "test")

    def find_samples(self, cfg: CfgNode, folder: str, strict: bool) -> list[Sample]:
        return anon_pairs(cfg.DATASET.ROOT, (folder,), folder not in self.unlabelled_splits, strict)
