"""Drills for bad input and secrets (called by bench/drills.py: ``--only regex,secrets,config``).

(regex) two catastrophic profile regexes, one in the spider (a URL pattern)
    and one in the item stages (a strip pattern), against a hostile link and a
    hostile line: each crawl must finish, or stop on SIGTERM within its grace.
(secrets) canary credentials (AWS_SESSION_TOKEN, AWS_SECRET_ACCESS_KEY, a
    secret put in the config by mistake) through `-v push`, a DEBUG crawl into
    S3 and a crawl run the way the daemon runs it (`trigger` with no daemon,
    which keeps the crawl's log): the canaries must appear nowhere. (SeaweedFS
    refuses the canary session token, so the uploads fail and the snapshots stay
    spooled; botocore still logs every signed request, which is the point.)
(config) bad config values: each refused at load, exit 2, one line naming the
    file and the key, no traceback.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from common import FAST_CRAWL_ENV, PYTHON, Table, child_env, run_child, verdict

CLI = [PYTHON, "-m", "scheduler"]
HOSTILE = "a" * 40 + "!"
ARTICLE = ("<html><head><title>Grain and diplomacy</title></head><body><article><h1>Grain and diplomacy</h1>"
           "<p>The talks in Minsk went on through the night and ended with a short statement.</p>"
           f"<p>{HOSTILE}</p><p>Both sides said the next round would come in the spring, after the harvest.</p>"
           "</article></body></html>")
FRONT = f'<a href="/news/10-{HOSTILE}.html">x</a> <a href="/news/11-grain.html">article</a>'
SIGTERM_GRACE_SECONDS = 15.0
CANARY_TOKEN = "drill-canary-token-5e0f3b"
CANARY_SECRET = "drill-canary-secret-91ac42"


@contextmanager
def _hostile_site() -> Iterator[str]:
    pages = {"/": FRONT, "/news/11-grain.html": ARTICLE}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def drill_regex(work: Path, timeout: float = 120.0) -> dict[str, Any]:
    cases = {
        "url pattern (spider)": ("url_patterns = ['/news/\\d+-(a+)+\\.html', '/news/\\d+-[a-z]+\\.html']\n", ""),
        "strip pattern (item stages)": ("url_patterns = '/news/\\d+-[^/]+\\.html'\n", "[furniture]\nstrip_patterns = ['^(a+)+$']\n"),
    }
    rows = []
    with _hostile_site() as base:
        for name, (articles, furniture) in cases.items():
            sites = work / f"regex-sites-{len(rows)}"
            sites.mkdir()
            (sites / "careless.toml").write_text(
                f'name = "careless"\n[start_urls]\nfront = ["{base}/"]\n[articles]\n{articles}{furniture}', encoding="utf-8")
            env = child_env({**FAST_CRAWL_ENV, "NEWSVAULT_SITES_DIR": str(sites), "NEWSVAULT_CRAWL_OBEY_ROBOTS": "false",
                             "NEWSVAULT_STATE_DIR": str(work / f"regex-state-{len(rows)}"),
                             "NEWSVAULT_ARCHIVE": str(work / f"regex-archive-{len(rows)}")})
            started = time.monotonic()
            proc = subprocess.Popen([*CLI, "crawl", "careless"], env=env, cwd=work,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            outcome = "finished"
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(SIGTERM_GRACE_SECONDS)
                    outcome = "stopped by SIGTERM"
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    outcome = "stalled (killed)"
            rows.append({"case": name, "outcome": outcome, "exit": proc.returncode,
                         "seconds": round(time.monotonic() - started, 1)})
    return {"rows": rows, "stalls": sum(r["outcome"] == "stalled (killed)" for r in rows),
            "not_finished": sum(r["outcome"] != "finished" for r in rows)}


def drill_secrets(work: Path, server: Any, site_url: str, sites_dir: Path) -> dict[str, Any]:
    state = work / "secrets-state"
    config = work / "secrets.toml"
    config.write_text(f'[archive]\naws_secret_access_key = "{CANARY_SECRET}"\n', encoding="utf-8")
    env = child_env({**FAST_CRAWL_ENV, **server.env(), "AWS_SESSION_TOKEN": CANARY_TOKEN,
                     "NEWSVAULT_SITES_DIR": str(sites_dir), "NEWSVAULT_STATE_DIR": str(state),
                     "NEWSVAULT_ARCHIVE": server.archive_url("secrets"), "NEWSVAULT_CRAWL_LOG_LEVEL": "DEBUG"})
    runs = {
        "config with a secret": [*CLI, "snapshots", "--config", str(config)],
        "DEBUG crawl into S3": [*CLI, "-v", "crawl", "sample", "--start-url", f"{site_url}/", "--no-progress"],
        "-v push": [*CLI, "-v", "push"],
        "crawl as the daemon runs it": [*CLI, "-v", "trigger", "sample", "--start-url", f"{site_url}/"],
    }
    rows = []
    secrets = (CANARY_TOKEN, CANARY_SECRET, server.secret_key)
    for name, argv in runs.items():
        result = run_child(argv, env=env, cwd=work, timeout=600)
        text = result.stdout + result.stderr
        rows.append({"run": name, "exit": result.returncode, "output_bytes": len(text),
                     "last_line": (result.stderr.strip().splitlines() or [""])[-1][:200],
                     "leaks": sum(text.count(s) for s in secrets),
                     "signed_headers_logged": "x-amz-security-token" in text.lower()})
    kept = [p for p in state.rglob("*") if p.is_file() and p.suffix in (".log", ".json")]
    log_leaks = sum(p.read_text(encoding="utf-8", errors="replace").count(s) for p in kept for s in secrets)
    return {"rows": rows, "kept_logs": len(kept), "kept_log_leaks": log_leaks,
            "leaks": sum(r["leaks"] for r in rows) + log_leaks}


BAD_CONFIGS = {
    "max_response_bytes = true": ("[crawl]\nmax_response_bytes = true\n", "crawl.max_response_bytes"),
    "download_delay_seconds = inf": ("[crawl]\ndownload_delay_seconds = inf\n", "crawl.download_delay_seconds"),
    'archive.url = "ftp://x/y"': ('[archive]\nurl = "ftp://x/y"\n', "archive.url"),
    "interval_seconds = 99999999999999999": ("[schedules.sample.articles]\ninterval_seconds = 99999999999999999\n",
                                             "schedules.sample.articles.interval_seconds"),
    "jobstore_url without its driver": ('[daemon]\njobstore_url = "mysql+mysqldb://u:pw@db/x"\n', "daemon.jobstore_url"),
    "unknown key": ("[crawl]\nconcurency = 4\n", "crawl.concurency"),
}


def drill_config(work: Path) -> dict[str, Any]:
    rows = []
    env = {k: v for k, v in child_env().items() if not k.startswith("NEWSVAULT_")}
    env["NEWSVAULT_STATE_DIR"] = str(work / "config-state")
    for name, (toml, key) in BAD_CONFIGS.items():
        path = work / f"bad-{len(rows)}.toml"
        path.write_text(toml, encoding="utf-8")
        for command in (["snapshots"], ["jobs"], ["daemon"]):
            result = run_child([*CLI, *command, "--config", str(path)], env=env, cwd=work, timeout=120)
            lines = result.stderr.strip().splitlines()
            good = (result.returncode == 2 and "Traceback" not in result.stderr and bool(lines)
                    and lines[-1].startswith(f"newsvault: error: {path}: {key}:"))
            rows.append({"value": name, "command": command[0], "exit": result.returncode, "ok": good,
                         "message": lines[-1][:160] if lines else ""})
    return {"rows": rows, "not_refused_cleanly": sum(not r["ok"] for r in rows)}


def report_input(results: dict[str, Any]) -> None:
    if "regex" in results and "rows" in results["regex"]:
        r = results["regex"]
        print("(regex) catastrophic profile regexes: the crawl finishes, or stops on SIGTERM within "
              f"{SIGTERM_GRACE_SECONDS:g} s")
        table = Table(["case", "outcome", "exit", "seconds", "verdict"])
        for row in r["rows"]:
            table.add(row["case"], row["outcome"], row["exit"], row["seconds"], verdict(row["outcome"] != "stalled (killed)"))
        print(table.render())
    if "secrets" in results and "rows" in results["secrets"]:
        s = results["secrets"]
        print(f"(secrets) canary credentials through logs at DEBUG: {s['leaks']} leaks (target 0); "
              f"{s['kept_logs']} kept log files, {s['kept_log_leaks']} leaks in them")
        table = Table(["run", "exit", "output bytes", "signed headers logged", "leaks", "verdict"])
        for row in s["rows"]:
            table.add(row["run"], row["exit"], row["output_bytes"], row["signed_headers_logged"], row["leaks"],
                      verdict(row["leaks"] == 0))
        print(table.render())
    if "config" in results and "rows" in results["config"]:
        c = results["config"]
        print(f"(config) bad values refused at load (exit 2, file and key, no traceback): "
              f"{c['not_refused_cleanly']} not (target 0)")
        table = Table(["value", "command", "exit", "message", "verdict"])
        for row in c["rows"]:
            table.add(row["value"], row["command"], row["exit"], row["message"], verdict(row["ok"]))
        print(table.render())


__all__ = ["drill_config", "drill_regex", "drill_secrets", "report_input"]
