"""rich progress bars for uploads, downloads and snapshot counts, shown only when stderr is a terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from archive.stores import Progress as ProgressCallback


@contextmanager
def transfer_bar(description: str, total: int, *, enabled: bool = True) -> Iterator[ProgressCallback | None]:
    """Yield a byte-count callback driving a progress bar, or None when no bar should show."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


@contextmanager
def count_bar(description: str) -> Iterator[Callable[[int, int, str], None] | None]:
    """Yield a ``(done, total, item)`` callback driving an "n of m" bar, or None when no bar should show."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total, _item: bar.update(task, completed=done, total=total)
