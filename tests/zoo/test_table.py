"""The README's table of pretrained models is what `tools/zoo.py list --format github` prints."""
import os

from segkit.zoo import zoo_table

README = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "README.md")


def test_readme_table_is_the_tool_output(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path))  # nothing cached, as for a reader
    with open(README, encoding="utf-8") as f:
        readme = f.read()
    section = readme.split("## Pretrained models", 1)[1].split("\n## ", 1)[0]
    assert zoo_table("github") in section, "README: paste `python tools/zoo.py list --format github` (empty cache)"
