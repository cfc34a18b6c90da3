"""Rewrite (or, with --check, verify) the generated regions of README.md and docs/*.md."""
import argparse
import glob
import os
import sys
from typing import Dict, List

from .blocks import BLOCKS, REPO
from .markers import fill_regions, region_names


def markdown_files(root: str = REPO) -> List[str]:
    """README.md, CONTRIBUTING.md, CHANGELOG.md and docs/*.md, relative to root."""
    top = [name for name in ("README.md", "CONTRIBUTING.md", "CHANGELOG.md")
           if os.path.exists(os.path.join(root, name))]
    return top + sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "docs", "*.md")))


def generated(root: str = REPO) -> Dict[str, str]:
    """{path: its text with every region regenerated}, for the files that have regions."""
    texts = {}
    for path in markdown_files(root):
        with open(os.path.join(root, path), encoding="utf-8") as f:
            text = f.read()
        if region_names(text):
            texts[path] = (text, fill_regions(text, BLOCKS))
    return texts


def main(argv=None, root: str = REPO) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.docs", description=__doc__)
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if any generated region differs")
    args = parser.parse_args(argv)
    stale = []
    for path, (old, new) in generated(root).items():
        if old == new:
            continue
        stale.append(path)
        if not args.check:
            with open(os.path.join(root, path), "w", encoding="utf-8") as f:
                f.write(new)
    if args.check and stale:
        print(f"generated regions out of date in {', '.join(stale)}: run `make docs`", file=sys.stderr)
        return 1
    print(("rewrote " + ", ".join(stale)) if stale else "generated regions up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
