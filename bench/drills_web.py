"""The web view's drill (called by bench/drills.py: ``--only web``).

An archive of the hostile sample site (two crawls of each kind: headlines,
leads, bodies and thread titles carrying ``<script>``, event handlers,
``javascript:`` links and broken markup), then the web view served twice by
``newsvault web``: read-only (no token) and with a token. Then, the way a
hostile page or a careless operator would:

- every page of the archive, and every page again with each query and path
  parameter replaced by markup: counted, any unescaped payload in an
  interface page (0), any 5xx (0), any archived page served without its
  sandbox policy (0);
- writes (trigger, verify) without a token configured, without signing in,
  with a wrong bearer token, without the CSRF field, with another session's,
  from another origin: counted, any accepted (0), any trigger request file or
  verify record they left (0);
- path tricks on captures, snapshots and static files: counted, any response
  holding a file from outside (0);
- serving on 0.0.0.0 without a token, by ``newsvault web`` and by the daemon:
  counted, any that listened (0);
- the token in any response or in the server's log (0).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from common import FAST_CRAWL_ENV, PYTHON, SampleSiteProcess, Table, child_env, verdict

CLI = [PYTHON, "-m", "scheduler"]
TOKEN = "drill-web-token-7c1e9a52b4"
PAYLOADS = ('<script>alert("nv")</script>', '"><img src=x onerror=alert(1)>', "javascript:alert(1)//")


class _ActiveMarkup(HTMLParser):
    """What a browser would run in a page: script elements, event-handler attributes, javascript: URLs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.found.append("<script>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}>")
            if name in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith(
                    ("javascript:", "data:text/html")):
                self.found.append(f"<{tag} {name}={value[:30]!r}>")


def active_markup(body: str) -> list[str]:
    parser = _ActiveMarkup()
    parser.feed(body)
    parser.close()
    return parser.found
_OUTSIDE_MARKERS = ("root:x:0:0", "def create_app", "[project]", "PRIVATE KEY")


def _request(url: str, *, data: dict[str, str] | None = None, headers: dict[str, str] | None = None,
             timeout: float = 30) -> tuple[int, dict[str, str], str]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, \
                response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read().decode("utf-8", "replace")


def _crawl(kind: str, start: str, env: dict[str, str], cwd: Path) -> None:
    subprocess.run([*CLI, "crawl", "sample", "--kind", kind, "--start-url", start, "--no-progress"],
                   env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300, check=False)


class _Server:
    """``newsvault web --port 0`` as a child; its first stdout line names its URL."""

    def __init__(self, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen([*CLI, "web", "--port", "0"], env=env, cwd=cwd, text=True,
                                     stdout=subprocess.PIPE, stderr=open(log, "w", encoding="utf-8"))  # noqa: SIM115
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        match = re.search(r"(http://[^/ ]+)/", line)
        if not match:
            self.proc.kill()
            raise RuntimeError(f"newsvault web did not start: {line!r} {log.read_text(encoding='utf-8')[-500:]}")
        self.url = match.group(1)

    def stop(self) -> str:
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return (out or "") + self.log.read_text(encoding="utf-8")


def _pages(cat_db: Path) -> dict[str, list[str]]:
    """URLs of the archive to visit: articles (hostile ones included), threads, snapshots, captures."""
    import sqlite3

    db = sqlite3.connect(cat_db)
    try:
        articles = [r[0] for r in db.execute("SELECT DISTINCT canonical_url FROM versions ORDER BY canonical_url")]
        threads = [r[0] for r in db.execute("SELECT DISTINCT thread_url FROM observations ORDER BY thread_url")]
        snapshots = [r[0] for r in db.execute("SELECT snapshot_id FROM snapshots ORDER BY snapshot_id")]
        captures = [(r[0], r[1]) for r in db.execute(
            "SELECT s.snapshot_id, v.url FROM versions v JOIN sightings s ON s.version_id = v.id"
            " WHERE v.title LIKE '%<%' OR v.id % 10 = 0 ORDER BY s.snapshot_id, v.url")]
    finally:
        db.close()
    quote = urllib.parse.quote
    return {
        "interface": (["/", "/runs", "/snapshots", "/search?q=nvHostile", "/search?q=script", "/sites/sample"]
                      + [f"/article?url={quote(u, safe='')}" for u in articles]
                      + [f"/thread?url={quote(u, safe='')}" for u in threads]
                      + [f"/snapshots/{s}" for s in snapshots]
                      + [f"/capture/{s}?url={quote(u, safe='')}" for s, u in captures]),
        "raw": [f"/capture/{s}/raw?url={quote(u, safe='')}" for s, u in captures],
        "snapshots": snapshots,
    }


def _reflected(pages: list[str]) -> list[str]:
    """Each page with each query parameter (and the path's last part) replaced by each payload."""
    quote = urllib.parse.quote
    out: list[str] = []
    params = ("q", "site", "since", "until", "url", "from", "to", "view", "status", "job", "limit", "message")
    for payload in PAYLOADS:
        p = quote(payload, safe="")
        for base in ("/", "/runs", "/snapshots", "/search", "/article", "/thread", "/sites/sample"):
            out.append(base + "?" + "&".join(f"{name}={p}" for name in params))
        out += [f"/runs/{p}", f"/snapshots/{p}", f"/sites/{p}", f"/capture/{p}?url={p}", f"/capture/{p}/raw?url={p}"]
        out += [f"{page.split('?')[0]}?url={p}" for page in pages if page.startswith(("/article", "/thread"))][:2]
    return out


def _writes(url: str, snapshot_id: str, token_configured: bool) -> list[tuple[str, int]]:
    """Every way a write must be refused: (case, status)."""
    cases: list[tuple[str, int]] = []
    trigger, verify = f"{url}/trigger", f"{url}/snapshots/{snapshot_id}/verify"
    form = {"site": "sample", "kind": "articles"}
    # A session and its CSRF field, as a browser would get them from a page.
    status, headers, body = _request(url + "/")
    cookie = (headers.get("set-cookie") or "").split(";")[0]
    csrf = (re.search(r'name="csrf" value="([0-9a-f]+)"', body) or [None, ""])[1]
    _, other_headers, other_body = _request(url + "/")
    other_csrf = (re.search(r'name="csrf" value="([0-9a-f]+)"', other_body) or [None, ""])[1]
    for target in (trigger, verify):
        name = "trigger" if target == trigger else "verify"
        cases.append((f"{name}: nothing", _request(target, data=form)[0]))
        cases.append((f"{name}: wrong bearer", _request(target, data=form,
                                                         headers={"Authorization": "Bearer " + TOKEN[::-1]})[0]))
        cases.append((f"{name}: session, CSRF, not signed in",
                      _request(target, data={**form, "csrf": csrf}, headers={"Cookie": cookie})[0]))
        cases.append((f"{name}: another session's CSRF",
                      _request(target, data={**form, "csrf": other_csrf}, headers={"Cookie": cookie})[0]))
        if not token_configured:
            cases.append((f"{name}: the right-looking bearer, no token configured",
                          _request(target, data=form, headers={"Authorization": "Bearer " + TOKEN})[0]))
    # Signed in, but the form comes from elsewhere or lacks its CSRF field.
    if token_configured:
        _, signed, _ = _request(url + "/sign-in", data={"token": TOKEN, "csrf": csrf, "next": "/"},
                                headers={"Cookie": cookie})
        auth = (signed.get("set-cookie") or "").split(";")[0]
        both = f"{cookie}; {auth}"
        cases.append(("trigger: signed in, no CSRF", _request(trigger, data=form, headers={"Cookie": both})[0]))
        cases.append(("trigger: signed in, another origin", _request(
            trigger, data={**form, "csrf": csrf}, headers={"Cookie": both, "Origin": "http://evil.example"})[0]))
        cases.append(("sign-in: wrong token", _request(url + "/sign-in", data={"token": "x" * 20, "csrf": csrf},
                                                       headers={"Cookie": cookie})[0]))
    _ = other_headers, status
    return cases


def _path_tricks(url: str, snapshot_id: str) -> list[str]:
    tricks = ["/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py", "/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
              "/capture/..%2F..%2F..%2Fetc?url=/etc/passwd", "/capture/%2e%2e/raw?url=file:///etc/passwd",
              f"/capture/{snapshot_id}/raw?url=file:///etc/passwd", f"/capture/{snapshot_id}/raw?url=..%2F..%2Fmanifest.json",
              "/snapshots/..%2F..%2F..%2Fetc%2Fpasswd", "/sites/..%2F..%2Fetc"]
    leaked = []
    for trick in tricks:
        status, _, body = _request(url + trick)
        if any(marker in body for marker in _OUTSIDE_MARKERS):
            leaked.append(f"{trick} -> {status}")
    return leaked


def _listens(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def drill_web(work: Path) -> dict[str, Any]:
    root = work / "web"
    root.mkdir(parents=True, exist_ok=True)
    base_env = {**FAST_CRAWL_ENV, "NEWSVAULT_STATE_DIR": str(root / "state"), "NEWSVAULT_ARCHIVE": str(root / "archive")}
    env = child_env(base_env)
    with SampleSiteProcess(60, extra=["--hostile"]) as site:
        for tick in (0, 4):
            site.set_tick(tick)
            _crawl("articles", f"{site.base_url}/", env, root)
            _crawl("discussions", f"{site.base_url}/discussions/", env, root)
    pages = _pages(root / "state" / "catalog.sqlite")
    results: dict[str, Any] = {"pages": len(pages["interface"]), "captures": len(pages["raw"]),
                               "snapshots": len(pages["snapshots"])}
    unsafe: list[str] = []
    server_errors: list[str] = []
    unsandboxed: list[str] = []
    writes: list[tuple[str, str, int]] = []
    leaked_paths: list[str] = []
    token_seen = 0
    logs = ""
    for mode, server_env in (("read-only", env), ("token", child_env({**base_env, "NEWSVAULT_WEB_TOKEN": TOKEN}))):
        server = _Server(server_env, root, root / f"web-{mode}.log")
        try:
            for path in pages["interface"] + _reflected(pages["interface"]):
                status, headers, body = _request(server.url + path)
                if status >= 500:
                    server_errors.append(f"{mode} {path} -> {status}")
                found = active_markup(body)
                if found or "script-src" in headers.get("content-security-policy", "script-src"):
                    unsafe.append(f"{mode} {path}: {found[:3] or 'no no-script policy'}")
                token_seen += TOKEN in body
            for path in pages["raw"]:
                status, headers, body = _request(server.url + path)
                if status >= 500:
                    server_errors.append(f"{mode} {path} -> {status}")
                csp = headers.get("content-security-policy", "")
                if status == 200 and not (csp.startswith("sandbox;") and "default-src 'none'" in csp):
                    unsandboxed.append(f"{mode} {path}")
            for case, status in _writes(server.url, pages["snapshots"][0], mode == "token"):
                writes.append((mode, case, status))
            leaked_paths += [f"{mode} {p}" for p in _path_tricks(server.url, pages["snapshots"][0])]
        finally:
            logs += server.stop()
    token_seen += TOKEN in logs
    state = root / "state"
    # Binding beyond loopback without a token: by the web command and by the daemon.
    bindings = []
    port = _free_port()
    out = subprocess.run([*CLI, "web", "--host", "0.0.0.0", "--port", str(port)], env=env, cwd=root,
                         capture_output=True, text=True, timeout=60, check=False)
    bindings.append({"who": "newsvault web", "exit": out.returncode, "listened": _listens(port),
                     "message": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ""})
    port = _free_port()
    daemon = subprocess.Popen([*CLI, "daemon", "--web-port", str(port)], cwd=root, text=True,
                              env=child_env({**base_env, "NEWSVAULT_WEB_HOST": "0.0.0.0"}),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        daemon_out, _ = daemon.communicate(timeout=60)
        daemon_exit = daemon.returncode
    except subprocess.TimeoutExpired:
        daemon.terminate()
        daemon_out, _ = daemon.communicate()
        daemon_exit = None
    bindings.append({"who": "newsvault daemon --web-port", "exit": daemon_exit, "listened": _listens(port),
                     "message": (daemon_out or "").strip().splitlines()[-1] if (daemon_out or "").strip() else ""})
    accepted = [w for w in writes if w[2] < 400]
    results.update({
        "unsafe": len(unsafe), "unsafe_examples": unsafe[:5],
        "server_errors": len(server_errors), "server_error_examples": server_errors[:5],
        "unsandboxed": len(unsandboxed), "unsandboxed_examples": unsandboxed[:5],
        "writes": [{"mode": m, "case": c, "status": s} for m, c, s in writes],
        "writes_accepted": len(accepted),
        "trigger_files_left": len(list((state / "triggers").glob("*.json"))) if (state / "triggers").exists() else 0,
        "verify_records": _verify_records(state),
        "leaked_paths": leaked_paths,
        "token_seen": token_seen,
        "bindings": bindings,
        "bindings_listening": sum(1 for b in bindings if b["listened"] or b["exit"] == 0),
    })
    return results


def _verify_records(state: Path) -> int:
    path = state / "verify-log.sqlite"
    if not path.exists():
        return 0
    import sqlite3

    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT COUNT(*) FROM verifications").fetchone()[0])
    finally:
        db.close()


def report_web(results: dict[str, Any]) -> None:
    if "web" not in results or "pages" not in results["web"]:
        return
    w = results["web"]
    print(f"(web) web view on a hostile archive: {w['pages']} pages and {w['captures']} captures, twice "
          f"(read-only and with a token), each page again with markup in every parameter; "
          f"{len(w['writes'])} refused-write cases; binding beyond loopback without a token")
    table = Table(["check", "value", "target", "verdict"])
    for name, value in (("interface pages with unescaped markup or a policy allowing script", w["unsafe"]),
                        ("5xx answers", w["server_errors"]),
                        ("archived pages served without their sandbox policy", w["unsandboxed"]),
                        ("writes accepted without the token, CSRF field or origin", w["writes_accepted"]),
                        ("trigger requests / verify records left by refused writes",
                         w["trigger_files_left"] + w["verify_records"]),
                        ("responses holding a file from outside", len(w["leaked_paths"])),
                        ("the token in a response or the server log", w["token_seen"]),
                        ("servers listening beyond loopback without a token", w["bindings_listening"])):
        table.add(name, value, 0, verdict(value == 0))
    print(table.render())
    for line in w["unsafe_examples"] + w["server_error_examples"] + w["unsandboxed_examples"] + w["leaked_paths"][:5]:
        print(f"  {line}")
    for b in w["bindings"]:
        print(f"  {b['who']} on 0.0.0.0: exit {b['exit']}: {b['message'][:160]}")
    _ = json


__all__ = ["drill_web", "report_web"]
