"""Every segmentation config key with its default. A key not listed here is an error.

Sections: MODEL (architecture), DATASET (where and what), INPUT (train-time
augmentation and normalisation), DATALOADER, LOSS, SOLVER (optimiser, schedule,
AMP), TEST (evaluation and inference modes). Defaults follow the BiSeNetV1
Cityscapes recipe of the best public reproduction.
"""
from yacs.config import CfgNode as CN

from .solver import add_solver_config

_C = CN()

_C.OUTPUT_DIR = "output"  # everything a run writes lands here: log.txt, config.yaml, checkpoints, metrics.json
_C.SEED = 42  # seeds python, numpy and torch (offset by rank in distributed runs)
_C.DETERMINISTIC = False  # torch.use_deterministic_algorithms; slower, for debugging
_C.LOG_PERIOD = 20  # iterations between log lines
_C.LOG = CN()
_C.LOG.TENSORBOARD = False  # mirror events.jsonl (losses, lr, data time, metrics) to OUTPUT_DIR/tb; pip install -e ".[vis]"
_C.LOG.NUM_VAL_IMAGES = 4  # colour-coded val predictions beside their ground truth in TensorBoard at each evaluation

# ---------------------------------------------------------------------------- model
_C.MODEL = CN()
_C.MODEL.NAME = "bisenetv1"  # key of segkit.models.segmentors.SEGMENTORS
_C.MODEL.NUM_CLASSES = 19  # must equal the dataset's number of classes
_C.MODEL.NORM = "BN"  # BN, GN or FrozenBN: norm layer of backbone and heads (synchronised BN: MODEL.SYNC_BN)
_C.MODEL.SYNC_BN = False  # the one SyncBN switch: every BatchNorm becomes SyncBatchNorm in multi-GPU training
_C.MODEL.WEIGHTS = ""  # a segkit checkpoint or model state_dict to initialise the whole model from
_C.MODEL.PARTIAL_WEIGHTS = False  # let MODEL.WEIGHTS / MODEL.BACKBONE.WEIGHTS miss or add keys (shapes must still match)
_C.MODEL.ALIGN_CORNERS = False  # align_corners of every bilinear upsampling in the model
# PIDNet's official pipeline resizes its logits to the label with True after a network that uses False throughout.
# Read by BiSeNetV1/V2, DDRNet, PIDNet and STDC-Seg; other models refuse a value.
_C.MODEL.OUTPUT_ALIGN_CORNERS = None  # align_corners of the last resize of the logits (main, aux) to the input; None: ALIGN_CORNERS
_C.MODEL.DROPOUT = 0.1  # head dropout: FCN/PSPNet decode and aux heads, DeepLabV3+ by DEEPLAB_STYLE, BiSeNetV2 all heads
# Head shapes, each read by the models named beside it; the other models refuse a value (Segmentor.reads).
_C.MODEL.HEAD_CHANNELS = 512  # width of FCN / PSP bottleneck convolutions (FCN, PSPNet)
_C.MODEL.PPM_BINS = [1, 2, 3, 6]  # pyramid pooling bins (PSPNet)
_C.MODEL.ASPP_RATES = [6, 12, 18]  # ASPP dilations at output stride 16; doubled at output stride 8 (DeepLabV3+)
_C.MODEL.ASPP_CHANNELS = 256  # ASPP and decoder width (DeepLabV3+)
_C.MODEL.ASPP_SEPARABLE = True  # depthwise-separable 3x3 convs in ASPP and decoder, as the published DeepLabV3+
_C.MODEL.DECODER_LOW_CHANNELS = 48  # DeepLabV3+ decoder: channels c2 is projected to before the fusion
_C.MODEL.DEEPLAB_STYLE = "tf"  # DeepLabV3+ heads as published by "tf" (Xception-65) or "mmseg" (R50-D8: 3x3 bottleneck, aux head)
_C.MODEL.FCN_NUM_CONVS = 2  # 3x3 convs of HEAD_CHANNELS in the FCN decode head (FCN; not PSPNet)
_C.MODEL.FCN_CONCAT_INPUT = True  # FCN decode head fuses its input with the conv output (published FCN-D8 head; FCN)
_C.MODEL.AUX_CHANNELS = 256  # width of the auxiliary FCN head on c4 (FCN, PSPNet, DeepLabV3+ with DEEPLAB_STYLE mmseg)
_C.MODEL.VARIANT = ""  # model size of a family: pidnet_s/m/l, ddrnet_23_slim / ddrnet_23 / ddrnet_39; empty: the smallest

# The zoo backbone: read by BiSeNetV1, STDC-Seg, FCN, PSPNet and DeepLabV3+. PIDNet and DDRNet have none and refuse
# a value; BiSeNetV2's branches are fixed: it takes WEIGHTS, and NAME bisenetv2 only.
_C.MODEL.BACKBONE = CN()
_C.MODEL.BACKBONE.NAME = "resnet18"  # any name of segkit.models.backbones.list_backbones()
_C.MODEL.BACKBONE.WEIGHTS = ""  # backbone-only state_dict (tools/export_backbone.py, tools/convert_weights.py)
_C.MODEL.BACKBONE.OUTPUT_STRIDE = 32  # 8, 16 or 32: the last strides become dilations
_C.MODEL.BACKBONE.FROZEN_STAGES = -1  # stages [0..N] get no gradient; -1 trains everything
_C.MODEL.BACKBONE.DROP_PATH_RATE = 0.0  # stochastic depth of the backbone (EfficientNet drop-connect)

# ---------------------------------------------------------------------------- dataset
_C.DATASET = CN()
_C.DATASET.NAME = "cityscapes"  # key of segkit.data.DATASETS
_C.DATASET.ROOT = "datasets/cityscapes"  # dataset root folder
_C.DATASET.TRAIN_SPLIT = "train"  # split used for training
_C.DATASET.VAL_SPLIT = "val"  # split used for evaluation during and after training
_C.DATASET.TEST_SPLIT = "test"  # split used by tools/evaluate.py --split test (no labels)
_C.DATASET.LABEL_TYPE = "labelIds"  # Cityscapes: read *_gtFine_labelIds.png (mapped) or *_gtFine_labelTrainIds.png
_C.DATASET.IGNORE_INDEX = 255  # label value that no loss or metric counts
_C.DATASET.GENERATE_DEMO = False  # generate the procedural demo dataset at ROOT when it is missing
_C.DATASET.DEMO_SIZE = [256, 512]  # demo images: height, width
_C.DATASET.DEMO_NUM_TRAIN = 120  # demo training images
_C.DATASET.DEMO_NUM_VAL = 30  # demo validation images
# Folder / CamVid datasets ({split} in the paths below is replaced by the split name)
_C.DATASET.IMAGE_DIR = "{split}"  # image folder under ROOT
_C.DATASET.LABEL_DIR = "{split}annot"  # label folder under ROOT, files paired with images by stem
_C.DATASET.LABEL_SUFFIX = ""  # label stem = image stem + this (e.g. "_mask")
_C.DATASET.LIST_FILE = ""  # e.g. "{split}.txt" of "image [label]" lines relative to ROOT; replaces the folders
_C.DATASET.CLASS_NAMES = []  # class names in train-id order (CamVid: its 11 classes when empty)
_C.DATASET.PALETTE = []  # [R, G, B] per class; also decodes colour label PNGs (extra entries: extra raw values)
_C.DATASET.LABEL_MAPPING = []  # [[stored value, train id], ...] applied to labels; other values kept as they are
_C.DATASET.CHECK_LABELS = True  # histogram every label while indexing (cached): unknown values are an error
# Official datasets (COCO-Stuff, ADE20K, VOC, BDD100K, Mapillary, KITTI, ACDC, Dark Zurich) and cross-dataset evaluation
_C.DATASET.CONDITIONS = []  # ACDC: the conditions read (fog, night, rain, snow); empty: every one under ROOT/rgb_anon/
_C.MODEL.TRAINED_ON = ""  # DATASET.NAME whose classes the weights predict; empty: the checkpoint's config, else DATASET.NAME
_C.DATASET.TRAIN_SUBSET = 0.0  # in (0, 1): train on this seeded share of TRAIN_SPLIT's labels only; 0: all of them
_C.DATASET.TRAIN_SUBSET_SEED = 0  # seed of that choice, fixed apart from SEED so that runs of any seed share the split
_C.DATASET.UNLABELED = ""  # images for SEMI: "train_rest" (TRAIN_SPLIT outside TRAIN_SUBSET), "split:NAME", or a folder

# ---------------------------------------------------------------------------- input
_C.INPUT = CN()
_C.INPUT.MEAN = [0.485, 0.456, 0.406]  # RGB mean on a 0..1 scale
_C.INPUT.STD = [0.229, 0.224, 0.225]  # RGB std on a 0..1 scale
_C.INPUT.SCALE_RANGE = [0.75, 2.0]  # random rescale factor range of the training image
_C.INPUT.CROP_SIZE = [1024, 1024]  # training crop: height, width (padded with ignore where the image is smaller)
_C.INPUT.FLIP_PROB = 0.5  # probability of a horizontal flip
_C.INPUT.BRIGHTNESS = 0.4  # colour jitter: factor drawn from [1-x, 1+x]
_C.INPUT.CONTRAST = 0.4  # colour jitter: factor drawn from [1-x, 1+x]
_C.INPUT.SATURATION = 0.4  # colour jitter: factor drawn from [1-x, 1+x]
# How the jitter amounts apply (segkit/data/photometric.py): torchvision (ColorJitter's blends), bisenet (the
# CoinCheung/BiSeNet reproduction's: contrast about grey 74, saturation to the channel mean) or mmseg
# (PhotoMetricDistortion: each step with p 0.5; BRIGHTNESS is an offset of x * 255, HUE a shift in HSV).
_C.INPUT.JITTER = "torchvision"
_C.INPUT.HUE = 0.0  # INPUT.JITTER mmseg only: hue shift drawn from [-x, x) of a full turn (mmsegmentation: 0.1)
_C.INPUT.SCALE_STEP = 0.0  # > 0: the scale is drawn from the grid low, low + step, ..., high of SCALE_RANGE
_C.INPUT.COVER_CROP = False  # True: a scale leaving the image smaller than the crop is raised until it covers it
_C.INPUT.CAT_MAX_RATIO = 1.0  # < 1: redraw (up to 10 times) a crop where one class holds more of the labelled pixels

# ---------------------------------------------------------------------------- data loader
_C.DATALOADER = CN()
_C.DATALOADER.NUM_WORKERS = 4  # worker processes per training process
_C.DATALOADER.PIN_MEMORY = True  # pinned host memory (only used on CUDA)

# ---------------------------------------------------------------------------- loss
_C.LOSS = CN()
_C.LOSS.NAME = "ohem"  # main head: a loss of segkit.losses.LOSSES on class logits ("ohem" or "ce")
_C.LOSS.AUX_NAME = "ohem"  # auxiliary heads whose model declares no loss of their own (aux_losses): "ohem" or "ce"
_C.LOSS.AUX_WEIGHTS = []  # one weight per auxiliary head, in the model's order; empty: the model's published defaults
_C.LOSS.OHEM_THRESH = 0.7  # OHEM keeps pixels whose true-class probability is below this
_C.LOSS.OHEM_MIN_KEPT_RATIO = 0.0625  # ...but never fewer than this share of the valid pixels (1/16)
_C.LOSS.OHEM_MIN_KEPT = 0  # ...nor fewer than this many per process (PIDNet / DDRNet recipes: 131072); 0: ratio only
_C.LOSS.BOUNDARY_THRESH = 0.8  # PIDNet: boundary-aware OHEM on the main logits where sigmoid(boundary) > this
_C.LOSS.CLASS_WEIGHTS = []  # per-class CE weights; empty: none (see CLASS_WEIGHTING)
_C.LOSS.CLASS_WEIGHTING = ""  # "" or "median_freq": weights from the training set's class pixel counts

# ---------------------------------------------------------------------------- teacher (distillation)
_C.TEACHER = CN()
_C.TEACHER.CONFIG = ""  # teacher's config (classes, INPUT.MEAN/STD = the student's); empty: the one TEACHER.WEIGHTS carry
_C.TEACHER.WEIGHTS = ""  # teacher weights: a segkit checkpoint, an official file or zoo:NAME; empty: no teacher
_C.TEACHER.LOSSES = ["cwd"]  # distillation terms of segkit.losses.LOSSES: "kd" (pixel KL), "cwd" (channel-wise, logits), "cwd_feature"
_C.TEACHER.LOSS_WEIGHTS = []  # one per TEACHER.LOSSES entry; empty: published defaults (kd 1.0, cwd 3.0, cwd_feature 3.0)
_C.TEACHER.KD_TEMPERATURE = 1.0  # pixel-wise KL temperature (CIRKD's --kd-temperature)
_C.TEACHER.CWD_TEMPERATURE = 4.0  # CWD temperature on logits (Shu et al., ICCV 2021, Cityscapes)
_C.TEACHER.FEATURE_TEMPERATURE = 4.0  # CWD temperature on the feature pair
_C.TEACHER.STUDENT_FEATURE = ""  # "cwd_feature": student module whose output is distilled, e.g. "ffm" or "backbone:c5" (dict entry)
_C.TEACHER.TEACHER_FEATURE = ""  # "cwd_feature": the teacher module it is matched with (same syntax)

# ---------------------------------------------------------------------------- semi-supervised training
_C.SEMI = CN()
_C.SEMI.ENABLED = False  # pseudo-labels on DATASET.UNLABELED images supervise the student (FixMatch/UniMatch style)
_C.SEMI.TEACHER = "ema"  # who labels the weak view: "ema" (mean teacher: the student's EMA) or "fixed" (TEACHER.*)
_C.SEMI.EMA_DECAY = 0.99  # mean-teacher decay (CutMix-Seg, French et al. 2020), ramped up as (1+n)/(10+n)
_C.SEMI.THRESHOLD = 0.95  # pseudo-labels count where the teacher's confidence reaches this (FixMatch / UniMatch)
_C.SEMI.CLASS_KEEP = 1.0  # share of each class's pseudo-labels in a batch that counts, most confident first (CBST); 1: all
_C.SEMI.LOSS_WEIGHT = 1.0  # weight of the unsupervised loss against the supervised one
_C.SEMI.IMS_PER_BATCH = 0  # unlabelled images per iteration, all processes together; 0: SOLVER.IMS_PER_BATCH
_C.SEMI.CUTMIX_PROB = 0.5  # share of unlabelled images that get a CutMix box from another one (UniMatch)
_C.SEMI.ACCURACY_PERIOD = 20  # iterations between pseudo-label accuracy measurements on the labelled batch; 0: never

# ---------------------------------------------------------------------------- solver
add_solver_config(_C)  # optimizer, LR schedule, clipping, AMP: segkit/config/solver.py (shared with pretraining)
_C.SOLVER.MAX_ITER = 80000  # training iterations
_C.SOLVER.WARMUP_ITERS = 1000  # iterations of warmup
_C.SOLVER.CHECKPOINT_PERIOD = 5000  # iterations between checkpoints

# ---------------------------------------------------------------------------- test
_C.TEST = CN()
_C.TEST.EVAL_PERIOD = 5000  # iterations between evaluations during training; 0 evaluates only at the end
_C.TEST.SLIDE = False  # sliding-window inference
_C.TEST.CROP_SIZE = [1024, 1024]  # sliding window: height, width
_C.TEST.STRIDE = []  # sliding stride: height, width; empty: 2/3 of the crop
_C.TEST.SCALES = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]  # scales of multi-scale inference (--msc)
_C.TEST.SCALE = 1.0  # scale of single-scale inference
_C.TEST.MSC = False  # multi-scale inference over TEST.SCALES
_C.TEST.FLIP = False  # add horizontally flipped views
_C.TEST.BATCH_SIZE = 4  # windows / views per forward pass; bounds inference memory
_C.TEST.SIZE_DIVISOR = 32  # inputs are zero-padded to a multiple of this (the network stride), logits cropped back
_C.TEST.AMP = False  # autocast evaluation forward passes on CUDA with SOLVER.AMP.DTYPE


def get_cfg() -> CN:
    """A fresh copy of the segmentation defaults."""
    return _C.clone()
