"""The README stays a front door: short, with the sections a newcomer looks for first."""
import os

from tools.docs.blocks import REPO
from tools.docs.slugs import anchors


def _readme():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        return f.read()


def test_readme_is_at_most_250_lines():
    assert len(_readme().splitlines()) <= 250


def test_readme_has_the_front_door_sections_in_order():
    found = anchors(_readme())
    wanted = ["quick-start", "set-up", "parameters", "blobs-and-labels", "retinanet-recipe",
              "which-layer-to-pick", "limitations", "checked-and-fast", "documentation"]
    assert [a for a in found if a in wanted] == wanted
