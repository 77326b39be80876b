"""Record operator events through the collector's endpoint: the dashboard's ``twin.historian.EventRecorder``.

``CollectorRecorder(url, token).record(events)`` POSTs the events (``twin.codec`` layout) to
``URL/api/v1/events`` with the bearer token and returns once the collector answered that they are
committed to the history (``connectors.feeds.endpoint``); the dashboard then reads them back like
everything else. Otherwise it raises ``HistorianError`` (the collector cannot be reached, refused
the token, could not store them) or ``AlarmError`` (an event was rejected: the collector's reason),
each message saying what to do. Standard library only (``urllib``): the dashboard's process has no
event loop. Environment proxies and redirects are not followed (the token goes to ``url`` only),
and the token is never logged or shown (not in ``repr`` either).

Usage::

    recorder = CollectorRecorder("http://127.0.0.1:8081", token, timeout=15.0)
    recorder.record((event,))
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from twin import codec
from twin.errors import AlarmError, HistorianError
from twin.state import Event

__all__ = ["EVENTS_PATH", "CollectorRecorder"]

log = logging.getLogger(__name__)

EVENTS_PATH = "/api/v1/events"
_MAX_ANSWER = 64 * 1024  # the endpoint answers a few hundred bytes; more is not the collector


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error here: the bearer token must not follow it elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class CollectorRecorder:
    """An ``EventRecorder`` posting to the collector's endpoint at ``url`` (``http://HOST:PORT``)."""

    def __init__(self, url: str, token: str, timeout: float = 15.0) -> None:
        if not token:
            raise ValueError("the collector's endpoint needs a non-empty token")
        self.url = url.rstrip("/") + EVENTS_PATH
        self.timeout = timeout
        self._auth = "Bearer " + token
        self._open = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect()).open

    def __repr__(self) -> str:
        return f"CollectorRecorder({self.url!r}, timeout={self.timeout:g})"

    def record(self, events: Sequence[Event]) -> None:
        """Send ``events``; returns once the collector committed them all, raises with the reason otherwise."""
        if not events:
            return
        body = json.dumps([codec.event_to_dict(e) for e in events]).encode("utf-8")
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Authorization": self._auth, "Content-Type": "application/json"})
        try:
            with self._open(request, timeout=self.timeout) as resp:
                status, answer = int(resp.status), resp.read(_MAX_ANSWER)
        except urllib.error.HTTPError as exc:
            with exc:
                status, answer = exc.code, exc.read(_MAX_ANSWER)
        except TimeoutError:
            raise HistorianError(f"not recorded: the collector at {self.url} did not answer within "
                                 f"{self.timeout:g} s") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise HistorianError(f"not recorded: the collector at {self.url} did not answer within "
                                     f"{self.timeout:g} s") from None
            why = getattr(reason, "strerror", None) or str(reason)
            raise HistorianError(f"not recorded: the collector at {self.url} cannot be reached ({why}); "
                                 "is twin collect running with [feeds.http]?") from None
        self._check(status, answer, len(events))

    def _check(self, status: int, answer: bytes, sent: int) -> None:
        try:
            doc = json.loads(answer.decode("utf-8"))
        except ValueError:
            doc = None
        if status == 401:
            raise HistorianError(f"not recorded: the collector at {self.url} refused the token (401); the "
                                 "dashboard reads the token [feeds.http] of the plant file names")
        if status != 200 or not isinstance(doc, dict):
            error = doc.get("error") if isinstance(doc, dict) else None
            said = f": {str(error)[:300]}" if error else ""
            raise HistorianError(f"not recorded: the collector at {self.url} answered {status}{said}")
        rejected = doc.get("rejected") or []
        if rejected:
            reasons = "; ".join(_reason(r, sent) for r in rejected[:3])
            accepted = doc.get("accepted", 0)
            kept = f" ({accepted} of {sent} recorded)" if accepted else ""
            log.warning("the collector rejected %d of %d events: %s", len(rejected), sent, reasons)
            raise AlarmError(f"not recorded{kept}: the collector rejected it: {reasons}")


def _reason(rejected: object, sent: int) -> str:
    if not isinstance(rejected, dict):
        return str(rejected)[:200]
    reason = str(rejected.get("reason", ""))[:300]
    return reason if sent == 1 else f"event {rejected.get('index')}: {reason}"
