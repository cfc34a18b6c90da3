"""Generated regions in Markdown files: the text between

    <!-- generated: NAME (make docs) -->
    ...
    <!-- end generated: NAME -->

(each marker on a line of its own) belongs to the generator's block NAME and is rewritten by
`make docs`; everything else is typed.
"""
import re
from typing import Callable, Dict, List

# Markers stand on lines of their own (so that docs can quote them inline).
_REGION = re.compile(r"^(<!-- generated: (?P<name>[\w-]+) \(make docs\) -->\n)(?P<body>.*?)"
                     r"^(<!-- end generated: (?P=name) -->)$", re.DOTALL | re.MULTILINE)
_OPENING = re.compile(r"^<!-- generated: ([\w-]+)", re.MULTILINE)


class MarkerError(ValueError):
    """A region without its end marker, or a name the generator has no block for."""


def region_names(text: str) -> List[str]:
    """The names of the generated regions in text, in order."""
    names = [m.group("name") for m in _REGION.finditer(text)]
    opened = _OPENING.findall(text)
    if opened != names:
        unclosed = [n for n in opened if n not in names] or opened
        raise MarkerError(f"generated region(s) {unclosed} have no matching "
                          "'<!-- end generated: NAME -->' line, or a malformed opening line")
    return names


def fill_regions(text: str, blocks: Dict[str, Callable[[], str]]) -> str:
    """text with each region's body replaced by its block's output (ending in a newline)."""
    unknown = sorted(set(region_names(text)) - blocks.keys())
    if unknown:
        raise MarkerError(f"no generator block named {unknown}; known blocks: {sorted(blocks)}")

    def body(match):
        generated = blocks[match.group("name")]().rstrip("\n") + "\n"
        return match.group(1) + generated + match.group(4)
    return _REGION.sub(body, text)
