"""The worker's web port: ``/metrics``, the status API, manual actions, and the dashboard.

==========================================  =========================================
``GET /``                                   redirect to ``/dashboard``
``GET /metrics``                            Prometheus exposition (:mod:`.metrics`)
``GET /health``                             ``{"ok": true}``; 503 when stalled (:mod:`.watchdog`)
``GET /api/status``                         every model this worker serves, one line each
``GET /api/models/{model_id}``              signals, series, decisions, results of one model
``POST /api/models/{model_id}/retrain``     ask for a retrain now (token required)
``POST /api/models/{model_id}/rollback``    deploy an earlier version (token required)
``GET /dashboard``                          the live page (:file:`dashboard.html`)
==========================================  =========================================

Nothing else: faust's own views (``/table/``, ``/router/``, statistics, graph) are off
(:func:`streamproc.service.app.create_app`). The reads show statistics, thresholds, decisions
and evidence, never raw feature values or labels (monitor snapshots stay in the tables).

Each worker serves the models of its own partitions; ``streamproc status`` and the dashboard's
``workers`` setting gather several. Manual actions need ``Authorization: Bearer <token>`` with
the token of ``STREAMPROC_ADMIN_TOKEN`` (or the file named by ``STREAMPROC_ADMIN_TOKEN_FILE``);
with no token configured they are refused. ``STREAMPROC_WEB_AUTH=reads`` asks the same token of
``/api/*`` and ``/dashboard`` (``all``: of ``/metrics`` too; ``/health`` stays open for
liveness probes, and ``/`` only redirects). A browser gets in once with
``/dashboard?token=<token>``, which sets an HttpOnly cookie and redirects to the bare address.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import orjson
from faust.web import Request, Response, View

from streamproc.core.events import DeploymentEvent, Reason, RetrainRequest, encode
from streamproc.core.registry import Registry
from streamproc.service.app import Wiring, send_acked
from streamproc.service.board import StatusBoard
from streamproc.service.metrics import CONTENT_TYPE
from streamproc.service.watchdog import Watchdog

log = logging.getLogger(__name__)

__all__ = ["WebRoutes", "install_web"]


def install_web(
    w: Wiring,
    board: StatusBoard,
    registry: Registry,
    token: str | None,
    dog: Watchdog | None = None,
) -> None:
    """Add the views to the app's web server: each route one method of :class:`WebRoutes`.

    Raises
    ------
    ValueError
        ``STREAMPROC_WEB_AUTH`` asks the token of reads but no token is configured.
    """
    routes = WebRoutes(w, board, registry, token, dog)
    table: list[tuple[str, Callable[..., Awaitable[Response]], str]] = [
        ("/", routes.index, "get"),
        ("/metrics", routes.metrics, "get"),
        ("/health", routes.health, "get"),
        ("/dashboard", routes.dashboard, "get"),
        ("/api/status", routes.status, "get"),
        ("/api/models/{model_id}", routes.model_status, "get"),
        ("/api/models/{model_id}/retrain", routes.manual_retrain, "post"),
        ("/api/models/{model_id}/rollback", routes.manual_rollback, "post"),
    ]
    for path, handler, method in table:
        w.app.page(path)(_view(handler, method))


def _view(handler: Callable[..., Awaitable[Response]], method: str) -> type[View]:
    """A faust view answering ``method`` with ``handler(view, request, **path_parameters)``."""

    async def respond(self: View, request: Request, **match: Any) -> Response:
        return await handler(self, request, **match)

    return type(handler.__name__, (View,), {method: respond, "__doc__": handler.__doc__})


class WebRoutes:
    """The worker's routes (one method each), the token they check, and what they read."""

    def __init__(
        self,
        w: Wiring,
        board: StatusBoard,
        registry: Registry,
        token: str | None,
        dog: Watchdog | None = None,
    ) -> None:
        self.w = w
        self.board = board
        self.registry = registry
        self.token = token
        self.dog = dog
        self.page = resources.files("streamproc.service").joinpath("dashboard.html").read_text()
        auth = w.settings.web_auth
        if auth != "actions" and not token:
            raise ValueError(
                f"STREAMPROC_WEB_AUTH={auth} asks a token of reads but none is configured: "
                "set STREAMPROC_ADMIN_TOKEN (or STREAMPROC_ADMIN_TOKEN_FILE), "
                "or STREAMPROC_WEB_AUTH=actions."
            )
        self.reads_guarded = auth in ("reads", "all")
        self.metrics_guarded = auth == "all"

    def unread(self, view: View, request: Request, guarded: bool = True) -> Response | None:
        """None if this read may go ahead, else the 401 to send."""
        token = self.token
        if not guarded or (token and _carries(request, token)):
            return None
        return view.json(
            {"error": "this worker asks a token for reads (STREAMPROC_WEB_AUTH): send "
                      "'Authorization: Bearer <token>', or open /dashboard?token=<token>."},
            status=401,
        )  # fmt: skip

    def refuse(self, view: View, request: Request) -> Response | None:
        """None if the request carries the admin token, else the error response to send."""
        token = self.token
        if not token:
            return view.json(
                {"error": "manual actions are disabled on this worker: start it with "
                          "STREAMPROC_ADMIN_TOKEN (or STREAMPROC_ADMIN_TOKEN_FILE) set."},
                status=403,
            )  # fmt: skip
        if not _carries(request, token, cookie=False):
            return view.json(
                {"error": "missing or wrong token: send 'Authorization: Bearer <token>' with "
                          "the worker's STREAMPROC_ADMIN_TOKEN."},
                status=401,
            )  # fmt: skip
        return None

    async def index(self, view: View, request: Request) -> Response:
        query = request.query_string
        return _redirect(view, "/dashboard" + (f"?{query}" if query else ""))

    async def metrics(self, view: View, request: Request) -> Response:
        if (denied := self.unread(view, request, self.metrics_guarded)) is not None:
            return denied
        return view.bytes(self.board.metrics.exposition(), content_type=CONTENT_TYPE)

    async def health(self, view: View, request: Request) -> Response:
        dog = self.dog
        if dog is not None and dog.stalled:
            return _json(view, {"ok": False, "stalled": dog.stalled}, 503)
        return _json(view, {"ok": True, "models": len(self.board.models)})

    async def dashboard(self, view: View, request: Request) -> Response:
        token = self.token
        given = request.query.get("token")
        if given is not None and token and hmac.compare_digest(given.encode(), token.encode()):
            # Keep the token out of the address bar (and history): a cookie, then the bare page.
            cookie = f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
            return _redirect(view, "/dashboard", {"Set-Cookie": cookie})
        if (denied := self.unread(view, request, self.reads_guarded)) is not None:
            return denied
        return view.html(self.page)

    async def status(self, view: View, request: Request) -> Response:
        if (denied := self.unread(view, request, self.reads_guarded)) is not None:
            return denied
        return _json(view, {"worker": self.w.settings.app_id, **self.board.status()})

    async def model_status(self, view: View, request: Request, model_id: str) -> Response:
        if (denied := self.unread(view, request, self.reads_guarded)) is not None:
            return denied
        detail = self.board.model(model_id)
        if detail is None:
            return _json(view, {"error": f"model {model_id!r} is not served here"}, 404)
        return _json(view, detail)

    async def manual_retrain(self, view: View, request: Request, model_id: str) -> Response:
        if (denied := self.refuse(view, request)) is not None:
            return denied
        board = self.board
        note = str((await _body(request)).get("note", "requested by an operator"))
        known = board.models.get(model_id)
        req = RetrainRequest(
            request_id=f"manual-{uuid.uuid4().hex[:16]}",
            model_id=model_id,
            model_version=known.version if known else "unknown",
            # The model's event time where known: decisions are plotted over event time.
            ts=known.timeline.now if known and known.timeline.now else time.time(),
            reasons=(Reason("manual", "operator", 1.0, 1.0, 0, {"note": note}),),
        )
        await send_acked(self.w.requests, model_id, encode(req))
        board.requested(req)
        log.warning("model %s: manual retrain %s (%s)", model_id, req.request_id, note)
        return view.json({"request_id": req.request_id}, status=202)

    async def manual_rollback(self, view: View, request: Request, model_id: str) -> Response:
        if (denied := self.refuse(view, request)) is not None:
            return denied
        served = self.board.models.get(model_id)
        current = served.version if served else None
        target = (await _body(request)).get("version") or (served and _previous(served))
        if not target:
            return view.json(
                {"error": f"no earlier version of {model_id!r} is known here; "
                          'send {"version": "<version>"}.'},
                status=409,
            )  # fmt: skip
        known = await _registered(self.registry, model_id, str(target))
        dep = DeploymentEvent(
            deployment_id=f"manual-rb-{uuid.uuid4().hex[:16]}",
            model_id=model_id,
            version=str(target),
            action="rollback",
            ts=time.time(),
            previous_version=current,
            artifact_uri=known.artifact_uri if known else None,
        )
        await send_acked(self.w.deployments, model_id, encode(dep))
        log.warning("model %s: manual rollback %s -> %s", model_id, current, target)
        return view.json({"deployment_id": dep.deployment_id, "version": target}, status=202)


COOKIE = "streamproc_token"


def _carries(request: Request, token: str, cookie: bool = True) -> bool:
    """The request bears ``token``: as ``Authorization: Bearer``, or (reads) in the cookie.

    Actions take the header only: a cookie is sent by the browser on its own, which would
    let another page post actions in the operator's name (CSRF).
    """
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not given and cookie:
        given = str(request.cookies.get(COOKIE, ""))
    return bool(given) and hmac.compare_digest(given.encode(), token.encode())


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:  # also not UTF-8: an empty body is what is meant
        return {}
    return body if isinstance(body, dict) else {}


async def _registered(registry: Registry, model_id: str, version: str) -> Any:
    """The version's registry entry, or None; off the event loop (MLflow is a network call)."""
    try:
        return await asyncio.get_running_loop().run_in_executor(
            None, registry.get, model_id, version
        )
    except Exception as exc:  # the rollback goes out without an artifact_uri, not a 500
        log.warning("model %s: registry lookup of %s failed (%s)", model_id, version, exc)
        return None


def _previous(view: Any) -> str | None:
    """The version the latest promotion replaced."""
    for d in reversed(view.timeline.decisions):
        if d.kind == "deployed":
            prev = d.event.get("previous_version")
            return str(prev) if prev else None
    return None


def _redirect(view: View, location: str, headers: dict[str, str] | None = None) -> Response:
    return view.text("", status=302, headers={"Location": location, **(headers or {})})


def _json(view: View, value: Any, status: int = 200) -> Response:
    # orjson: NaN-safe and fast for big series; faust's json() would use the stdlib.
    # Readable cross-origin: one worker's dashboard gathers the others (?workers=). Only these
    # GET views say so; the token-guarded POSTs stay same-origin.
    return view.bytes(
        orjson.dumps(value),
        content_type="application/json",
        status=status,
        headers={"Access-Control-Allow-Origin": "*"},
    )
