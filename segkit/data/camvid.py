"""CamVid, 11 classes at 480x360, in the SegNet layout: a preset of the folder dataset."""
from __future__ import annotations

from typing import Callable

from yacs.config import CfgNode

from .folder import FolderDataset

CAMVID_CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car",
                  "Pedestrian", "Bicyclist")
CAMVID_PALETTE = ((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
                  (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192))
VOID = 11  # the SegNet labels' void value


class CamVidDataset(FolderDataset):
    """DATASET.NAME 'camvid' (folders train/trainannot, val/valannot, test/testannot).

    Label 11 is void and maps to the ignore index. DATASET.CLASS_NAMES / PALETTE / LABEL_MAPPING left
    empty take these values; the IMAGE_DIR / LABEL_DIR defaults already match the layout.
    """

    title = "CamVid"
    default_classes = CAMVID_CLASSES
    default_palette = CAMVID_PALETTE

    def __init__(self, cfg: CfgNode, split: str, transform: Callable | None = None, check_labels: bool | None = None,
                 strict: bool = True) -> None:
        self.default_mapping = ((VOID, cfg.DATASET.IGNORE_INDEX),)
        super().__init__(cfg, split, transform, check_labels, strict)
