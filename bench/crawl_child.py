"""One crawl in this process, for the benchmarks: full (as shipped) or bare, optionally profiled.

The benchmarks start this script as a child (Twisted's reactor cannot restart)
and read its rusage from the kernel. ``--bare`` turns off every project item
pipeline, the WARC recorder and the snapshot extension: the same spider and
downloader, nothing of ours after parsing.

    python bench/crawl_child.py sample --start-url URL --summary FILE [--bare] [--profile FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import threading
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def bare_settings() -> dict[str, Any]:
    """Scrapy merges dict settings by priority, so each of our components is set to None explicitly."""
    import settings as project

    return {
        "ITEM_PIPELINES": {path: None for path in project.ITEM_PIPELINES},
        "DOWNLOADER_MIDDLEWARES": {path: None for path in project.DOWNLOADER_MIDDLEWARES},
        "EXTENSIONS": {"archive.scrapy_hooks.SnapshotExtension": None},
        "NEWSVAULT_REVISIT": {"mode": "off"},
    }


class PeakSnapshots:
    """Keeps the tracemalloc snapshot taken when the traced size was largest (sampled every 2 s)."""

    def __init__(self, interval: float = 2.0) -> None:
        self.interval = interval
        self.best: tracemalloc.Snapshot | None = None
        self.best_size = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        tracemalloc.start(6)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            current, _peak = tracemalloc.get_traced_memory()
            # Only re-snapshot on 10 % growth: a snapshot is costly.
            if current > self.best_size * 1.1:
                self.best_size = current
                self.best = tracemalloc.take_snapshot()

    def stop_and_report(self, path: Path, top: int = 25) -> None:
        self._stop.set()
        self._thread.join()
        lines = [f"peak traced memory sampled: {self.best_size / 1024**2:.1f} MiB"]
        if self.best is not None:
            snapshot = self.best.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            lines.append("\n# top allocations by line")
            for stat in snapshot.statistics("lineno")[:top]:
                lines.append(
                    f"{stat.size / 1024**2:8.1f} MiB {stat.count:9d} blocks  {stat.traceback[0]}"
                )
            lines.append("\n# top allocations by traceback (6 frames)")
            for stat in snapshot.statistics("traceback")[:8]:
                lines.append(f"{stat.size / 1024**2:8.1f} MiB {stat.count:9d} blocks")
                lines.extend(f"      {frame}" for frame in stat.traceback.format())
        tracemalloc.stop()
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def record_sidecar_inputs(path: Path) -> None:
    """Write what the sidecar's core receives (its stages and settings, then each item and page) to ``path``.

    Length-prefixed messages in the sidecar's own encoding, read back by
    bench/sidecar_cpu.py.
    """
    import struct

    from pipelines import sidecar_work

    out = path.open("wb")

    def write(message: tuple[Any, ...]) -> None:
        data = sidecar_work.encode(message)
        out.write(struct.pack("<I", len(data)) + data)

    core = sidecar_work.SidecarCore
    init, item, page = core.__init__, core.item, core.page

    def recording_init(self: Any, stage_paths: Any, settings: dict[str, Any], files: Any) -> None:
        write(("init", list(stage_paths), settings))
        init(self, stage_paths, settings, files)

    def recording_item(self: Any, raw: dict[str, Any]) -> tuple[Any, ...]:
        write(("item", raw))
        return item(self, raw)

    def recording_page(self: Any, exchange: dict[str, Any]) -> None:
        write(("page", exchange))
        page(self, exchange)

    core.__init__ = recording_init  # type: ignore[method-assign]
    core.item = recording_item  # type: ignore[method-assign]
    core.page = recording_page  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site")
    parser.add_argument("--kind", default="articles")
    parser.add_argument("--start-url", dest="start_urls", action="append", default=[])
    parser.add_argument("--summary", required=True, help="write the crawl summary JSON here")
    parser.add_argument("--output", help="items JSONL")
    parser.add_argument("--no-archive", action="store_true")
    parser.add_argument(
        "--bare",
        action="store_true",
        help="no project pipelines, WARC recorder or snapshot extension",
    )
    parser.add_argument(
        "--profile", metavar="FILE", help="pyinstrument text report of the whole crawl"
    )
    parser.add_argument("--tracemalloc", metavar="FILE", help="top allocations at the sampled peak")
    parser.add_argument(
        "--record", metavar="FILE",
        help="run the sidecar's work in this process and record every item and page it gets (bench/sidecar_cpu.py)",
    )
    args = parser.parse_args(argv)

    from newsvault.config import load_config
    from scheduler.crawl import run_crawl

    config = load_config()
    overrides = bare_settings() if args.bare else {}
    if args.record:
        record_sidecar_inputs(Path(args.record))
        overrides["NEWSVAULT_WORKER_PROCESSES"] = False
    archive = not (args.no_archive or args.bare)

    profiler = None
    peaks = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    if args.tracemalloc:
        peaks = PeakSnapshots()
        peaks.start()
    summary = run_crawl(
        config,
        args.site,
        args.kind,
        start_urls=args.start_urls or None,
        output=args.output,
        archive=archive,
        settings=overrides,
    )
    if profiler is not None:
        profiler.stop()
        from pyinstrument.renderers import ConsoleRenderer

        # Flat self-time list first (the top costs), then the call tree for context.
        flat = profiler.output(ConsoleRenderer(flat=True, flat_time="self", show_all=True))
        tree = profiler.output_text(unicode=True, color=False, show_all=False)
        Path(args.profile).write_text(flat + "\n# call tree\n" + tree, encoding="utf-8")
    if peaks is not None:
        peaks.stop_and_report(Path(args.tracemalloc))
    summary.write_json(args.summary)
    # This process's own peak: the kernel's figure for the child (wait4) is the
    # largest of it and its worker processes, not their sum.
    data = json.loads(Path(args.summary).read_text(encoding="utf-8"))
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    data["crawl_process_max_rss_kb"] = own.ru_maxrss
    # CPU of the crawl's own process and of its (finished, reaped) worker processes.
    data["crawl_process_cpu_seconds"] = own.ru_utime + own.ru_stime
    data["worker_cpu_seconds"] = workers.ru_utime + workers.ru_stime
    Path(args.summary).write_text(json.dumps(data, indent=2), encoding="utf-8")
    return 0 if summary.status != "failed" else 1


if __name__ == "__main__":
    raise SystemExit(main())
