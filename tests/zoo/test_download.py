"""Downloads into the cache against a file served on 127.0.0.1 by a thread of the test: good and bad checksums,
a connection cut short, an unreachable host, and the Google Drive sources that are never fetched."""
import hashlib
import os
import socket
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from segkit.zoo import ENTRIES, DownloadError, cached_path, download_file, ensure_file

PAYLOAD = os.urandom(3 * 2**20 + 17)  # several read chunks
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the http.server API)
        if self.path == "/missing":
            self.send_error(404)
            return
        body = PAYLOAD[: len(PAYLOAD) // 2] if self.path == "/truncated" else PAYLOAD
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))  # the truncated reply announces the whole file
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def test_good_checksum_gives_the_file(server, tmp_path):
    dst = tmp_path / "a" / "file.pth"
    download_file(f"{server}/file.pth", str(dst), DIGEST[:8])
    assert dst.read_bytes() == PAYLOAD
    assert leftovers(dst.parent) == ["file.pth"]  # no temporary left beside it


def test_bad_checksum_leaves_nothing(server, tmp_path):
    dst = tmp_path / "file.pth"
    with pytest.raises(DownloadError, match=r"does not have the published checksum.*expected a prefix 00000000"):
        download_file(f"{server}/file.pth", str(dst), "00000000")
    assert leftovers(tmp_path) == []


def test_truncated_download_leaves_nothing(server, tmp_path):
    dst = tmp_path / "file.pth"
    # No checksum to catch it: the byte count against Content-Length must.
    with pytest.raises(DownloadError, match=rf"broke off after {len(PAYLOAD) // 2} of {len(PAYLOAD)} bytes"):
        download_file(f"{server}/truncated", str(dst))
    assert leftovers(tmp_path) == []


def test_http_error_and_unreachable_host_name_the_url(server, tmp_path):
    with pytest.raises(DownloadError, match=r"could not download .*/missing: HTTP 404"):
        download_file(f"{server}/missing", str(tmp_path / "x"))
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/file.pth"
    with pytest.raises(DownloadError, match=rf"could not download {url} \(offline or unreachable"):
        download_file(url, str(tmp_path / "x"))
    assert leftovers(tmp_path) == []


def test_entry_download_goes_to_the_cache_once(server, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path))
    entry = replace(ENTRIES["fcn_r50_d8_cityscapes"], url=f"{server}/file.pth", sha256=DIGEST[:8])
    path = ensure_file(entry)
    assert path == cached_path(entry) == str(tmp_path / "zoo" / entry.name / entry.filename)
    assert open(path, "rb").read() == PAYLOAD
    monkeypatch.setattr("segkit.zoo.download.download_file", lambda *a, **k: pytest.fail("downloaded twice"))
    assert ensure_file(entry) == path


def test_failed_entry_download_says_how_to_take_the_file_by_hand(server, tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path))
    entry = replace(ENTRIES["fcn_r50_d8_cityscapes"], url=f"{server}/file.pth", sha256="00000000")
    with pytest.raises(DownloadError) as err:
        ensure_file(entry)
    message = str(err.value)
    assert "\n" not in message and f"{server}/file.pth" in message
    assert f"python tools/zoo.py convert {entry.name} --src FILE --out OUT.pth" in message
    assert cached_path(entry) in message and not os.path.exists(cached_path(entry))


def test_google_drive_entries_are_never_fetched(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_CACHE", str(tmp_path))
    monkeypatch.setattr("segkit.zoo.download.download_file", lambda *a, **k: pytest.fail("tried a web page"))
    entry = ENTRIES["pidnet_s_cityscapes"]
    with pytest.raises(DownloadError, match=r"is a web page segkit does not download from") as err:
        ensure_file(entry)
    assert entry.url in str(err.value) and "tools/zoo.py convert pidnet_s_cityscapes" in str(err.value)
    # A file placed by hand is used as it is.
    os.makedirs(os.path.dirname(cached_path(entry)))
    open(cached_path(entry), "wb").close()
    assert ensure_file(entry) == cached_path(entry)
