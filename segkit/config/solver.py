"""The SOLVER section, shared by the segmentation and the pretraining defaults: one name, unit and comment per key.

Both pipelines build their optimizer and LR schedule from these keys through segkit.solver.build. Only
the lengths stay with each pipeline (segmentation counts iterations, pretraining epochs); both turn them
into iterations for the same scheduler. LRs are absolute except where LR_REFERENCE_BATCH asks for
linear scaling; MIN_LR_FACTOR and WARMUP_FACTOR are fractions of each group's peak LR.
"""
from __future__ import annotations

from typing import Any

from yacs.config import CfgNode as CN


def add_solver_config(cfg: CN, **defaults: Any) -> CN:
    """Give `cfg` the shared SOLVER section; `defaults` replaces the default value of the keys it names.

    A pipeline passes its own defaults here instead of assigning the keys again, so every key is
    defined and commented once. An unknown name is an error.
    """
    s = CN()
    s.IMS_PER_BATCH = 16  # global batch over all processes (each gets IMS_PER_BATCH / world size)
    s.OPTIMIZER = "sgd"  # key of segkit.solver.OPTIMIZERS: "sgd", "adamw" or "rmsproptf"
    s.BASE_LR = 0.01  # peak LR of the base parameter groups (per LR_REFERENCE_BATCH images when that is > 0)
    s.LR_REFERENCE_BATCH = 0  # > 0: linear scaling, the run uses BASE_LR * IMS_PER_BATCH / LR_REFERENCE_BATCH
    s.HEAD_LR_MULT = 10.0  # LR multiplier of the modules a segmentor marks as heads (a classifier has none)
    s.MOMENTUM = 0.9  # SGD and RMSpropTF momentum
    s.NESTEROV = False  # Nesterov momentum (SGD)
    s.WEIGHT_DECAY = 5e-4  # weight decay of convolution and linear weights
    s.WEIGHT_DECAY_NORM = 0.0  # weight decay of norm-layer weights and biases
    s.WEIGHT_DECAY_BIAS = 0.0  # weight decay of the other biases
    s.BETAS = [0.9, 0.999]  # AdamW betas
    s.EPS = 1e-8  # AdamW epsilon
    s.RMSPROP_ALPHA = 0.9  # RMSpropTF: decay of the squared-gradient average
    s.RMSPROP_EPS = 1e-3  # RMSpropTF: epsilon, added inside the square root as TensorFlow does
    s.LR_SCHEDULER = "poly"  # decay after warmup: "poly" or "cosine"
    s.POLY_POWER = 0.9  # exponent of the poly schedule
    s.MIN_LR_FACTOR = 0.0  # the LR decays to this fraction of each group's peak LR at the end of training
    s.WARMUP_FACTOR = 0.1  # warmup starts at this fraction of each group's peak LR
    s.WARMUP_METHOD = "linear"  # "linear" or "exp" (geometric) ramp to the peak LR
    s.CLIP_GRAD_NORM = 0.0  # clip the global gradient norm to this; 0 disables
    s.CHECKPOINT_KEEP = 0  # periodic model_<iteration>.pth files kept, the newest; 0 keeps all
    s.AMP = CN()
    s.AMP.ENABLED = False  # autocast on CUDA; CPU runs stay in float32
    s.AMP.DTYPE = "float16"  # "float16" (with a GradScaler) or "bfloat16"
    for key, value in defaults.items():
        if key not in s or isinstance(s[key], CN):
            raise KeyError(f"add_solver_config: '{key}' is not a shared SOLVER key")
        s[key] = value
    cfg.SOLVER = s
    return cfg
