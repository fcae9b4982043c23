"""The web view's application: routes, read pages and the two writes, over :class:`web.data.WebContext`.

Server-rendered pages (Starlette and Jinja2, autoescaped), no JavaScript.
Handlers are plain functions (Starlette runs them in its thread pool) that
parse the query, ask the context or the catalog, and render; the security
rules are in :mod:`web.security`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from archive.captures import Capture, CaptureNotFoundError
from archive.verify import find_snapshot
from archive.verify_log import Verification, verify_and_record
from catalog import diff as catalog_diff
from catalog import query
from catalog.db import CatalogError
from newsvault.errors import IntegrityError, NewsvaultError, SnapshotNotFoundError, StoreError
from newsvault.names import KINDS
from scheduler.history import FINAL_STATUSES
from web.chart import thread_charts
from web.data import WebContext, default_since
from web.security import AUTH_COOKIE, CAPTURE_CSP, SESSION_COOKIE, Guard, SecurityHeaders

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
MAX_LIMIT = 500
# Entries per list on a site page (the counts above each list are complete).
SITE_LIST_LIMIT = 200


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["q"] = lambda value: quote(str(value or ""), safe="")
    env.filters["size"] = _size
    env.filters["field"] = _field
    return env


def _field(value: Any) -> str:
    """A version field as a reader sees it: lists (authors, tags) joined, nothing for None."""
    if value is None:
        return ""
    return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _size(value: Any) -> str:
    if value is None:
        return "-"
    amount = float(value)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if amount < 1024 or unit == "TB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return str(value)


class Pages:
    """The handlers, bound to one context and guard."""

    def __init__(self, ctx: WebContext, guard: Guard) -> None:
        self.ctx = ctx
        self.guard = guard
        self.env = _environment()

    # -- rendering --------------------------------------------------------------------
    def render(self, request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
        session = request.cookies.get(SESSION_COOKIE, "")
        values.update(
            request=request, csrf=self.guard.csrf_token(session) if session else "",
            writes_enabled=self.guard.writes_enabled, signed_in=self.guard.signed_in(request),
            statuses=FINAL_STATUSES, kinds=KINDS,
        )
        return HTMLResponse(self.env.get_template(template).render(**values), status_code=status_code)

    def problem(self, request: Request, status_code: int, message: str) -> HTMLResponse:
        return self.render(request, "problem.html", status_code=status_code, message=message)

    @staticmethod
    def _limit(request: Request, default: int = 50) -> int:
        try:
            return max(1, min(MAX_LIMIT, int(request.query_params.get("limit") or default)))
        except ValueError:
            return default

    # -- read pages --------------------------------------------------------------------
    def dashboard(self, request: Request) -> Response:
        return self.render(request, "dashboard.html", **self.ctx.dashboard())

    def runs(self, request: Request) -> Response:
        p = request.query_params
        filters = {k: (p.get(k) or "").strip() or None for k in ("site", "job", "status", "since", "until")}
        try:
            runs = self.ctx.runs(site=filters["site"], job_id=filters["job"], status=filters["status"],
                                 since=filters["since"], until=filters["until"], limit=self._limit(request))
        except CatalogError as exc:
            return self.problem(request, 400, str(exc))
        return self.render(request, "runs.html", runs=runs, filters=filters)

    def run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        record = self.ctx.history.get(run_id)
        if record is None:
            from scheduler.trigger import request_path

            if request_path(self.ctx.config.state_dir, run_id).exists():
                return self.render(request, "run_waiting.html", run_id=run_id)
            return self.problem(request, 404, f"no run {run_id!r} in the run history")
        return self.render(request, "run.html", run=record)

    def snapshots(self, request: Request) -> Response:
        site = request.query_params.get("site") or None
        return self.render(request, "snapshots.html", snapshots=self.ctx.snapshots(site=site, limit=self._limit(request)),
                           site=site)

    def snapshot(self, request: Request) -> Response:
        try:
            data = self.ctx.snapshot(request.path_params["snapshot_id"])
        except CatalogError as exc:
            return self.problem(request, 404, str(exc))
        # After "verify now", the outcome is read back from the verify log, never taken from the URL:
        # a link cannot make the page claim a check that did not happen.
        check = data["verification"] if request.query_params.get("checked") else None
        return self.render(request, "snapshot.html", **data, message=_verify_message(check) if check else None)

    def site(self, request: Request) -> Response:
        site = request.path_params["site"]
        since = request.query_params.get("since") or default_since()
        until = request.query_params.get("until") or None
        try:
            changes = query.changes(self.ctx.require_catalog(), site, since, until)
        except CatalogError as exc:
            return self.problem(request, 400, str(exc))
        cat = self.ctx.require_catalog()
        articles = [url for key in ("new", "updated", "removed") for url in changes["articles"][key][:SITE_LIST_LIMIT]]
        threads = [url for key in ("new", "updated") for url in changes["threads"][key][:SITE_LIST_LIMIT]]
        return self.render(request, "site.html", site=site, changes=changes, since=since, until=until or "",
                           titles=query.titles(cat, articles), thread_titles=query.titles(cat, threads, threads=True),
                           limit=SITE_LIST_LIMIT)

    def article(self, request: Request) -> Response:
        p = request.query_params
        url = p.get("url") or ""
        try:
            cat = self.ctx.require_catalog()
            found = query.versions(cat, url)
            history = query.history(cat, url, found=found)
            older = query.pick_version(found, p.get("from") or None, -2 if len(found) > 1 else -1)
            newer = query.pick_version(found, p.get("to") or None, -1)
        except CatalogError as exc:
            return self.problem(request, 404, str(exc))
        result = catalog_diff.diff(older, newer) if older.number != newer.number else None
        view = "side" if p.get("view") == "side" else "inline"
        return self.render(request, "article.html", url=url, versions=found, history=history, older=older,
                           newer=newer, diff=result, view=view,
                           paragraphs=catalog_diff.paragraphs(newer.fields.get("body")))

    def thread(self, request: Request) -> Response:
        try:
            data = query.thread(self.ctx.require_catalog(), request.query_params.get("url") or "")
        except CatalogError as exc:
            return self.problem(request, 404, str(exc))
        counts_chart, activity_chart = thread_charts(data["observations"])
        return self.render(request, "thread.html", thread=data, counts_chart=counts_chart,
                           activity_chart=activity_chart)

    def search(self, request: Request) -> Response:
        p = request.query_params
        form = {k: (p.get(k) or "").strip() for k in ("q", "site", "since", "until")}
        result = None
        if form["q"]:
            try:
                result = query.search(self.ctx.require_catalog(), form["q"], site=form["site"] or None,
                                      since=form["since"] or None, until=form["until"] or None,
                                      limit=self._limit(request))
            except CatalogError as exc:
                return self.render(request, "search.html", status_code=400, form=form, result=None, error=str(exc))
        return self.render(request, "search.html", form=form, result=result, error=None)

    # -- archived pages ------------------------------------------------------------------
    def _capture(self, request: Request) -> Capture | Response:
        """The capture the request names, or the page that says why there is none."""
        snapshot_id, url = request.path_params["snapshot_id"], request.query_params.get("url") or ""
        try:
            return self.ctx.captures().capture(snapshot_id, url)
        except (CaptureNotFoundError, SnapshotNotFoundError) as exc:
            return self.problem(request, 404, str(exc))
        except IntegrityError as exc:
            return self.problem(request, 502, f"the archived copy fails its check: {exc}")

    def capture(self, request: Request) -> Response:
        found = self._capture(request)
        if isinstance(found, Response):
            return found
        url = request.query_params.get("url") or ""
        raw = f"/capture/{quote(found.snapshot_id, safe='')}/raw?{urlencode({'url': url})}"
        return self.render(request, "capture.html", capture=found, raw_url=raw, url=url)

    def capture_raw(self, request: Request) -> Response:
        """The archived bytes, sandboxed: shown only inside the capture page's frame, never as this origin."""
        found = self._capture(request)
        if isinstance(found, Response):
            return found
        media = found.content_type.split(";")[0].strip().lower()
        # Only what a browser shows inertly under the sandbox; anything else is offered as bytes.
        shown = media if media in ("text/html", "text/plain", "image/jpeg", "image/png", "image/gif") else \
            "application/octet-stream"
        headers = {"Content-Security-Policy": CAPTURE_CSP, "X-Frame-Options": "SAMEORIGIN",
                   "Cross-Origin-Resource-Policy": "same-origin", "Cache-Control": "private, max-age=3600"}
        content_type = found.content_type if shown == media else shown
        return Response(found.body, media_type=None, headers={**headers, "Content-Type": content_type})

    # -- writes ----------------------------------------------------------------------------
    async def _form(self, request: Request) -> dict[str, Any]:
        return dict(await request.form())

    async def sign_in(self, request: Request) -> Response:
        form = await self._form(request)
        refusal = self.guard.csrf_refusal(request, form)
        if refusal or not self.guard.writes_enabled:
            return self.problem(request, 403, refusal or "writes are off: no web token is configured")
        if not self.guard.token_matches(str(form.get("token") or "")):
            log.warning("web: a sign-in with a wrong token from %s", request.client.host if request.client else "?")
            return self.problem(request, 403, "wrong token")
        response = RedirectResponse(_local_path(str(form.get("next") or "/")), status_code=303)
        session = request.cookies.get(SESSION_COOKIE, "")
        response.set_cookie(AUTH_COOKIE, self.guard.auth_value(session), httponly=True, samesite="strict", path="/")
        return response

    async def sign_out(self, request: Request) -> Response:
        form = await self._form(request)
        refusal = self.guard.csrf_refusal(request, form)
        if refusal:
            return self.problem(request, 403, refusal)
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(AUTH_COOKIE, path="/")
        return response

    async def trigger(self, request: Request) -> Response:
        from scheduler.trigger import request_trigger

        form = await self._form(request)
        refusal = self.guard.write_refusal(request, form)
        if refusal:
            return self.problem(request, 403, refusal)
        site, kind = str(form.get("site") or ""), str(form.get("kind") or "")
        if not any(s.site == site and s.kind == kind for s in self.ctx.jobs()):
            return self.problem(request, 400, f"no job {site}:{kind} in the config")
        if not self.ctx.daemon_running():
            return self.problem(request, 409, f"no daemon runs on {self.ctx.config.state_dir.name}: start "
                                              "`newsvault daemon` (a manual run is the daemon's job)")
        run_id = request_trigger(self.ctx.config.state_dir, site, kind)
        log.info("web: requested run %s of %s:%s", run_id, site, kind)
        return RedirectResponse(f"/runs/{quote(run_id, safe='')}", status_code=303)

    async def verify(self, request: Request) -> Response:
        form = await self._form(request)
        refusal = self.guard.write_refusal(request, form)
        if refusal:
            return self.problem(request, 403, refusal)
        snapshot_id = request.path_params["snapshot_id"]
        from starlette.concurrency import run_in_threadpool

        try:
            ref = await run_in_threadpool(find_snapshot, self.ctx.store(), snapshot_id)
            result = await run_in_threadpool(verify_and_record, self.ctx.store(), ref, self.ctx.verify_log)
        except (SnapshotNotFoundError, StoreError) as exc:
            return self.problem(request, 404 if isinstance(exc, SnapshotNotFoundError) else 502, str(exc))
        log.info("web: verified %s: %s", snapshot_id, result.status)
        return RedirectResponse(f"/snapshots/{quote(snapshot_id, safe='')}?checked={quote(result.verified_at)}",
                                status_code=303)


def _verify_message(check: Verification) -> str:
    return "verified: every file matches its checksum" if check.ok else f"{check.status}: {check.problem}"


def _local_path(target: str) -> str:
    """Only a path on this server (no scheme, no host) may follow a sign-in."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


def create_app(ctx: WebContext, token: str | None) -> Starlette:
    """The ASGI application of the web view over ``ctx``; writes are on only when ``token`` is set."""
    pages = Pages(ctx, Guard(token))

    def read(handler: Any) -> Any:
        def endpoint(request: Request) -> Response:
            try:
                return handler(request)  # type: ignore[no-any-return]
            except (CatalogError, NewsvaultError) as exc:
                return pages.problem(request, 400, str(exc))
        return endpoint

    routes = [
        Route("/", read(pages.dashboard)),
        Route("/runs", read(pages.runs)),
        Route("/runs/{run_id}", read(pages.run)),
        Route("/snapshots", read(pages.snapshots)),
        Route("/snapshots/{snapshot_id}", read(pages.snapshot)),
        Route("/snapshots/{snapshot_id}/verify", pages.verify, methods=["POST"]),
        Route("/sites/{site}", read(pages.site)),
        Route("/article", read(pages.article)),
        Route("/thread", read(pages.thread)),
        Route("/search", read(pages.search)),
        Route("/capture/{snapshot_id}", read(pages.capture)),
        Route("/capture/{snapshot_id}/raw", read(pages.capture_raw)),
        Route("/sign-in", pages.sign_in, methods=["POST"]),
        Route("/sign-out", pages.sign_out, methods=["POST"]),
        Route("/trigger", pages.trigger, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    async def server_error(request: Request, exc: Exception) -> Response:
        # The traceback goes to the log; the page names no internals.
        log.error("web: %s %s failed", request.method, request.url.path, exc_info=exc)
        return pages.problem(request, 500, "internal error: the server log has the details")

    app = Starlette(routes=routes, exception_handlers={Exception: server_error})
    app.add_middleware(SecurityHeaders)  # type: ignore[arg-type]
    return app
