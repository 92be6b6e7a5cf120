"""Datasets, transforms, samplers and loaders (see `build_dataset`, `build_train_loader`, `build_test_loader`)."""
from .build import (DATASETS, build_dataset, check_num_classes, build_test_loader, build_train_loader, collate,
                    dataset_classes, iteration_batches, worker_init_fn)
from .base import Sample, SegDataset
from .camvid import CamVidDataset
from .cityscapes import CityscapesDataset
from .demo import ensure_demo_dataset, generate_demo_dataset, render_scene
from .folder import FolderDataset
from .samplers import InferenceSampler, TrainingSampler
from .seg_transforms import SegEvalTransform, SegTrainTransform
from .subset import split_samples, write_subset_lists
from .unlabeled import UnlabeledDataset, build_unlabeled_dataset, build_unlabeled_loader

__all__ = [
    "DATASETS", "build_dataset", "check_num_classes", "dataset_classes", "build_train_loader", "build_test_loader",
    "collate", "iteration_batches", "worker_init_fn",
    "CityscapesDataset", "FolderDataset", "CamVidDataset", "SegDataset", "Sample",
    "ensure_demo_dataset", "generate_demo_dataset", "render_scene",
    "InferenceSampler", "TrainingSampler", "SegTrainTransform", "SegEvalTransform",
    "split_samples", "write_subset_lists", "UnlabeledDataset", "build_unlabeled_dataset", "build_unlabeled_loader",
]
