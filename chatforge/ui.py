"""Terminal output: results and notes to stdout, progress bars (with ETA) and warnings to stderr.

`--quiet` turns off progress bars and notes; results a command was asked to print
(tables, rows, exported data) still go to stdout. Text that comes from users or data
(paths, row contents) is never read as rich markup.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text


class UI:
    """Where a command's output goes; one per command run."""

    def __init__(self, quiet: bool = False, *, out: Console | None = None, err: Console | None = None) -> None:
        self.quiet = quiet
        self.out = out or Console(highlight=False, soft_wrap=False)
        self.err = err or Console(stderr=True, highlight=False)

    def note(self, message: str, *, style: str | None = None) -> None:
        """A progress note or summary line (suppressed by --quiet); printed literally."""
        if not self.quiet:
            self.out.print(Text(message, style=style or ""))

    def warn(self, message: str) -> None:
        """A warning: always shown, on stderr."""
        self.err.print(Text.assemble(("warning: ", "yellow"), message))

    @contextlib.contextmanager
    def progress(self, description: str, total: float | None = None, unit: str = "rows") -> Iterator[Callable[..., None]]:
        """A progress bar with rate and ETA; yields `advance(n, status=None)` (status: a short
        text shown after the bar, e.g. the current loss)."""
        if self.quiet:
            yield _ignore
            return
        count = DownloadColumn() if unit == "bytes" else MofNCompleteColumn()
        rate = [TransferSpeedColumn()] if unit == "bytes" else []
        columns = [
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TaskProgressColumn(),
            count,
            *rate,
            TextColumn("eta"),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}", markup=False),
        ]
        with Progress(*columns, console=self.err, transient=False) as bar:
            task = bar.add_task(description, total=total, status="")

            def advance(n: float = 1, status: str | None = None) -> None:
                if status is None:
                    bar.advance(task, n)
                else:
                    bar.update(task, advance=n, status=status)

            yield advance


def _ignore(n: float = 1, status: str | None = None) -> None:
    """`advance` of a progress bar that is not shown."""


QUIET = UI(quiet=True)
