"""The generated regions of the committed docs equal what `make docs` writes now: a number typed
into a table, a stale benchmark figure, a docstring changed without `make docs`, or a smoke-test
output that no longer matches fails here (tools/docs/blocks.py, __main__.py)."""
import difflib

from tools.docs.__main__ import generated, main
from tools.docs.blocks import BLOCKS
from tools.docs.markers import region_names


def test_every_generated_region_is_what_make_docs_writes():
    stale = {path: "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                                f"{path} (committed)", f"{path} (make docs)"))
             for path, (old, new) in generated().items() if old != new}
    assert not stale, "run `make docs`:\n" + "\n".join(stale.values())


def test_every_block_appears_in_the_docs():
    used = {name for old, _ in generated().values() for name in region_names(old)}
    assert used == set(BLOCKS)


def test_check_mode_fails_on_a_typed_number(tmp_path):
    """--check exits 1 when a generated number was edited by hand, and the default mode repairs it."""
    readme = tmp_path / "README.md"
    readme.write_text("# T\n<!-- generated: example-time (make docs) -->\n"
                      + BLOCKS["example-time"]() + "\n<!-- end generated: example-time -->\n",
                      encoding="utf-8")
    root = str(tmp_path)
    assert main(["--check"], root) == 0
    good = readme.read_text(encoding="utf-8")
    readme.write_text(good.replace(" min ", " min 1", 1), encoding="utf-8")
    assert main(["--check"], root) == 1
    assert main([], root) == 0
    assert readme.read_text(encoding="utf-8") == good
