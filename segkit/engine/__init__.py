"""The training engine: the trainer base both pipelines run on (step, checkpoints, resume, preemption, seeding,
events), the start of a run, and the segmentation trainer. Pretraining (segkit.pretrain) subclasses the base."""
from .preemption import EXIT_PREEMPTED, Preempted
from .trainer import FINAL_CHECKPOINT, TRAINING_KEYS, NonFiniteError, TrainerBase

__all__ = ["EXIT_PREEMPTED", "FINAL_CHECKPOINT", "NonFiniteError", "Preempted", "TRAINING_KEYS", "TrainerBase"]
