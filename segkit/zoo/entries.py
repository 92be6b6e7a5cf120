"""The published checkpoints segkit runs by name (`zoo:NAME`), one record each, with where every fact comes from.

Every URL, checksum, figure and licence below is copied from the page named in `page` (the source
repository's README at the time of writing); a figure the source does not publish is None. The files
themselves are the authors' and are not redistributed: a record says where to get each one.
`config` (+ `opts`) gives the segkit config the converted weights run with, including the published
evaluation protocol (input normalisation, TEST.SCALE, the last resize), so `tools/evaluate.py --weights zoo:NAME`
measures what the authors measured without further flags.
"""
from __future__ import annotations

from dataclasses import dataclass

# Licences of the weights, by source: the licence of the repository that publishes them.
MIT_COINCHEUNG = "MIT (the LICENSE file of github.com/CoinCheung/BiSeNet)"
MIT_PIDNET = "MIT (the LICENSE file of github.com/XuJiacong/PIDNet)"
MIT_DDRNET = "MIT (the LICENSE file of github.com/ydhongHIT/DDRNet)"
MIT_STDC = "MIT (the LICENSE file of github.com/MichaelFan01/STDC-Seg)"
APACHE_MMSEG = "Apache-2.0 (the LICENSE file of github.com/open-mmlab/mmsegmentation)"

COINCHEUNG_PAGE = "https://github.com/CoinCheung/BiSeNet#readme"
PIDNET_PAGE = "https://github.com/XuJiacong/PIDNet#models"
DDRNET_PAGE = "https://github.com/ydhongHIT/DDRNet#pretrained-models"
STDC_PAGE = "https://github.com/MichaelFan01/STDC-Seg#2-evaluation"
MMSEG_PAGE = "https://github.com/open-mmlab/mmsegmentation/tree/main/configs/{}#cityscapes"
MMSEG_URL = "https://download.openmmlab.com/mmsegmentation/v0.5/{0}/{1}/{1}_{2}.pth"

# The PIDNet README notes its per-file Google Drive links broke with the author's account and points to one
# folder holding every file; the per-file pages are kept as the record of which file is meant.
PIDNET_FOLDER = ("https://drive.google.com/drive/folders/0BySIOtxxULinfjlGdGFiT3NQVUdLVDBxWnhhTjB4VXNBRkFOa281WHl"
                 "kektYY2VBcWVZb1k?resourcekey=0-w0JIXUekD-FCW-Rm1Z-HfQ")
STDC_FOLDER = "https://drive.google.com/drive/folders/1wROFwRt8qWHD4jSo8Zu1gp1d6oYJ3ns1"


@dataclass(frozen=True)
class ZooEntry:
    """One published checkpoint and how segkit runs it."""

    name: str  # <model>_<dataset>
    config: str  # segkit config, relative to configs/
    format: str  # key of segkit.zoo.formats.FORMATS ("<format name>:<segkit variant>")
    url: str  # the file itself when `direct`, else the page that hands it out (Google Drive)
    filename: str  # the published file name (kept in the cache)
    miou: float | None  # published mIoU (percent); None when the source publishes none
    protocol: str  # how the figure was measured: split, input size, scales, flip
    licence: str  # licence of the weights, with where it is stated
    page: str  # the page that publishes the file, the figure and the checksum
    direct: bool = True  # False: `url` is a web page; the file is taken by hand
    sha256: str | None = None  # SHA-256 prefix the source publishes (the openmmlab file names carry one)
    opts: tuple[str, ...] = ()  # config overrides that make the published protocol
    note: str = ""  # what else a user must know (e.g. a moved download)


def _coincheung(version: int, filename: str, config: str, miou: float, ms_flip: float, dataset: str = "cityscapes",
                protocol: str = "val, whole 1024x2048, single scale, Cityscapes mean/std", opts: tuple[str, ...] = (),
                note: str = "") -> ZooEntry:
    # Cityscapes: the config normalises with CoinCheung's Cityscapes mean/std (lib/data/cityscapes_cv2.py), not
    # ImageNet's; the COCO-Stuff and ADE20K entries set that repository's mean/std of those sets through `opts`.
    return ZooEntry(
        name=f"bisenetv{version}_{dataset}", config=config, format=f"coincheung:bisenetv{version}",
        url=f"https://github.com/CoinCheung/BiSeNet/releases/download/0.0.0/{filename}", filename=filename,
        miou=miou, protocol=f"{protocol} ({ms_flip} with --msc --flip)", licence=MIT_COINCHEUNG, page=COINCHEUNG_PAGE,
        opts=opts, note=note,
    )


# CoinCheung/BiSeNet's per-dataset RGB mean/std (lib/data/coco.py, lib/data/ade20k.py).
COCO_NORM = ("INPUT.MEAN", "[0.46962251, 0.4464104, 0.40718787]", "INPUT.STD", "[0.27469736, 0.27012361, 0.28515933]")
ADE_NORM = ("INPUT.MEAN", "[0.4934323, 0.46819794, 0.43106043]", "INPUT.STD", "[0.25680755, 0.25506608, 0.27422913]")
ADE_NOTE = ("CoinCheung's evaluator first resizes each image to a short side of {} px; segkit evaluates ADE20K "
            "images at their stored size, so its figure can differ slightly from the published one")


def _mmseg(model: str, stem: str, stamp: str, config: str, miou: float, ms_flip: float) -> ZooEntry:
    sha = stamp.rsplit("-", 1)[1]
    return ZooEntry(
        name=f"{config}_cityscapes", config=f"cityscapes/{config}.yaml", format=f"mmseg:{config}",
        url=MMSEG_URL.format(model, stem, stamp), filename=f"{stem}_{stamp}.pth", sha256=sha, miou=miou,
        protocol=f"val, whole 1024x2048, single scale ({ms_flip} with mmseg's multi-scale + flip)",
        licence=APACHE_MMSEG, page=MMSEG_PAGE.format(model),
    )


def _stdc(depth: int, res: int, drive_name: str, miou: float) -> ZooEntry:
    scale = res / 100
    return ZooEntry(
        name=f"stdc{depth}_seg{res}_cityscapes", config=f"cityscapes/stdc{depth}_seg{res}.yaml",
        format=f"stdc:stdc{depth}", url=STDC_FOLDER, direct=False,
        filename=drive_name, miou=miou,
        protocol=f"val, 1024x2048 resized by {scale}, single scale",
        licence=MIT_STDC, page=STDC_PAGE,
        note=f"file STDC{depth}-Seg/{drive_name} of the Google Drive folder (also on BaiduYun, password q7dt)",
    )


def _pidnet(size: str, dataset: str, drive_id: str, filename: str, miou: float, protocol: str) -> ZooEntry:
    return ZooEntry(
        name=f"pidnet_{size}_{dataset}", config=f"{dataset}/pidnet_{size}.yaml", format=f"pidnet:pidnet_{size}",
        url=f"https://drive.google.com/file/d/{drive_id}/view", direct=False, filename=filename, miou=miou,
        protocol=protocol, licence=MIT_PIDNET, page=PIDNET_PAGE,
        note=f"if the file page is gone, take {filename} from the folder {PIDNET_FOLDER}",
    )


def _ddrnet(variant: str, drive_id: str, miou: float) -> ZooEntry:
    return ZooEntry(
        name=f"{variant}_cityscapes", config=f"cityscapes/{variant}.yaml", format=f"ddrnet:{variant}",
        url=f"https://drive.google.com/file/d/{drive_id}/view", direct=False, filename=f"{variant}_cityscapes.pth",
        miou=miou, protocol="val, whole 1024x2048, single scale", licence=MIT_DDRNET, page=DDRNET_PAGE,
        note="the README names no file: save the Drive file under the name shown",
    )


PIDNET_CITYSCAPES = "val, whole 1024x2048, single scale"
# The official CamVid files are evaluated on the SegNet test split at the full 960x720 frames (its configs'
# TEST.IMAGE_SIZE); segkit's CamVid preset expects the 480x360 SegNet frames: point DATASET.ROOT at full frames.
PIDNET_CAMVID = "test (SegNet split) at 960x720, single scale; trained on train+val"

ENTRIES: dict[str, ZooEntry] = {e.name: e for e in (
    _coincheung(1, "model_final_v1_city_new.pth", "cityscapes/bisenetv1_r18_coincheung.yaml", 75.44, 77.45),
    _coincheung(2, "model_final_v2_city.pth", "cityscapes/bisenetv2_coincheung.yaml", 74.95, 76.53),
    _coincheung(1, "model_final_v1_coco_new.pth", "cocostuff164k/bisenetv1_r18.yaml", 31.49, 32.46, "cocostuff164k",
                "val2017, whole image, single scale, COCO mean/std", COCO_NORM),
    _coincheung(2, "model_final_v2_coco.pth", "cocostuff164k/bisenetv2.yaml", 30.49, 31.81, "cocostuff164k",
                "val2017, whole image, single scale, COCO mean/std", COCO_NORM),
    _coincheung(1, "model_final_v1_ade20k.pth", "ade20k/bisenetv1_r18.yaml", 36.15, 37.27, "ade20k",
                "val, short side 512, single scale, ADE20K mean/std", ADE_NORM, ADE_NOTE.format(512)),
    _coincheung(2, "model_final_v2_ade20k.pth", "ade20k/bisenetv2.yaml", 32.53, 33.23, "ade20k",
                "val, short side 640, single scale, ADE20K mean/std", ADE_NORM, ADE_NOTE.format(640)),
    _pidnet("s", "cityscapes", "1JakgBam_GrzyUMp-NbEVVBPEIXLSCssH", "PIDNet_S_Cityscapes_val.pt", 78.8,
            PIDNET_CITYSCAPES),
    _pidnet("m", "cityscapes", "1q0i4fVWmO7tpBKq_eOyIXe-mRf_hIS7q", "PIDNet_M_Cityscapes_val.pt", 79.9,
            PIDNET_CITYSCAPES),
    _pidnet("l", "cityscapes", "1AR8LHC3613EKwG23JdApfTGsyOAcH0_L", "PIDNet_L_Cityscapes_val.pt", 80.9,
            PIDNET_CITYSCAPES),
    # The official CamVid files number the classes alphabetically; the PIDNet format's converter puts them in
    # segkit's CamVid (SegNet) order.
    _pidnet("s", "camvid", "1h3IaUpssCnTWHiPEUkv-VgFmj86FkY3J", "PIDNet_S_Camvid_Test.pt", 80.1, PIDNET_CAMVID),
    _pidnet("m", "camvid", "1rNGTc8LD42h8G3HaedtqwS0un4_-gEbB", "PIDNet_M_Camvid_Test.pt", 82.0, PIDNET_CAMVID),
    _ddrnet("ddrnet_23_slim", "1d_K3Af5fKHYwxSo8HkxpnhiekhwovmiP", 77.8),
    _ddrnet("ddrnet_23", "16viDZhbmuc3y7OSsUo2vhA7V6kYO0KX6", 79.5),
    _stdc(1, 50, "model_maxmIOU50.pth", 72.22),
    _stdc(1, 75, "model_maxmIOU75.pth", 74.50),
    _stdc(2, 50, "model_maxmIOU50.pth", 74.24),
    _stdc(2, 75, "model_maxmIOU75.pth", 77.04),
    _mmseg("fcn", "fcn_r50-d8_512x1024_80k_cityscapes", "20200606_113019-03aa804d", "fcn_r50_d8", 73.61, 74.24),
    _mmseg("pspnet", "pspnet_r50-d8_512x1024_80k_cityscapes", "20200606_112131-2376f12b", "pspnet_r50_d8",
           78.55, 79.79),
    _mmseg("deeplabv3plus", "deeplabv3plus_r50-d8_512x1024_80k_cityscapes", "20200606_114049-f9fb496d",
           "deeplabv3plus_r50_d8", 80.09, 81.13),
)}


def get_entry(name: str) -> ZooEntry:
    """The entry called `name`; an unknown name is an error listing the known ones."""
    if name not in ENTRIES:
        raise KeyError(f"no zoo entry '{name}'; known: {', '.join(sorted(ENTRIES))} (python tools/zoo.py list)")
    return ENTRIES[name]
