"""Relative links in Markdown files, and which of them do not resolve.

A link resolves when its path (relative to the linking file) exists in the repository and its
#anchor, if any, is a heading anchor of the target Markdown file (slugs.anchors). Links to other
sites (http:, https:, mailto:) are not followed. Code (fenced blocks, `inline`) holds no links.
"""
import os
import re
from typing import Dict, Iterator, List, Tuple
from urllib.parse import unquote

from .markdown import prose_lines
from .slugs import anchors

_INLINE_CODE = re.compile(r"(`+).*?\1")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def links(markdown: str) -> Iterator[Tuple[int, str]]:
    """(line number, target) of every inline link and image outside code."""
    for number, line in prose_lines(markdown):
        for match in _LINK.finditer(_INLINE_CODE.sub("", line)):
            yield number, match.group(1)


def broken_links(root: str, paths: List[str]) -> List[str]:
    """'file:line: target: why' for each relative link in paths (relative to root) that does not
    resolve; empty when all do."""
    problems = []
    anchor_cache: Dict[str, List[str]] = {}
    for path in paths:
        with open(os.path.join(root, path), encoding="utf-8") as f:
            text = f.read()
        for line, target in links(text):
            if _EXTERNAL.match(target):
                continue
            why = _why_broken(root, path, target, text, anchor_cache)
            if why:
                problems.append(f"{path}:{line}: {target}: {why}")
    return problems


def _why_broken(root, path, target, text, anchor_cache) -> str:
    file_part, _, fragment = target.partition("#")
    if file_part:
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), unquote(file_part)))
        if resolved.startswith(".."):
            return "points outside the repository"
        if not os.path.exists(os.path.join(root, resolved)):
            return f"no file {resolved}"
    else:
        resolved = path
    if not fragment:
        return ""
    if not resolved.endswith(".md"):
        return f"an #anchor into {resolved}, which is not Markdown"
    if resolved not in anchor_cache:
        if resolved == path:
            anchor_cache[resolved] = anchors(text)
        else:
            with open(os.path.join(root, resolved), encoding="utf-8") as f:
                anchor_cache[resolved] = anchors(f.read())
    if unquote(fragment) not in anchor_cache[resolved]:
        return f"no heading with anchor #{fragment} in {resolved}"
    return ""
