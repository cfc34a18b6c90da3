"""What the user sees while `make example` runs: one line per stage, and during training one
progress bar per run, redrawn in place on a terminal, a few plain lines otherwise (CI, tests)."""
import os
import sys
import time

BAR_WIDTH = 30
# Off a terminal, a line at each quarter of the run instead of a redrawn bar.
PLAIN_STEPS = 4


def stage(text: str) -> None:
    print(f"\n== {text}", flush=True)


def note(text: str) -> None:
    print(f"   {text}", flush=True)


def shown(path: str) -> str:
    """A path as the user best reads it: relative below the working directory, else absolute."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


class ProgressBar:
    """`title [#####.....] 1200/2000  loss 0.0123  8s`, for iterations 0..total."""

    def __init__(self, title: str, total: int, stream=None, quiet: bool = False):
        """quiet: the finishing line only (runs side by side would garble each other's bars)."""
        self.title, self.total = title, max(total, 1)
        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.redraw = self.stream.isatty() and not quiet
        self.started = time.monotonic()
        self.next_plain_step = 0

    def update(self, iteration: int, loss: float) -> None:
        done = min(iteration, self.total) / self.total
        if self.quiet:
            return
        if self.redraw:
            self.stream.write("\r" + self._line(iteration, loss, done))
            self.stream.flush()
        elif done * PLAIN_STEPS >= self.next_plain_step:
            self.stream.write(self._line(iteration, loss, done) + "\n")
            self.stream.flush()
            self.next_plain_step = int(done * PLAIN_STEPS) + 1

    def finish(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        clear_line = "\r\033[K" if self.redraw else ""
        self.stream.write(f"{clear_line}   {self.title}  {text}  ({elapsed:.0f}s)\n")
        self.stream.flush()

    def _line(self, iteration: int, loss: float, done: float) -> str:
        filled = int(round(done * BAR_WIDTH))
        elapsed = time.monotonic() - self.started
        return (f"   {self.title} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                f"{iteration}/{self.total}  loss {loss:.4g}  {elapsed:.0f}s")
