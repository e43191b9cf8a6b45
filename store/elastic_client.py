"""One small REST adapter over the `elasticsearch` and `opensearch-py` clients.

The store speaks plain REST paths and JSON bodies through `SearchClient`,
so the only code that knows which client library is in use is here: how a
request is sent, how errors look, and how auth/TLS options are passed.
Both clients are asked not to retry on their own; `ElasticStore` retries
with back-off and spools what it cannot write.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

import urllib3

from store.base import StoreError, StoreUnavailable

log = logging.getLogger(__name__)

#: HTTP statuses that mean "try again later", not "this request is wrong".
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class RequestError(StoreError):
    """The cluster refused a request (4xx other than "busy"): not worth retrying."""

    def __init__(self, status: int, error_type: str, reason: str) -> None:
        super().__init__(f"HTTP {status} {error_type}: {reason}")
        self.status = status
        self.error_type = error_type
        self.reason = reason


class SearchClient(Protocol):
    """What `ElasticStore` needs from a client: one JSON request at a time."""

    flavour: str  # "elasticsearch" | "opensearch"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        ndjson: bool = False,
    ) -> Any:
        """Send one request; return the decoded JSON body (HEAD: True if 2xx, False if 404).

        Raises `StoreUnavailable` when the cluster cannot be reached or is
        busy (retryable), `RequestError` for any other error status.
        """
        ...

    def close(self) -> None: ...


def _classify(status: int, body: Any, fallback: str) -> StoreError:
    error_type, reason = "error", fallback
    if isinstance(body, Mapping):
        err = body.get("error", body)
        if isinstance(err, Mapping):
            error_type = str(err.get("type", error_type))
            reason = str(err.get("reason", reason))
        elif err:
            reason = str(err)
    elif isinstance(body, str) and body:
        reason = body[:500]
    if status in (401, 403) and error_type != "cluster_block_exception":
        # Wrong or expired credentials: nothing is wrong with the data, so
        # writes spool until an operator fixes store.es_username/password/api_key.
        return StoreUnavailable(
            f"HTTP {status} {error_type}: {reason} (check the credentials in the store "
            "URL or store.es_username / store.es_password / store.es_api_key)"
        )
    if status in RETRYABLE_STATUS or error_type == "cluster_block_exception":
        # A read-only / flood-stage block is the cluster refusing writes for a
        # while; the caller spools and replays rather than dropping data.
        return StoreUnavailable(f"HTTP {status} {error_type}: {reason}")
    return RequestError(status, error_type, reason)


@dataclass(frozen=True)
class ConnectionOptions:
    """Where and how to connect, parsed from the store URL plus settings."""

    url: str  # without credentials
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    verify_certs: bool = True
    ca_certs: str | None = None
    timeout: float = 30.0

    @classmethod
    def from_url(cls, url: str, settings: Mapping[str, Any] | None = None) -> ConnectionOptions:
        """Split user:password@ out of the URL; settings fill what the URL lacks."""
        settings = settings or {}
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StoreError(f"not an Elasticsearch URL: {url!r}")
        netloc = parts.hostname
        if ":" in netloc:  # IPv6 literal
            netloc = f"[{netloc}]"
        if parts.port:
            netloc += f":{parts.port}"
        # The path is the cluster prefix (reverse proxies); the query is unused.
        clean = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        username = (
            unquote(parts.username) if parts.username else settings.get("store.es_username") or None
        )
        password = (
            unquote(parts.password) if parts.password else settings.get("store.es_password") or None
        )
        return cls(
            url=clean,
            username=username,
            password=password,
            api_key=settings.get("store.es_api_key") or None,
            verify_certs=bool(settings.get("store.es_verify_certs", True)),
            ca_certs=settings.get("store.es_ca_certs") or None,
            timeout=float(settings.get("store.es_timeout", 30.0)),
        )


def detect_cluster(options: ConnectionOptions) -> tuple[str, int | None]:
    """Ask the root endpoint: ("elasticsearch" | "opensearch", major version or None).

    Done with plain urllib3 because the official client refuses to talk to
    anything that is not Elasticsearch, so it cannot be used to find out.
    """
    headers = urllib3.make_headers(
        basic_auth=f"{options.username}:{options.password or ''}" if options.username else None
    )
    if options.api_key:
        headers["Authorization"] = f"ApiKey {options.api_key}"
    kwargs: dict[str, Any] = {"timeout": options.timeout, "retries": False}
    if options.url.startswith("https"):
        kwargs["cert_reqs"] = "CERT_REQUIRED" if options.verify_certs else "CERT_NONE"
        if options.ca_certs:
            kwargs["ca_certs"] = options.ca_certs
    pool = urllib3.PoolManager(**kwargs)
    try:
        resp = pool.request("GET", options.url + "/", headers=headers)
    except urllib3.exceptions.HTTPError as exc:
        raise StoreUnavailable(f"cannot reach {options.url}: {exc}") from None
    finally:
        pool.clear()
    try:
        info = json.loads(resp.data or b"{}")
    except ValueError:
        info = {}
    if resp.status >= 400:
        raise _classify(resp.status, info, resp.data.decode("utf-8", "replace"))
    version = info.get("version", {}) if isinstance(info, dict) else {}
    number = str(version.get("number", ""))
    major = int(number.split(".")[0]) if number.split(".")[0].isdigit() else None
    flavour = "opensearch" if version.get("distribution") == "opensearch" else "elasticsearch"
    return flavour, major


def _dump_ndjson(lines: list[Any]) -> str:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


class ElasticsearchClient:
    """`SearchClient` over the official `elasticsearch` client (8.x / 9.x)."""

    flavour = "elasticsearch"

    def __init__(
        self, options: ConnectionOptions, server_major: int | None = None, **client_kwargs: Any
    ) -> None:
        from elasticsearch import Elasticsearch
        from elasticsearch import __versionstr__ as client_version

        # The client asks for "compatible-with=<its own major>", which a cluster
        # one major older refuses; ask for the cluster's own major instead.
        self._compat: str | None = None
        if server_major and server_major != int(client_version.split(".")[0]):
            self._compat = str(server_major)

        kwargs: dict[str, Any] = {
            "request_timeout": options.timeout,
            "max_retries": 0,
            "retry_on_timeout": False,
            "verify_certs": options.verify_certs,
        }
        if options.ca_certs:
            kwargs["ca_certs"] = options.ca_certs
        if options.api_key:
            kwargs["api_key"] = options.api_key
        elif options.username:
            kwargs["basic_auth"] = (options.username, options.password or "")
        kwargs.update(client_kwargs)
        self._es = Elasticsearch(options.url, **kwargs)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        ndjson: bool = False,
    ) -> Any:
        from elastic_transport import ApiError, TransportError

        if self._compat:
            json_type = f"application/vnd.elasticsearch+json; compatible-with={self._compat}"
            ndjson_type = f"application/vnd.elasticsearch+x-ndjson; compatible-with={self._compat}"
        else:
            json_type, ndjson_type = "application/json", "application/x-ndjson"
        headers = {"accept": json_type}
        if body is not None:
            headers["content-type"] = ndjson_type if ndjson else json_type
            if ndjson:
                body = _dump_ndjson(body)
        try:
            resp = self._es.perform_request(method, path, params=params, headers=headers, body=body)
        except ApiError as exc:
            raise _classify(exc.meta.status, exc.body, str(exc)) from None
        except TransportError as exc:  # connection refused, timeout, TLS
            raise StoreUnavailable(f"Elasticsearch unreachable: {exc}") from None
        if method == "HEAD":
            return 200 <= resp.meta.status < 300
        return resp.body

    def close(self) -> None:
        self._es.close()


class OpenSearchClient:
    """`SearchClient` over `opensearch-py` (OpenSearch 1.x / 2.x / 3.x)."""

    flavour = "opensearch"

    def __init__(self, options: ConnectionOptions, **client_kwargs: Any) -> None:
        from opensearchpy import OpenSearch

        kwargs: dict[str, Any] = {
            "timeout": options.timeout,
            "max_retries": 0,
            "retry_on_timeout": False,
            "verify_certs": options.verify_certs,
            "ssl_show_warn": options.verify_certs,
        }
        if options.ca_certs:
            kwargs["ca_certs"] = options.ca_certs
        if options.api_key:
            kwargs["headers"] = {"Authorization": f"ApiKey {options.api_key}"}
        elif options.username:
            kwargs["http_auth"] = (options.username, options.password or "")
        kwargs.update(client_kwargs)
        self._os = OpenSearch(hosts=[options.url], **kwargs)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        ndjson: bool = False,
    ) -> Any:
        from opensearchpy.exceptions import ConnectionError as OsConnectionError
        from opensearchpy.exceptions import TransportError

        headers = None
        if body is not None and ndjson:
            body = _dump_ndjson(body)
            headers = {"content-type": "application/x-ndjson"}
        try:
            # opensearch-py answers HEAD with a bool (404 -> False) itself.
            return self._os.transport.perform_request(
                method, path, params=dict(params or {}), body=body, headers=headers
            )
        except OsConnectionError as exc:  # includes timeouts and TLS errors
            raise StoreUnavailable(f"OpenSearch unreachable: {exc}") from None
        except TransportError as exc:
            status = exc.status_code if isinstance(exc.status_code, int) else 503
            raise _classify(status, exc.info, str(exc.error)) from None

    def close(self) -> None:
        self._os.close()


def make_client(options: ConnectionOptions, flavour: str = "auto") -> SearchClient:
    """Build the client for `flavour` ("auto" asks the cluster which it is)."""
    major: int | None = None
    if flavour in ("auto", "elasticsearch"):
        try:
            detected, major = detect_cluster(options)
        except StoreUnavailable:
            if flavour == "auto":
                raise
            detected = flavour  # down now; the client's own media type is the best guess
        flavour = detected if flavour == "auto" else flavour
    if flavour == "elasticsearch":
        return ElasticsearchClient(options, server_major=major)
    if flavour == "opensearch":
        return OpenSearchClient(options)
    raise StoreError(f"store.es_client must be auto, elasticsearch or opensearch, not {flavour!r}")
