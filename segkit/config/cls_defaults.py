"""Every classification (ImageNet pretraining) config key with its default. A key not listed is an error.

Defaults are a plain ResNet recipe (SGD 0.1 per 256 images, cosine, label smoothing 0.1);
configs/imagenet/*.yaml switch on the parts of each published recipe. The SOLVER section is the one
segmentation uses (segkit/config/solver.py); only its length keys (epochs) are pretraining's own.
"""
from yacs.config import CfgNode as CN

from .solver import add_solver_config

_C = CN()

_C.OUTPUT_DIR = "output/pretrain"  # log.txt, config.yaml, checkpoints, metrics.json, backbone_final.pth land here
_C.SEED = 42  # seeds python, numpy and torch (offset by rank in distributed runs)
_C.DETERMINISTIC = False  # torch.use_deterministic_algorithms; slower, for debugging
_C.LOG_PERIOD = 50  # iterations between progress lines
_C.LOG = CN()
_C.LOG.TENSORBOARD = False  # mirror events.jsonl (loss, lr, top-1, EMA top-1) to OUTPUT_DIR/tb; pip install -e ".[vis]"
_C.CHANNELS_LAST = False  # NHWC memory format for model and inputs (faster convolutions on tensor cores)
_C.COMPILE = False  # wrap the model in torch.compile
_C.EXPORT = "raw"  # what backbone_final.pth takes: "raw" (the trained model) or "ema" (its moving average)

# ---------------------------------------------------------------------------- model
_C.MODEL = CN()
_C.MODEL.NAME = "resnet50"  # zoo classifier name (segkit.models.list_backbones())
_C.MODEL.NUM_CLASSES = 1000  # output classes; must equal the number of class folders
_C.MODEL.DROP_RATE = -1.0  # dropout before the fc; negative: the family's published default
_C.MODEL.DROP_PATH_RATE = 0.0  # stochastic depth rate (EfficientNet drop-connect, ResNet/Xception drop-path)
_C.MODEL.ZERO_INIT_LAST = True  # ResNet: last BN gamma of each residual block starts at 0 (Goyal et al. 2017)
_C.MODEL.NORM = "BN"  # BN, GN or FrozenBN: norm layer of the backbone (synchronised BN: MODEL.SYNC_BN)
_C.MODEL.SYNC_BN = False  # the one SyncBN switch: every BatchNorm becomes SyncBatchNorm in multi-GPU training

# ---------------------------------------------------------------------------- dataset
_C.DATASET = CN()
_C.DATASET.ROOT = "datasets/imagenet"  # ImageFolder root holding TRAIN_DIR/<class>/* and VAL_DIR/<class>/*
_C.DATASET.TRAIN_DIR = "train"  # training folder under ROOT
_C.DATASET.VAL_DIR = "val"  # validation folder under ROOT
_C.DATASET.SKIP_UNREADABLE = False  # skip (and count) files no decoder reads instead of stopping with an error
_C.DATASET.GENERATE_DEMO = False  # generate the procedural demo ImageFolder set at ROOT when it is missing
_C.DATASET.DEMO_NUM_CLASSES = 10  # demo set: number of classes
_C.DATASET.DEMO_TRAIN_PER_CLASS = 60  # demo set: training images per class
_C.DATASET.DEMO_VAL_PER_CLASS = 20  # demo set: validation images per class
_C.DATASET.DEMO_SIZE = 72  # demo set: image side in pixels

# ---------------------------------------------------------------------------- input
_C.INPUT = CN()
_C.INPUT.MEAN = [0.485, 0.456, 0.406]  # RGB mean on a 0..1 scale
_C.INPUT.STD = [0.229, 0.224, 0.225]  # RGB std on a 0..1 scale
_C.INPUT.TRAIN_SIZE = 224  # side of the training crop
_C.INPUT.VAL_SIZE = 224  # side of the validation centre crop
_C.INPUT.CROP_PCT = 0.875  # validation: the short side is resized to VAL_SIZE / CROP_PCT before the centre crop
_C.INPUT.RRC_SCALE = [0.08, 1.0]  # RandomResizedCrop area range, as a fraction of the image
_C.INPUT.RRC_RATIO = [0.75, 1.3333333]  # RandomResizedCrop aspect-ratio range
_C.INPUT.INTERPOLATION = "bilinear"  # resize filter of train and val: "bilinear" or "bicubic"
_C.INPUT.FLIP_PROB = 0.5  # probability of a horizontal flip
_C.INPUT.RAND_AUGMENT_N = 0  # RandAugment: operations per image; 0 disables RandAugment
_C.INPUT.RAND_AUGMENT_M = 9  # RandAugment: magnitude on the paper's and timm's 0..10 scale (9: rotate up to 27 deg)
_C.INPUT.RAND_AUGMENT_PROB = 0.5  # RandAugment: probability each chosen operation is applied
_C.INPUT.COLOR_JITTER = 0.0  # brightness/contrast/saturation factor range [1-x, 1+x]; 0 disables
_C.INPUT.PCA_LIGHTING = 0.0  # std of AlexNet PCA lighting noise (0.1 in the paper); 0 disables
_C.INPUT.RANDOM_ERASE_PROB = 0.0  # probability of random erasing on the normalised tensor; 0 disables
_C.INPUT.RANDOM_ERASE_SCALE = [0.02, 0.33]  # erased area range, as a fraction of the crop
_C.INPUT.RANDOM_ERASE_MODE = "pixel"  # erased fill: "pixel" (per-pixel normal noise) or "const" (zeros)

# ---------------------------------------------------------------------------- batch-level augmentation, loss
_C.AUG = CN()
_C.AUG.MIXUP_ALPHA = 0.0  # Beta(alpha, alpha) of mixup; 0 disables mixup
_C.AUG.CUTMIX_ALPHA = 0.0  # Beta(alpha, alpha) of CutMix; 0 disables CutMix
_C.AUG.MIX_PROB = 1.0  # probability a batch is mixed at all (when mixup or CutMix is on)
_C.AUG.SWITCH_PROB = 0.5  # with both on: probability of CutMix instead of mixup for a batch
_C.AUG.LABEL_SMOOTHING = 0.1  # label smoothing epsilon (also applied inside mixed soft targets)

# ---------------------------------------------------------------------------- knowledge distillation
_C.KD = CN()
_C.KD.TEACHER_WEIGHTS = ""  # teacher classifier checkpoint; empty disables distillation
_C.KD.TEACHER_NAME = ""  # zoo classifier name of the teacher; empty: MODEL.NAME
_C.KD.TEMPERATURE = 1.0  # softmax temperature of teacher and student in the KD term
_C.KD.ALPHA = 0.5  # loss = (1 - ALPHA) * hard-label loss + ALPHA * KD loss
_C.KD.KIND = "kl"  # KD term: "kl" (KL divergence) or "ce" (cross-entropy on teacher probabilities; label refinery)

# ---------------------------------------------------------------------------- solver
# Shared keys (segkit/config/solver.py) with the pretraining defaults: BASE_LR is per 256 images and scales
# linearly with the batch; no weight decay on norms and biases (every 1-D parameter of the zoo classifiers);
# of the per-epoch checkpoints only the newest stays (resuming needs no other; ImageNet runs have hundreds).
# HEAD_LR_MULT stays 1.0: a classifier marks no head modules, so pretraining refuses another value.
add_solver_config(
    _C, IMS_PER_BATCH=256, BASE_LR=0.1, LR_REFERENCE_BATCH=256, HEAD_LR_MULT=1.0, WEIGHT_DECAY=1e-4,
    LR_SCHEDULER="cosine", MIN_LR_FACTOR=1e-5, WARMUP_FACTOR=0.01, CHECKPOINT_KEEP=1,
)
_C.SOLVER.EPOCHS = 100  # training epochs
_C.SOLVER.WARMUP_EPOCHS = 5  # epochs of warmup (stepped per iteration)

# ---------------------------------------------------------------------------- EMA of weights
_C.EMA = CN()
_C.EMA.ENABLED = True  # keep an exponential moving average of weights and BN buffers, evaluated each epoch
_C.EMA.DECAY = 0.9998  # EMA decay per optimiser step
_C.EMA.WARMUP = True  # ramp the decay up as min(DECAY, (1 + step) / (10 + step)) so early averages follow

# ---------------------------------------------------------------------------- data loader
_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 8  # decoding worker processes per training process
_C.DATALOADER.PIN_MEMORY = True  # pinned host memory (only used on CUDA)
_C.DATALOADER.VAL_BATCH_SIZE = 0  # per-process validation batch; 0: the per-process training batch


def get_cls_cfg() -> CN:
    """A fresh copy of the classification defaults."""
    return _C.clone()
