"""``streamproc status``: the workers' status API as a table, gathered from one or more workers.

Each worker serves the models of its own partitions; give every worker's web address to see all.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from streamproc.config import Settings

__all__ = ["fetch_status", "format_table", "gather"]

COLUMNS = ("model", "version", "deployed", "nearest signal", "stat/thr", "retrain", "last result")


def fetch_status(base_url: str, timeout: float = 5.0) -> dict[str, Any]:
    """GET ``{base_url}/api/status``; raise OSError saying which worker did not answer."""
    url = base_url.rstrip("/") + "/api/status"
    # A worker with STREAMPROC_WEB_AUTH=reads asks its admin token of reads too.
    token = Settings(admin_token_file=os.environ.get("STREAMPROC_ADMIN_TOKEN_FILE")).admin_token()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        request = urllib.request.Request(url, headers=headers)
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return dict(orjson.loads(resp.read()))
    except (urllib.error.URLError, OSError, orjson.JSONDecodeError) as exc:
        raise OSError(
            f"no status from {url} ({exc}); is a worker running there? "
            "Pass each worker's address with --web, e.g. --web http://127.0.0.1:6066"
        ) from None


def gather(urls: Sequence[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Models from every worker that answered, and one error line per worker that did not."""
    models: list[dict[str, Any]] = []
    errors: list[str] = []
    for url in urls:
        try:
            models += [{**m, "worker": url} for m in fetch_status(url)["models"]]
        except OSError as exc:
            errors.append(str(exc))
    return sorted(models, key=lambda m: str(m["model_id"])), errors


def format_table(models: Iterable[dict[str, Any]], now: float | None = None) -> str:
    """One line per model, columns aligned.

    >>> print(format_table([{"model_id": "m1", "version": "v2", "deployed_at": 90.0,
    ...     "nearest_signal": {"signal": "error", "ratio": 0.42}, "in_flight": None,
    ...     "last_result": {"status": "succeeded", "request_id": "rr-1"}}], now=100.0))
    model  version  deployed  nearest signal  stat/thr  retrain  last result
    m1     v2       10s ago   error           0.42      -        succeeded rr-1
    """
    now = time.time() if now is None else now
    rows = [COLUMNS]
    for m in models:
        sig = m.get("nearest_signal") or {}
        flight = m.get("in_flight") or {}
        last = m.get("last_result") or {}
        rows.append((
            str(m["model_id"]),
            str(m.get("version", "?")),
            _ago(now, m.get("deployed_at")),
            str(sig.get("signal", "-")),
            f"{sig['ratio']:.2f}" if "ratio" in sig else "-",
            str(flight.get("request_id", "-")),
            f"{last['status']} {last.get('request_id', '')}".strip() if last else "-",
        ))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
    return "\n".join(line.rstrip() for line in lines)


def _ago(now: float, ts: float | None) -> str:
    if ts is None:
        return "-"
    s = max(now - ts, 0.0)
    if s < 120:
        return f"{s:.0f}s ago"
    return f"{s / 60:.0f}m ago" if s < 7200 else f"{s / 3600:.0f}h ago"
