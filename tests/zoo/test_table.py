"""The README's table of pretrained models is what `tools/zoo.py list --format github` prints."""
import os

from torch import nn

from segkit.config import get_cfg
from segkit.zoo import backbone_label, zoo_table

README = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "README.md")


def test_readme_table_is_the_tool_output(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path))  # nothing cached, as for a reader
    with open(README, encoding="utf-8") as f:
        readme = f.read()
    section = readme.split("## Pretrained models", 1)[1].split("\n## ", 1)[0]
    assert zoo_table("github") in section, "README: paste `python tools/zoo.py list --format github` (empty cache)"


def test_backbone_label_is_the_backbone_else_the_variant_else_own_stem():
    cfg = get_cfg()
    cfg.MODEL.BACKBONE.NAME, cfg.MODEL.VARIANT = "resnet18", ""
    with_backbone = nn.Module()
    with_backbone.backbone = nn.Identity()
    assert backbone_label(cfg, with_backbone) == "resnet18"
    assert backbone_label(cfg, nn.Identity()) == "own stem"  # BACKBONE.NAME is a default the model never read
    cfg.MODEL.VARIANT = "pidnet_s"
    assert backbone_label(cfg, nn.Identity()) == "pidnet_s"
