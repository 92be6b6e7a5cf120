"""Every config file trains into its own OUTPUT_DIR, so two recipes run one after the other never meet in one
folder (the second would be refused as a run over a run) and the README's paths are where the runs write."""
import glob
import os

from segkit.config import get_cls_cfg, load_cfg

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLS_DIRS = ("imagenet", "imagenette")


def _is_cls(path: str) -> bool:
    rel = os.path.relpath(path, os.path.join(ROOT, "configs"))
    return rel.split(os.sep)[0] in CLS_DIRS or os.path.basename(path).startswith("pretrain")


def test_every_config_has_its_own_output_dir():
    owners: dict[str, list[str]] = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "configs", "**", "*.yaml"), recursive=True)):
        if f"{os.sep}_base_{os.sep}" in path:
            continue
        cfg = load_cfg(path, defaults=get_cls_cfg) if _is_cls(path) else load_cfg(path)
        owners.setdefault(os.path.normpath(cfg.OUTPUT_DIR), []).append(os.path.relpath(path, ROOT))
    assert len(owners) > 60
    shared = {out: paths for out, paths in owners.items() if len(paths) > 1}
    assert not shared, f"configs writing into one OUTPUT_DIR: {shared}"
    assert "output" not in owners  # the default: a config that names none
