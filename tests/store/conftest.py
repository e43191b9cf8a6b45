"""Fixtures for the store tests: an in-memory OpenSearch-compatible server and ElasticStores.

`elastic_store` yields a fresh `ElasticStore` (its own index prefix) on
osmem-server, once through ``opensearch-py`` and once through the official
``elasticsearch`` client.  When ``GOVPULSE_TEST_ES_URL`` is set it also
runs against that real cluster (param ``cluster``); see docs/elasticsearch.md.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from store.elastic import ElasticStore
from store.elastic_client import (
    ConnectionOptions,
    ElasticsearchClient,
    OpenSearchClient,
    make_client,
)

REAL_CLUSTER_URL = os.environ.get("GOVPULSE_TEST_ES_URL", "")
ELASTIC_PARAMS = ["opensearch", "elasticsearch"] + (["cluster"] if REAL_CLUSTER_URL else [])


# --------------------------------------------------------------------------
# TEST-ONLY ADAPTER.  The official `elasticsearch` client sends
#   Content-Type / Accept: application/vnd.elasticsearch+json; compatible-with=9
# which osmem-server refuses with 406, and it refuses any server whose
# responses lack "X-Elastic-Product: Elasticsearch".  This node rewrites the
# media types to plain application/json and adds the product header, so the
# official client can be exercised against osmem.  Never used in the product:
# real Elasticsearch clusters understand the compatible-with types natively.
# --------------------------------------------------------------------------
def osmem_compat_node_class() -> type:
    from elastic_transport import ApiResponseMeta, HttpHeaders, Urllib3HttpNode
    from elastic_transport._node._base import NodeApiResponse

    class OsmemCompatNode(Urllib3HttpNode):  # test-only, see the banner above
        seen_media_types: ClassVar[list[str]] = []  # what the client sent, for assertions

        def perform_request(
            self, method, target, body=None, headers=None, request_timeout=None, **kw
        ):  # type: ignore[no-untyped-def]
            fixed = HttpHeaders()
            for key, value in (headers or {}).items():
                if key.lower() in ("content-type", "accept"):
                    OsmemCompatNode.seen_media_types.append(value)
                    value = (
                        value.replace(
                            "application/vnd.elasticsearch+x-ndjson", "application/x-ndjson"
                        )
                        .replace("application/vnd.elasticsearch+json", "application/json")
                        .split(";")[0]
                    )
                fixed[key] = value
            kwargs = {} if request_timeout is None else {"request_timeout": request_timeout}
            resp = super().perform_request(method, target, body=body, headers=fixed, **kwargs, **kw)
            resp_headers = HttpHeaders(resp.meta.headers)
            resp_headers["x-elastic-product"] = "Elasticsearch"
            meta = ApiResponseMeta(
                status=resp.meta.status,
                http_version=resp.meta.http_version,
                headers=resp_headers,
                duration=resp.meta.duration,
                node=resp.meta.node,
            )
            return NodeApiResponse(meta, resp.body)

    return OsmemCompatNode


@pytest.fixture(scope="session")
def osmem() -> Iterator[object]:
    """One osmem-server for the session (in-memory; each test uses its own prefix)."""
    osmem_server = pytest.importorskip("osmem_server")
    server = osmem_server.OsmemServer.start(japanese=False)
    yield server
    server.close()


def make_elastic_client(kind: str, url: str):  # type: ignore[no-untyped-def]
    """A SearchClient of `kind` for `url` (osmem for opensearch/elasticsearch)."""
    options = ConnectionOptions.from_url(url)
    if kind == "opensearch":
        return OpenSearchClient(options)
    if kind == "elasticsearch":
        return ElasticsearchClient(options, node_class=osmem_compat_node_class())
    return make_client(ConnectionOptions.from_url(url, _real_cluster_settings()))


def _real_cluster_settings() -> dict[str, object]:
    return {
        "store.es_verify_certs": os.environ.get("GOVPULSE_TEST_ES_VERIFY_CERTS", "1") != "0",
        "store.es_ca_certs": os.environ.get("GOVPULSE_TEST_ES_CA_CERTS", ""),
    }


def _drop_prefix(client, prefix: str) -> None:  # type: ignore[no-untyped-def]
    from store.base import StoreError

    for path in (f"/{prefix}-*", f"/_index_template/{prefix}-messages"):
        with contextlib.suppress(StoreError):
            client.request("DELETE", path)


def fresh_target(request, kind: str, tmp_path: Path) -> tuple[str, str, str, Path]:  # type: ignore[no-untyped-def]
    """(kind, url, unique prefix, spool path); the prefix's indices are dropped at teardown."""
    url = REAL_CLUSTER_URL if kind == "cluster" else request.getfixturevalue("osmem").url
    prefix = f"gpt-{uuid.uuid4().hex[:10]}"

    def drop() -> None:
        client = make_elastic_client(kind, url)
        _drop_prefix(client, prefix)
        client.close()

    request.addfinalizer(drop)
    return kind, url, prefix, tmp_path / "spool.sqlite"


def open_elastic_store(target, **kwargs) -> ElasticStore:  # type: ignore[no-untyped-def]
    """An ElasticStore on `target` with test-friendly (short) retry back-off."""
    kind, url, prefix, spool = target
    kwargs.setdefault("retries", 1)
    kwargs.setdefault("backoff_s", 0.05)
    kwargs.setdefault("replicas", 0)
    return ElasticStore(
        make_elastic_client(kind, url), url=url, prefix=prefix, spool_path=spool, **kwargs
    )


@pytest.fixture(params=ELASTIC_PARAMS)
def elastic_target(request, tmp_path: Path) -> tuple[str, str, str, Path]:
    """Where a test's ElasticStore lives, per client library."""
    return fresh_target(request, request.param, tmp_path)


@pytest.fixture(params=ELASTIC_PARAMS)
def elastic_store(request, tmp_path: Path) -> Iterator[ElasticStore]:
    """A fresh ElasticStore (own index prefix) per test, per client library."""
    store = open_elastic_store(fresh_target(request, request.param, tmp_path))
    yield store
    store.close()


@pytest.fixture
def elastic_store_factory(request, tmp_path: Path):  # type: ignore[no-untyped-def]
    """``factory(flavour) -> ElasticStore`` for the contract suite.

    flavour "opensearch" / "elasticsearch" use osmem-server through that
    client library; when GOVPULSE_TEST_ES_URL is set both run against the
    real cluster instead (each with its own index prefix).
    """
    opened: list[ElasticStore] = []

    def factory(flavour: str) -> ElasticStore:
        kind = "cluster" if REAL_CLUSTER_URL else flavour
        store = open_elastic_store(fresh_target(request, kind, tmp_path / f"s{len(opened)}"))
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()
