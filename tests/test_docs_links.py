"""Every relative link and #anchor in README.md, CONTRIBUTING.md, CHANGELOG.md and docs/*.md
resolves (tools/docs/links.py), and the checker itself finds what is broken."""
import os

from tools.docs.__main__ import markdown_files
from tools.docs.blocks import REPO
from tools.docs.links import broken_links, links


def test_every_relative_link_and_anchor_in_the_docs_resolves():
    files = markdown_files()
    assert "README.md" in files and "docs/reference.md" in files
    assert broken_links(REPO, files) == []


def test_the_docs_link_to_each_other():
    """Each docs page is reachable from the README."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        targets = {target.partition("#")[0] for _, target in links(f.read())}
    pages = {p for p in markdown_files() if p.startswith("docs/")}
    assert pages <= targets


def test_broken_links_are_found(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text(
        "# Top\n## Speed\n## Speed\n"
        "[ok](#speed-1) [bad anchor](#speed-2) [ok page](docs/a.md#the-a-page)\n"
        "[no file](docs/missing.md) [bad anchor there](docs/a.md#nope) ![img](missing.png)\n"
        "[outside](../x.md) [web](https://example.com/#x) `[code](not/a/link.md)`\n"
        "```\n[in a code block](nowhere.md)\n```\n", encoding="utf-8")
    (tmp_path / "docs" / "a.md").write_text("# The `a` page\n[back](../README.md#top)\n", encoding="utf-8")
    problems = broken_links(str(tmp_path), ["README.md", "docs/a.md"])
    assert problems == [
        "README.md:4: #speed-2: no heading with anchor #speed-2 in README.md",
        "README.md:5: docs/missing.md: no file docs/missing.md",
        "README.md:5: docs/a.md#nope: no heading with anchor #nope in docs/a.md",
        "README.md:5: missing.png: no file missing.png",
        "README.md:6: ../x.md: points outside the repository",
    ]
