"""rich progress bars for uploads and downloads, shown only when stderr is a terminal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

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
