"""Procedural street scenes written in the Cityscapes layout: the demo dataset that needs no download.

Each scene is drawn back to front with OpenCV into an image and a labelIds map at once: sky, a skyline
of buildings with windows, a road in perspective with lane marks, sidewalks, terrain, trees, poles
with signs, cars and pedestrians scaled by their depth, sometimes the ego vehicle's bonnet (ignored).
Colours vary per object, and texture noise, lighting gradients and exposure vary per image, so a model
must use shape and context, not a colour lookup, yet the big classes are learnable on small crops.
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from ..utils.io import atomic_folder, build_folder_once
from ..utils.progress import progress
from .cityscapes import label_id_to_train_id

# Cityscapes labelIds used by the scenes.
SKY, BUILDING, VEGETATION, TERRAIN, ROAD, SIDEWALK = 23, 11, 21, 22, 7, 8
POLE, SIGN, CAR, PERSON, EGO = 17, 20, 26, 24, 1
TRAIN_CITIES = ("aachen", "bochum", "cologne")
VAL_CITIES = ("frankfurt", "lindau")

# Base BGR colours; every object gets a random offset around its class colour.
_BASE = {SKY: (200, 160, 120), BUILDING: (110, 110, 120), VEGETATION: (50, 120, 60), TERRAIN: (90, 170, 140),
         ROAD: (95, 90, 90), SIDEWALK: (150, 140, 170), POLE: (140, 140, 140), SIGN: (20, 200, 220),
         PERSON: (60, 40, 170), EGO: (40, 40, 40)}


def _colour(rng: np.random.Generator, cls: int, spread: float = 25) -> tuple[int, ...]:
    base = np.array(_BASE[cls], dtype=np.float64) + rng.normal(0, spread, 3)
    return tuple(int(v) for v in np.clip(base, 0, 255))


def _fill(img, lab, pts, cls, colour) -> None:
    poly = [np.round(np.asarray(pts, dtype=np.float64)).astype(np.int32)]
    cv2.fillPoly(img, poly, colour)
    cv2.fillPoly(lab, poly, cls)


def _rect(img, lab, x0, y0, x1, y1, cls, colour) -> None:
    _fill(img, lab, [(x0, y0), (x1, y0), (x1, y1), (x0, y1)], cls, colour)


def render_scene(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One street scene: BGR uint8 image and uint8 Cityscapes labelIds of the same size."""
    h, w = height, width
    img = np.zeros((h, w, 3), np.uint8)
    lab = np.zeros((h, w), np.uint8)
    vy = h * rng.uniform(0.38, 0.5)  # horizon
    vx = w * rng.uniform(0.35, 0.65)  # vanishing point

    # Sky with a vertical gradient.
    sky = np.array(_colour(rng, SKY, 20), np.float32)
    ramp = np.linspace(0.85, 1.15, h, dtype=np.float32)[:, None, None]
    img[:] = np.clip(sky * ramp, 0, 255).astype(np.uint8)
    lab[:] = SKY

    # Skyline: blocks get taller away from the vanishing point (closer to the camera).
    x = 0.0
    while x < w:
        bw = w * rng.uniform(0.08, 0.22)
        dist = abs(x + bw / 2 - vx) / w
        top = vy - h * (0.08 + 0.9 * dist) * rng.uniform(0.6, 1.3)
        col = _colour(rng, BUILDING, 30)
        _rect(img, lab, x, top, x + bw, vy + 2, BUILDING, col)
        win = tuple(int(c * rng.uniform(0.4, 0.7)) if rng.random() < 0.7 else min(255, int(c * 1.6)) for c in col)
        step = max(4.0, bw / rng.integers(3, 6))
        for wx in np.arange(x + step * 0.3, x + bw - step * 0.5, step):
            for wy in np.arange(top + step * 0.4, vy - step * 0.6, step * 1.2):
                cv2.rectangle(img, (int(wx), int(wy)), (int(wx + step * 0.45), int(wy + step * 0.55)), win, -1)
        x += bw

    # Ground: terrain or building base beside the sidewalks, then sidewalks and road in perspective.
    side_cls = BUILDING if rng.random() < 0.5 else TERRAIN
    _rect(img, lab, 0, vy, w, h, side_cls, _colour(rng, side_cls))
    road_l, road_r = w * rng.uniform(-0.25, 0.15), w * rng.uniform(0.85, 1.25)
    walk = w * rng.uniform(0.25, 0.45)
    for a, b in ((road_l - walk, road_l), (road_r, road_r + walk)):
        _fill(img, lab, [(vx, vy), (a, h), (b, h)], SIDEWALK, _colour(rng, SIDEWALK))
    _fill(img, lab, [(vx - 1, vy), (vx + 1, vy), (road_r, h), (road_l, h)], ROAD, _colour(rng, ROAD, 15))
    mark = (200, 200, 200)
    for t0 in np.arange(0.05, 1.0, 0.12):  # dashed centre line; markings are road
        t1 = t0 + 0.05
        xm, dw = (road_l + road_r) / 2, w * 0.006
        pts = [(vx + (xm - vx) * t - dw * t * 3, vy + (h - vy) * t) for t in (t0, t1)]
        pts += [(vx + (xm - vx) * t + dw * t * 3, vy + (h - vy) * t) for t in (t1, t0)]
        cv2.fillPoly(img, [np.int32(pts)], mark)

    def on_line(edge_x: float, t: float) -> tuple[float, float]:
        return vx + (edge_x - vx) * t, vy + (h - vy) * t

    # Trees and poles along the outer sidewalk edges, far to near.
    items = []
    for edge in (road_l - walk * 0.5, road_r + walk * 0.5):
        for _ in range(rng.integers(1, 4)):
            items.append((rng.uniform(0.15, 1.0), edge, "tree" if rng.random() < 0.55 else "pole"))
    for t, edge, kind in sorted(items):
        bx, by = on_line(edge, t)
        if kind == "tree":
            trunk_h, r = h * 0.35 * t, h * rng.uniform(0.12, 0.22) * t + 3
            _rect(img, lab, bx - r * 0.12, by - trunk_h, bx + r * 0.12, by, VEGETATION, (40, 60, 80))
            cv2.ellipse(img, (int(bx), int(by - trunk_h)), (int(r), int(r * 1.2)), 0, 0, 360,
                        _colour(rng, VEGETATION, 20), -1)
            cv2.ellipse(lab, (int(bx), int(by - trunk_h)), (int(r), int(r * 1.2)), 0, 0, 360, VEGETATION, -1)
        else:
            ph, pw = h * 0.6 * t, max(2.0, w * 0.012 * t)
            _rect(img, lab, bx - pw, by - ph, bx + pw, by, POLE, _colour(rng, POLE))
            s = max(3.0, w * 0.035 * t)
            _rect(img, lab, bx - s, by - ph, bx + s, by - ph + 1.6 * s, SIGN, _colour(rng, SIGN, 30))

    # Cars on the road and pedestrians on the sidewalks, far to near so near ones occlude.
    agents = [(rng.uniform(0.2, 1.05), "car") for _ in range(rng.integers(1, 5))]
    agents += [(rng.uniform(0.25, 1.0), "person") for _ in range(rng.integers(0, 4))]
    for t, kind in sorted(agents):
        if kind == "car":
            lane = rng.uniform(0.2, 0.8)
            cx, by = on_line(road_l + (road_r - road_l) * lane, t)
            cw, ch = w * 0.3 * t, h * 0.22 * t
            body = tuple(int(v) for v in rng.integers(20, 230, 3))
            _rect(img, lab, cx - cw / 2, by - ch * 0.6, cx + cw / 2, by - ch * 0.1, CAR, body)
            _fill(img, lab, [(cx - cw * 0.35, by - ch * 0.6), (cx - cw * 0.25, by - ch),
                             (cx + cw * 0.25, by - ch), (cx + cw * 0.35, by - ch * 0.6)], CAR,
                  tuple(int(v * 0.8) for v in body))
            glass = (int(90 + 60 * rng.random()),) * 3
            cv2.rectangle(img, (int(cx - cw * 0.22), int(by - ch * 0.92)), (int(cx + cw * 0.22), int(by - ch * 0.65)),
                          glass, -1)
            for wx in (cx - cw * 0.32, cx + cw * 0.32):
                cv2.circle(img, (int(wx), int(by - ch * 0.12)), max(1, int(ch * 0.14)), (25, 25, 25), -1)
                cv2.circle(lab, (int(wx), int(by - ch * 0.12)), max(1, int(ch * 0.14)), CAR, -1)
        else:
            edge = road_l - walk * 0.3 if rng.random() < 0.5 else road_r + walk * 0.3
            px, by = on_line(edge, t)
            ph = h * 0.5 * t
            pw = ph * 0.16
            clothes = _colour(rng, PERSON, 45)
            _rect(img, lab, px - pw, by - ph * 0.82, px + pw, by - ph * 0.4, PERSON, clothes)
            _rect(img, lab, px - pw * 0.8, by - ph * 0.4, px + pw * 0.8, by, PERSON, (60, 50, 40))
            cv2.circle(img, (int(px), int(by - ph * 0.9)), max(1, int(ph * 0.09)), (120, 150, 200), -1)
            cv2.circle(lab, (int(px), int(by - ph * 0.9)), max(1, int(ph * 0.09)), PERSON, -1)

    if rng.random() < 0.3:  # ego vehicle bonnet: ignored by evaluation, as in Cityscapes
        _fill(img, lab, [(0, h), (w * 0.1, h * 0.92), (w * 0.9, h * 0.92), (w, h)], EGO, _colour(rng, EGO, 10))

    # Texture, lighting and exposure: low-frequency shading, a side light, pixel noise.
    coarse = cv2.resize(rng.standard_normal((max(2, h // 24), max(2, w // 24)), dtype=np.float32), (w, h))
    light = np.linspace(rng.uniform(0.7, 1.0), rng.uniform(1.0, 1.3), w, dtype=np.float32)[None, :]
    gain = (np.float32(rng.uniform(0.75, 1.25)) * light * (1 + 0.12 * coarse))[..., None]
    noise = rng.standard_normal((h, w, 1), dtype=np.float32) * np.float32(rng.uniform(4, 12))
    out = img.astype(np.float32) * gain + noise
    return cv2.GaussianBlur(cv2.convertScaleAbs(out), (3, 3), 0), lab  # convertScaleAbs: saturating cast


def _write(args: tuple) -> None:
    root, split, city, index, seed, size = args
    rng = np.random.default_rng([seed, 0 if split == "train" else 1, index])
    img, lab = render_scene(rng, size[0], size[1])
    name = f"{city}_{index:06d}_000019"
    idir, ldir = (os.path.join(root, d, split, city) for d in ("leftImg8bit", "gtFine"))
    cv2.imwrite(os.path.join(idir, f"{name}_leftImg8bit.png"), img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    cv2.imwrite(os.path.join(ldir, f"{name}_gtFine_labelIds.png"), lab)
    train_ids = label_id_to_train_id().astype(np.uint8)[lab]
    cv2.imwrite(os.path.join(ldir, f"{name}_gtFine_labelTrainIds.png"), train_ids)


def generate_demo_dataset(root: str, size: tuple[int, int] = (256, 512), num_train: int = 120, num_val: int = 30,
                          seed: int = 0, workers: int = 4) -> str:
    """Write the demo dataset at `root` atomically (built in a sibling temp folder, then renamed).

    If `root` appears meanwhile (another rank won the race), the own copy is dropped. Returns `root`.
    """
    with atomic_folder(root) as folder:
        _write_demo_dataset(folder, size, num_train, num_val, seed, workers)
    return root


def _write_demo_dataset(root: str, size: tuple[int, int], num_train: int, num_val: int, seed: int,
                        workers: int = 4) -> None:
    """The demo dataset written straight into the folder `root` (the callers make that atomic)."""
    if len(size) != 2 or min(size) < 32:
        raise ValueError(f"DATASET.DEMO_SIZE must be [height, width] of at least 32, got {list(size)}")
    jobs = []
    for split, count, cities in (("train", num_train, TRAIN_CITIES), ("val", num_val, VAL_CITIES)):
        for city in cities:
            for d in ("leftImg8bit", "gtFine"):
                os.makedirs(os.path.join(root, d, split, city), exist_ok=True)
        jobs += [(root, split, cities[i % len(cities)], i, seed, tuple(size)) for i in range(count)]
    with ThreadPoolExecutor(max_workers=workers) as pool:  # OpenCV drawing/encoding drops the GIL
        list(progress(pool.map(_write, jobs), "demo data", total=len(jobs), unit="img", every_s=15.0))


def ensure_demo_dataset(cfg) -> None:
    """Generate the demo dataset at DATASET.ROOT when DATASET.GENERATE_DEMO is on and ROOT is missing.

    `build_dataset` calls it, so a demo config's dataset generates itself on first use. Processes that
    build it together (torchrun ranks, tools started side by side) take a file lock beside ROOT: one
    generates, the others wait and then find the finished folder.
    """
    d = cfg.DATASET
    if not d.GENERATE_DEMO:
        return

    def build(folder: str) -> None:
        logging.getLogger("segkit").info("generating the demo segmentation dataset at %s", d.ROOT)
        _write_demo_dataset(folder, tuple(d.DEMO_SIZE), d.DEMO_NUM_TRAIN, d.DEMO_NUM_VAL, cfg.SEED)

    build_folder_once(d.ROOT, build)
