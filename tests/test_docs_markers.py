"""Generated regions (tools/docs/markers.py)."""
import pytest

from tools.docs.markers import MarkerError, fill_regions, region_names

BLOCKS = {"a": lambda: "new A", "b": lambda: "new B\n"}


def test_regions_are_filled_and_the_rest_is_kept():
    text = ("intro\n<!-- generated: a (make docs) -->\nold\nlines\n<!-- end generated: a -->\n"
            "middle `<!-- generated: b (make docs) -->` quoted inline\n"
            "<!-- generated: b (make docs) -->\n<!-- end generated: b -->\nend\n")
    assert region_names(text) == ["a", "b"]
    assert fill_regions(text, BLOCKS) == (
        "intro\n<!-- generated: a (make docs) -->\nnew A\n<!-- end generated: a -->\n"
        "middle `<!-- generated: b (make docs) -->` quoted inline\n"
        "<!-- generated: b (make docs) -->\nnew B\n<!-- end generated: b -->\nend\n")


def test_filling_twice_changes_nothing():
    text = "<!-- generated: a (make docs) -->\n<!-- end generated: a -->\n"
    once = fill_regions(text, BLOCKS)
    assert fill_regions(once, BLOCKS) == once


@pytest.mark.parametrize("text, message", [
    ("<!-- generated: a (make docs) -->\nno end\n", "no matching"),
    ("<!-- generated: a (make docs) -->\n<!-- end generated: b -->\n", "no matching"),
    ("<!-- generated: zzz (make docs) -->\n<!-- end generated: zzz -->\n", "no generator block named ['zzz']"),
])
def test_malformed_or_unknown_regions_are_refused(text, message):
    with pytest.raises(MarkerError, match=message.replace("[", r"\[").replace("]", r"\]")):
        fill_regions(text, BLOCKS)
