"""The wire to InfluxDB: the only module importing ``influxdb_client`` (2.x) and ``aiohttp`` for InfluxDB 1.x.

Everything the libraries raise or answer becomes a ``TwinError`` here, through one mapping
(:func:`reason`: HTTP status → ``HTTP 401 Unauthorized: ...``, no answer → ``influx unreachable:
...``), so nothing library-specific leaks out:

* ``InfluxClient`` — the historian's 2.x client: line protocol written synchronously, in the chunks
  it is given (no background batching, no retries inside the library: store-and-forward decides
  when to try again), Flux answered as annotated-CSV text; failures are ``HistorianError``
  (``InfluxDB write to URL failed: ...``).
* ``InfluxHttpClient`` — the historian's InfluxQL reads (the v1 query API, which 1.x, 2.x and 3.x
  all serve) and its writes to ``/write`` or ``/api/v2/write``, over the standard library;
* ``FluxQueryClient`` — the feed's 2.x Flux queries, run in a worker thread under a deadline;
  ``InfluxQLClient`` — the feed's 1.x ``/query`` over HTTP (aiohttp, one session per feed);
  failures are ``SourceError`` whose text is what the feed's readings show.

Tokens and passwords are passed in, used for the connection and kept out of ``repr`` and logs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import aiohttp
from influxdb_client import InfluxDBClient, WritePrecision  # type: ignore[attr-defined]
from influxdb_client.client.write_api import WriteOptions, WriteType
from influxdb_client.rest import ApiException

from twin.errors import HistorianError, SourceError

__all__ = ["FluxQueryClient", "InfluxClient", "InfluxHttpClient", "InfluxQLClient", "basic_auth", "reason"]


# --- the one error mapping -------------------------------------------------------------------------


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _detail(body: object, first: str) -> str:
    """The message of an error answer's body (JSON ``error``/``message``, else its text), at most 200 characters."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not body:
        return ""
    try:
        doc = json.loads(str(body))
    except ValueError:
        return str(body).strip()[:200]
    second = "message" if first == "error" else "error"
    return str(doc.get(first) or doc.get(second) or "")[:200] if isinstance(doc, dict) else ""


def _http(status: int, phrase: str, detail: str) -> str:
    return f"HTTP {status} {phrase}".rstrip() + (f": {detail}" if detail else "")


def reason(exc: BaseException, url: str) -> str:
    """What a failed request to ``url`` says: the one table from library exceptions to reasons.

    ============================== ===============================================================
    ``ApiException`` (2.x answer)  ``HTTP 401 Unauthorized: <the answer's message>``
    ``aiohttp.ClientConnectorError`` ``influx unreachable: cannot connect to URL: <the OS error>``
    ``aiohttp.ClientError``        ``influx unreachable: <type>: <message>``
    anything else (urllib3, OS)    ``influx unreachable: <type>: <first line>``
    ============================== ===============================================================
    """
    if isinstance(exc, ApiException):
        return _http(exc.status, exc.reason or "", _detail(getattr(exc, "body", None), "message"))
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"influx unreachable: cannot connect to {url}: {exc.os_error}"
    if isinstance(exc, aiohttp.ClientError):
        return f"influx unreachable: {type(exc).__name__}: {exc}"
    return f"influx unreachable: {_short(exc)}"


def _no_answer(url: str, timeout_s: float) -> str:
    return f"influx unreachable: no answer from {url} within {timeout_s:g} s"


# --- InfluxDB 2.x ----------------------------------------------------------------------------------


def _client(url: str, org: str, token: str, timeout_s: float) -> InfluxDBClient:
    return InfluxDBClient(url=url, token=token, org=org, timeout=int(timeout_s * 1000), enable_gzip=False)


def _csv_text(resp: Any) -> str:
    data = resp.data if hasattr(resp, "data") else resp
    return data.decode("utf-8") if isinstance(data, bytes) else str(data)


class InfluxClient:
    """The historian's connection to an InfluxDB 2.x org: write line protocol, query Flux (``HistorianError``)."""

    def __init__(self, url: str, org: str, token: str, *, batch_size: int = 5000, timeout_s: float = 10.0) -> None:
        self.url, self.org = url, org
        self._client = _client(url, org, token, timeout_s)
        # synchronous, no retries inside the library: our forwarder decides when to try again
        self._write = self._client.write_api(
            write_options=WriteOptions(write_type=WriteType.synchronous, batch_size=batch_size, max_retries=0)
        )
        self._query = self._client.query_api()

    def __repr__(self) -> str:
        return f"InfluxClient(url={self.url!r}, org={self.org!r})"

    def write(self, bucket: str, chunk: str) -> None:
        """Send one chunk of line protocol (nanosecond timestamps); returns once InfluxDB accepted it."""
        try:
            self._write.write(bucket=bucket, org=self.org, record=chunk, write_precision=WritePrecision.NS)  # type: ignore[arg-type]
        except Exception as exc:  # the library raises urllib3, ApiException, OSError...
            raise HistorianError(f"InfluxDB write to {self.url} failed: {_short(exc)}") from exc

    def query_csv(self, flux: str) -> str:
        """The annotated-CSV answer to ``flux``."""
        try:
            return _csv_text(self._query.query_raw(flux, org=self.org))
        except Exception as exc:
            raise HistorianError(f"InfluxDB query to {self.url} failed: {_short(exc)}") from exc

    def close(self) -> None:
        try:
            self._write.close()  # type: ignore[no-untyped-call]
            self._client.close()  # type: ignore[no-untyped-call]
        except Exception as exc:  # pragma: no cover - closing a pool
            raise HistorianError(f"closing the InfluxDB client: {_short(exc)}") from exc


class FluxQueryClient:
    """The feed's Flux queries (``/api/v2/query``); failures are ``SourceError`` saying what its readings show.

    ``query_csv`` returns the annotated CSV as text (parsed by ``connectors.influx.csv``). The
    library's synchronous API runs in a worker thread, bounded by ``timeout_s`` (and half a second).
    """

    def __init__(self, url: str, org: str, token: str, *, timeout_s: float = 5.0) -> None:
        self.url, self.org, self.timeout_s = url, org, timeout_s
        self._client = _client(url, org, token, timeout_s)
        self._query = self._client.query_api()

    def __repr__(self) -> str:
        return f"FluxQueryClient(url={self.url!r}, org={self.org!r})"

    def _query_csv(self, flux: str) -> str:
        try:
            return _csv_text(self._query.query_raw(flux, org=self.org))
        except Exception as exc:  # ApiException (an answer with an error status), urllib3, OSError
            raise SourceError(reason(exc, self.url)) from exc

    async def query_csv(self, flux: str) -> str:
        try:
            async with asyncio.timeout(self.timeout_s + 0.5):
                return await asyncio.to_thread(self._query_csv, flux)
        except TimeoutError as exc:
            raise SourceError(_no_answer(self.url, self.timeout_s)) from exc

    def close(self) -> None:
        try:
            self._client.close()  # type: ignore[no-untyped-call]
        except Exception as exc:  # pragma: no cover - closing a pool
            raise SourceError(f"closing the InfluxDB client: {_short(exc)}") from exc


# --- InfluxDB 1.x ----------------------------------------------------------------------------------


def basic_auth(username: str, password: str) -> dict[str, str]:
    """The HTTP basic-auth header (built here: aiohttp's ``BasicAuth`` is deprecated from 3.14 on)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


class InfluxQLClient:
    """The feed's InfluxQL queries (``GET /query``, 1.x) over one aiohttp session; failures are ``SourceError``."""

    def __init__(self, url: str, *, timeout_s: float) -> None:
        self.url, self.timeout_s = url, timeout_s
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"InfluxQLClient(url={self.url!r})"

    async def query(self, params: dict[str, str], headers: dict[str, str]) -> bytes:
        """The JSON body of a 200 answer to ``/query?params``; any other answer or none is a ``SourceError``."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        try:
            async with asyncio.timeout(self.timeout_s + 0.25), \
                    self._session.get(f"{self.url}/query", params=params, headers=headers) as resp:
                body = await resp.read()
                status, phrase = resp.status, resp.reason or ""
        except TimeoutError as exc:
            raise SourceError(_no_answer(self.url, self.timeout_s)) from exc
        except aiohttp.ClientError as exc:
            raise SourceError(reason(exc, self.url)) from exc
        if status != 200:
            raise SourceError(_http(status, phrase, _detail(body, "error")))
        return body

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class InfluxHttpClient:
    """The historian's InfluxQL queries and its writes over plain HTTP (synchronous; ``HistorianError``).

    ``GET /query?db=&q=`` is the v1 query API: InfluxDB 1.x, 2.x through its v1 compatibility API
    (a DBRP mapping from the database name to the bucket) and InfluxDB 3 Core all answer it. Writes
    go to ``/write?db=`` (1.x) or ``/api/v2/write?org=&bucket=`` (2.x, 3.x). ``headers`` carry the
    credentials (``Authorization: Token ...`` or basic auth), never shown in ``repr``, logs or errors.
    Answers are read up to ``max_body_bytes`` (a runaway query is refused, not held in memory).
    """

    def __init__(self, url: str, headers: dict[str, str], *, timeout_s: float = 10.0,
                 max_body_bytes: int = 256 * 1024 * 1024) -> None:
        self.url, self.timeout_s, self.max_body_bytes = url.rstrip("/"), timeout_s, max_body_bytes
        self._headers = dict(headers)
        # no proxies from the environment: the credentials go to the configured server only
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def __repr__(self) -> str:
        return f"InfluxHttpClient(url={self.url!r})"

    def _send(self, request: urllib.request.Request, what: str) -> bytes:
        try:
            with self._opener.open(request, timeout=self.timeout_s) as resp:
                body: bytes = resp.read(self.max_body_bytes + 1)
        except urllib.error.HTTPError as exc:
            detail = _detail(exc.read(64 * 1024), "error")
            answer = _http(exc.code, exc.reason, detail)
            raise HistorianError(f"InfluxDB {what} to {self.url} failed: {answer}") from None
        except (urllib.error.URLError, OSError) as exc:
            cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise HistorianError(f"InfluxDB {what} to {self.url} failed: influx unreachable: {cause}") from None
        if len(body) > self.max_body_bytes:
            raise HistorianError(f"InfluxDB {what} to {self.url} failed: the answer is over "
                                 f"{self.max_body_bytes // (1024 * 1024)} MiB")
        return body

    def query(self, database: str, influxql: str, retention_policy: str = "") -> Any:
        """The decoded JSON answer of ``influxql`` (times as RFC 3339 text with nanoseconds)."""
        params = {"db": database, "q": influxql}
        if retention_policy:
            params["rp"] = retention_policy
        request = urllib.request.Request(f"{self.url}/query?{urllib.parse.urlencode(params)}", headers=self._headers)
        body = self._send(request, "query")
        try:
            return json.loads(body)
        except ValueError:
            raise HistorianError(f"InfluxDB query to {self.url} failed: the answer is not JSON") from None

    def write(self, chunk: str, *, database: str = "", retention_policy: str = "", org: str = "",
              bucket: str = "") -> None:
        """Write line protocol (ns precision): ``/api/v2/write`` when ``bucket`` is given, else ``/write``."""
        if bucket:
            path, params = "/api/v2/write", {"org": org, "bucket": bucket, "precision": "ns"}
        else:
            path, params = "/write", {"db": database, "precision": "ns"}
            if retention_policy:
                params["rp"] = retention_policy
        request = urllib.request.Request(f"{self.url}{path}?{urllib.parse.urlencode(params)}",
                                         data=chunk.encode("utf-8"), method="POST",
                                         headers={**self._headers, "Content-Type": "text/plain; charset=utf-8"})
        self._send(request, "write")

    def close(self) -> None:
        self._opener.close()
