"""Sidecar CPU: what the item stages and the snapshot's files cost per page, replayed from a recorded crawl.

One crawl of the sample site runs with the sidecar's work in its own process
and every item and page the sidecar gets recorded (``crawl_child.py
--record``). Those inputs are then fed to a fresh sidecar core, with fresh
state, digest index and catalog, each part timed in CPU seconds of the thread
that runs it. The crawl itself (network, the sample site, the other core) is
not in the figures: this is the sidecar's own work, the part of the full
crawl that competes with the crawl for the machine's cores. Compression runs
on the WARC writer's thread: it is the process's CPU beyond the main thread's.

Each replay runs in a child process. With ``--baseline DIR`` (another checkout
of newsvault, a git worktree of an earlier commit say) the same recording is
replayed through that code too, alternately with this one, and the ratio of
the totals is printed. Each side's best replay counts (other load on the
machine only ever slows a replay down).

    python bench/sidecar_cpu.py [--quick] [--articles N] [--repeat 3] [--baseline DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def read_recording(path: Path) -> Iterator[tuple[Any, ...]]:
    import marshal

    with path.open("rb") as fh:
        while header := fh.read(4):
            (size,) = struct.unpack("<I", header)
            yield tuple(marshal.loads(fh.read(size)))


def _timed(target: Any, name: str, part: str, spent: Counter[str]) -> None:
    """Replace ``target.name`` by a wrapper adding its thread CPU time to ``spent[part]``."""
    inner: Callable[..., Any] = getattr(target, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return inner(*args, **kwargs)
        finally:
            spent[part] += time.thread_time() - started

    setattr(target, name, timed)


def replay(recording: Path, work: Path) -> dict[str, float]:
    """One replay into fresh state, in this process: CPU seconds per part and in all (``total``).

    Imports only what both the current and earlier layouts of the code offer
    (``pipelines.sidecar`` has named the core and its files spec throughout).
    """
    from archive import snapshot_files
    from archive.index import DigestIndex
    from pipelines.sidecar import FilesSpec, SidecarCore

    (_, stage_paths, settings), *messages = read_recording(recording)
    settings = {**settings, "NEWSVAULT_STATE_DIR": str(work / "state"), "NEWSVAULT_STATE_URL": None}
    (work / "staging").mkdir(parents=True)
    archive = str(work / "archive")
    DigestIndex(str(work / "index.sqlite"), archive).close()
    spec = FilesSpec(str(work / "staging"), 1 << 30, str(settings["NEWSVAULT_SNAPSHOT_ID"]), "sample",
                     (str(work / "index.sqlite"), archive), (str(work / "catalog.sqlite"), archive))
    spent: Counter[str] = Counter()
    core = SidecarCore(stage_paths, settings, spec)
    names = {"CleanPipeline": "clean", "ValidatePipeline": "validate", "DedupePipeline": "dedupe",
             "ChangeTrackingPipeline": "change tracking"}
    for stage in core.stages.pipelines:
        _timed(stage, "process_item", names.get(type(stage).__name__, type(stage).__name__), spent)
    assert core.files is not None and core.catalog is not None
    _timed(core.files, "append_item", "items file", spent)
    _timed(core.catalog, "add", "catalog rows", spent)
    _timed(core.files.warc, "write_exchange", "WARC records (built)", spent)
    _timed(snapshot_files, "payload_digest", "payload digest", spent)
    process_started, main_started = time.process_time(), time.thread_time()
    for kind, payload in messages:
        if kind == "item":
            core.item(payload)
        else:
            core.page(payload)
    core.close()
    main = time.thread_time() - main_started
    total = time.process_time() - process_started
    # The main thread's CPU outside the parts: revisit lookups, closing the files, the replay's loop.
    spent["other (revisit lookups, close, loop)"] = main - sum(spent.values())
    spent["WARC compression (its thread)"] = total - main
    return {**spent, "total": total}


def replay_in_child(recording: Path, repo: Path, work: Path) -> dict[str, float]:
    """:func:`replay` in a child process that imports newsvault from ``repo``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSVAULT_", "AWS_"))}
    env["PYTHONPATH"] = str(repo)
    out = subprocess.run([sys.executable, str(HERE / "sidecar_cpu.py"), "--replay", str(recording),
                          "--work", str(work)], env=env, cwd=repo, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"replay through {repo} failed:\n{out.stderr[-2000:]}")
    parts: dict[str, float] = json.loads(out.stdout)
    return parts


def record(root: Path, articles: int) -> Path:
    sys.path.insert(0, str(HERE))
    from common import SampleSiteProcess, crawl_child, write_sample_profile

    recording = root / "sidecar-inputs.bin"
    with SampleSiteProcess(articles) as site:
        crawl = root / "crawl"
        write_sample_profile(crawl / "sites", site.base_url, articles=articles)
        result, _summary = crawl_child(crawl, start_urls=[f"{site.base_url}/sitemap.xml"],
                                       archive=str(crawl / "archive"), record_to=recording)
        result.check("recorded crawl")
    return recording


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 articles, one replay a side")
    parser.add_argument("--articles", type=int, help="site size (default 3,000)")
    parser.add_argument("--repeat", type=int, help="replays a side (default 3, --quick 1)")
    parser.add_argument("--baseline", metavar="DIR", help="also replay through the newsvault checkout in DIR")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--replay", metavar="RECORDING", help=argparse.SUPPRESS)  # the child's part
    parser.add_argument("--work", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.replay:
        # This folder first on the path would shadow the catalog package with catalog.py.
        sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
        print(json.dumps(replay(Path(args.replay), Path(args.work))))
        return 0

    articles = args.articles or (500 if args.quick else 3_000)
    repeat = args.repeat or (1 if args.quick else 3)
    sides = {"this code": HERE.parent}
    if args.baseline:
        sides["baseline"] = Path(args.baseline).resolve()
    best: dict[str, dict[str, float]] = {side: {} for side in sides}
    with tempfile.TemporaryDirectory(prefix="nv-sidecar-") as tmp:
        root = Path(tmp)
        recording = record(root, articles)
        messages = Counter(message[0] for message in read_recording(recording))
        pages, items = messages["page"], messages["item"]
        for run in range(repeat):
            order = list(sides) if run % 2 == 0 else list(sides)[::-1]
            for side in order:
                parts = replay_in_child(recording, sides[side], root / f"{side}-{run}".replace(" ", "-"))
                for part, seconds in parts.items():
                    best[side][part] = min(best[side].get(part, seconds), seconds)
                print(f"  {side}, replay {run + 1}: {parts['total'] / pages * 1e6:.0f} us per page", file=sys.stderr)

    sys.path.insert(0, str(HERE))
    from common import Table, write_json

    ours = best["this code"]
    columns = ["part", "us per page", "share"] + (["baseline us per page"] if "baseline" in best else [])
    table = Table(columns)
    for part in sorted((p for p in ours if p != "total"), key=lambda p: -ours[p]):
        row = [part, round(ours[part] / pages * 1e6), f"{ours[part] / ours['total']:.0%}"]
        if "baseline" in best:
            row.append(round(best["baseline"][part] / pages * 1e6) if part in best["baseline"] else "-")
        table.add(*row)
    total_row = ["total (the process)", round(ours["total"] / pages * 1e6), "100%"]
    if "baseline" in best:
        total_row.append(round(best["baseline"]["total"] / pages * 1e6))
    table.add(*total_row)
    print(f"sidecar CPU, replayed: {items:,} items and {pages:,} pages of a {articles:,}-article sample site crawl,"
          f" best of {repeat}")
    print(table.render())
    results: dict[str, Any] = {"articles": articles, "items": items, "pages": pages, "repeat": repeat,
                               "us_per_page": {side: {part: s / pages * 1e6 for part, s in parts.items()}
                                               for side, parts in best.items()}}
    if "baseline" in best:
        results["ratio"] = ours["total"] / best["baseline"]["total"]
        print(f"this code / baseline, CPU per page: {results['ratio']:.2f}")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
