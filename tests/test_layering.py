"""The package layering, checked from the source: every import between segkit's packages points down.

utils at the bottom, then config; data and models; losses, solver and the zoo of published weights; evaluation; deployment and the
training engine (the trainer base and the segmentation trainer); pretraining, a subclass of the engine's
trainer, on top. Packages of one layer do not import each other
either, so each can be read (and tested) with only the layers below it.
"""
from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "segkit")

LAYERS = {
    "utils": 0,
    "config": 1,
    "data": 2,
    "models": 2,
    "losses": 3,
    "solver": 3,
    "zoo": 3,  # resolves weights for models it builds (models, data); deploy and engine load through it
    "evaluation": 4,
    "deploy": 5,
    "engine": 5,
    "pretrain": 6,
}


def _modules() -> list[str]:
    out = []
    for dirpath, _, files in os.walk(ROOT):
        out += [os.path.join(dirpath, f) for f in files if f.endswith(".py")]
    return sorted(out)


def _package_of(path: str) -> str | None:
    parts = os.path.relpath(path, ROOT).split(os.sep)
    return parts[0] if len(parts) > 1 else None  # segkit/__init__.py sits above every layer


def _imported_packages(path: str) -> set[str]:
    """The top-level segkit packages a module imports, relative or absolute."""
    rel_parts = os.path.relpath(path, ROOT).split(os.sep)[:-1]  # the module's package path inside segkit
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
        names: list[list[str]] = []
        if isinstance(node, ast.ImportFrom):
            module = (node.module or "").split(".") if node.module else []
            if node.level:
                base = rel_parts[: len(rel_parts) - (node.level - 1)]
                target = base + module
                names.append(target if target else [a.name for a in node.names][:1])
            elif module and module[0] == "segkit":
                names.append(module[1:] or [a.name for a in node.names][:1])
        elif isinstance(node, ast.Import):
            names += [a.name.split(".")[1:] for a in node.names if a.name.split(".")[0] == "segkit"]
        found |= {n[0] for n in names if n and n[0] in LAYERS}
    return found


def test_every_package_has_a_layer():
    packages = {d for d in os.listdir(ROOT) if os.path.isfile(os.path.join(ROOT, d, "__init__.py"))}
    assert packages <= set(LAYERS), f"give {sorted(packages - set(LAYERS))} a layer in LAYERS"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: os.path.relpath(p, ROOT))
def test_imports_point_down(path):
    own = _package_of(path)
    if own is None:
        return
    upward = sorted(p for p in _imported_packages(path) if p != own and LAYERS[p] >= LAYERS[own])
    assert not upward, f"{os.path.relpath(path, ROOT)} ({own}, layer {LAYERS[own]}) imports {upward}"


def test_the_checker_sees_relative_and_absolute_imports(tmp_path):
    pkg = tmp_path / "segkit" / "data"
    pkg.mkdir(parents=True)
    mod = pkg / "x.py"
    mod.write_text("from ..engine.seg_trainer import SegTrainer\nimport segkit.pretrain.trainer\nfrom . import folder\n")
    global ROOT
    old, ROOT = ROOT, str(tmp_path / "segkit")
    try:
        assert _imported_packages(str(mod)) == {"engine", "pretrain", "data"}
    finally:
        ROOT = old
