"""Reading Markdown the way GitHub renders it, as far as the docs tools need: which lines are
prose (not inside a fenced code block)."""
import re
from typing import Iterator, Tuple

_FENCE = re.compile(r"^\s{0,3}(```|~~~)")


def prose_lines(markdown: str) -> Iterator[Tuple[int, str]]:
    """(line number from 1, line) of every line outside fenced code blocks (fences excluded)."""
    fenced = False
    for number, line in enumerate(markdown.splitlines(), start=1):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            yield number, line
