"""One row of the check's table and how it prints: what was checked, a figure (the measured error
or time) and the result. Rows print as they finish, under a heading per group (a layer, the
caffe tool, GPU mode); failed and skipped rows are explained after the table, naming what failed
and what to do."""
from dataclasses import dataclass
from typing import Callable, List

PASS, FAIL, SKIP = "ok", "FAIL", "skipped"   # a skipped row's status says why: "skipped: ..."
NAME_WIDTH, FIGURE_WIDTH = 66, 48   # the longest row name is 64 characters


@dataclass
class Row:
    """group: the layer (or tool, mode) it belongs to; name: what was checked; figure: what was
    measured; status: PASS, FAIL or SKIP; detail: for FAIL, what failed and what to do; for
    SKIP, why."""

    group: str
    name: str
    figure: str
    status: str
    detail: str = ""

    @property
    def title(self) -> str:
        return f"{self.group}: {self.name}"


def measured(group: str, name: str, errors: dict, limit: float, advice: str) -> Row:
    """A row that passes when every error (named figures, e.g. {'loss': .., 'grad': ..}) is at
    most limit; figure 'loss 1.2e-07, grad 3.4e-07 (limit 1e-05)'."""
    figure = ", ".join(f"{k} {v:.1e}" for k, v in errors.items()) + f" (limit {limit:.0e})"
    worst = max(errors, key=lambda k: errors[k] if errors[k] == errors[k] else float("inf"))
    if all(value <= limit for value in errors.values()):      # False for NaN
        return Row(group, name, figure, PASS)
    return Row(group, name, figure, FAIL, f"{worst} error {errors[worst]:.3g} is above the limit "
                                          f"{limit:.0e}. {advice}")


def run_row(group: str, name: str, check: Callable[[], Row], advice: str) -> Row:
    """check(), or a FAIL row naming the exception it raised (the other rows still run)."""
    try:
        return check()
    except Exception as error:
        return Row(group, name, "-", FAIL, f"raised {type(error).__name__}: {error}. {advice}")


class Table:
    """Prints rows as they come (a heading whenever the group changes) and keeps them."""

    def __init__(self, out):
        self.out = out
        self.rows: List[Row] = []
        print(f"  {'check':<{NAME_WIDTH}}  {'figure':<{FIGURE_WIDTH}}  result", file=out)

    def add(self, row: Row) -> None:
        if not self.rows or self.rows[-1].group != row.group:
            print(row.group, file=self.out)
        print(f"  {row.name:<{NAME_WIDTH}}  {row.figure:<{FIGURE_WIDTH}}  {row.status}",
              file=self.out, flush=True)
        self.rows.append(row)

    def failed(self) -> List[Row]:
        return [r for r in self.rows if r.status == FAIL]

    def close(self, seconds: float) -> str:
        """The notes on failed and skipped rows, and the summary line; returns the summary."""
        notes = [r for r in self.rows if r.status != PASS and r.detail]
        if notes:
            print(file=self.out)
        for row in notes:
            print(f"{row.status.split(':')[0]}: {row.title}: {row.detail}", file=self.out)
        failed, rows = self.failed(), self.rows
        skipped = sum(r.status.startswith(SKIP) for r in rows)
        passed = sum(r.status == PASS for r in rows)
        tail = f", {skipped} skipped" if skipped else ""
        if failed:
            line = (f"FAILED: {len(failed)} of {len(rows)} rows ({passed} passed{tail}) in "
                    f"{seconds:.0f} s: " + "; ".join(r.title for r in failed))
        else:
            line = f"all {passed} rows passed{tail} in {seconds:.0f} s"
        print(f"\n{line}", file=self.out)
        return line
