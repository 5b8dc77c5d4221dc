"""The blob server a node runs for its peers: the cluster token is required, paths are exactly
/blobs/<sha256>, and Range requests get exactly the asked bytes."""
import os

import pytest
import requests

from inference.cache.peer_server import TOKEN_HEADER, PeerServer
from inference.cache.store import BlobStore


@pytest.fixture
def peer(tmp_path):
    store = BlobStore(tmp_path / "cache")
    source = tmp_path / "blob"
    source.write_bytes(os.urandom(100_000))
    digest = store.add_file(source)
    server = PeerServer(store, "right-token", host="127.0.0.1").start()
    yield f"http://127.0.0.1:{server.port}", digest, source.read_bytes()
    server.stop()


def test_it_refuses_a_wrong_token_with_403(peer):
    url, digest, _ = peer
    assert requests.get(f"{url}/blobs/{digest}", headers={TOKEN_HEADER: "wrong-token"}).status_code == 403
    assert requests.get(f"{url}/blobs/{digest}").status_code == 403


@pytest.mark.parametrize("path", ["/blobs/../refs/x", "/blobs/..%2F..%2Fetc%2Fpasswd", "/../../etc/passwd", "/blobs/" + "0" * 64])
def test_it_refuses_paths_that_are_not_a_blob_it_holds(peer, path):
    url, _, _ = peer
    response = requests.Session().send(
        requests.Request("GET", url + path, headers={TOKEN_HEADER: "right-token"}).prepare()
    )
    assert response.status_code in (400, 404)


def test_it_answers_a_range_request_with_exactly_those_bytes(peer):
    url, digest, content = peer
    response = requests.get(f"{url}/blobs/{digest}", headers={TOKEN_HEADER: "right-token", "Range": "bytes=1000-1999"})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes 1000-1999/{len(content)}"
    assert response.content == content[1000:2000]
