"""GitHub's heading anchors: the #fragment a Markdown heading gets when GitHub renders the file.

GitHub (github-slugger) takes a heading's rendered text, lower-cases it, removes every character
that is not a letter, a mark, a decimal or letter number, '_', '-' or a space, then turns each
space into '-' (one for one: "a – b" gives "a--b"). A repeated slug gets -1, -2, … in order.

    github_slug("The softmax form: `SoftmaxFocalLossLayer`")  -> "the-softmax-form-softmaxfocallosslayer"
    github_slug("γ and α")                                    -> "γ-and-α"
"""
import re
import unicodedata
from typing import Iterator, List, Tuple

from .markdown import prose_lines

_KEPT_CATEGORIES = ("L", "M", "Nd", "Nl", "Pc")
_ATX_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_HTML_TAG = re.compile(r"<[^>]+>")


def github_slug(text: str) -> str:
    """The slug of one heading's text (before numbering duplicates)."""
    kept = (ch for ch in _rendered(text).strip().lower()
            if ch in " -" or unicodedata.category(ch).startswith(_KEPT_CATEGORIES))
    return "".join(kept).replace(" ", "-")


def _rendered(text: str) -> str:
    """The heading as GitHub shows it: link text without its target, no HTML tags. Markup
    characters (` * _ ~) need no removal: the slug drops ` * ~ and keeps _, as GitHub does
    for the text inside inline code."""
    return _HTML_TAG.sub("", _LINK.sub(r"\1", text))


def headings(markdown: str) -> Iterator[Tuple[int, int, str]]:
    """(line number, level, text) of each ATX heading outside fenced code blocks."""
    for number, line in prose_lines(markdown):
        match = _ATX_HEADING.match(line)
        if match:
            yield number, len(match.group(1)), match.group(2)


def anchors(markdown: str) -> List[str]:
    """Every heading's anchor in document order, duplicates numbered as GitHub numbers them."""
    seen = {}
    result = []
    for _, _, text in headings(markdown):
        slug = github_slug(text)
        anchor = slug
        while anchor in seen:
            seen[slug] += 1
            anchor = f"{slug}-{seen[slug]}"
        seen[anchor] = 0
        result.append(anchor)
    return result
