"""omzconv.download: fetch against a real HTTP server on 127.0.0.1 (no internet), safe extraction."""

from __future__ import annotations

import hashlib
import io
import os
import re
import socket
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from werkzeug.wrappers import Request, Response

from omzconv.download import stream
from omzconv.download import (
    Action,
    dry_run_plan,
    extract_archive,
    fetch,
    member_problem,
    parse_content_range,
    plan,
    response_action,
    verify_file,
)
from omzconv.errors import ArchiveError, DownloadError, IntegrityError
from omzconv.registry import Digest, FileSpec

NAME = "model_2016.tar.gz"


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _local_only(monkeypatch):
    """Small chunks (several progress calls for a small file) and no proxy between us and 127.0.0.1."""
    monkeypatch.setattr(stream, "CHUNK_SIZE", 16 * 1024)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def tar_bytes(members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


@pytest.fixture(scope="module")
def ckpt() -> bytes:
    return os.urandom(150_000)


@pytest.fixture(scope="module")
def payload(ckpt) -> bytes:
    """A small checkpoint archive, like the real ones: random bytes compress to ~150 KB."""
    return tar_bytes([file_member("model.ckpt", ckpt), file_member("README", b"synthetic\n")])


def make_spec(data: bytes, urls: list[str], algorithm: str = "sha256", *, size: int | None | str = "auto",
              hexdigest: str | None = None) -> FileSpec:
    return FileSpec(
        name=NAME,
        size=len(data) if size == "auto" else size,
        digest=Digest(algorithm, hexdigest or hashlib.new(algorithm, data).hexdigest()),
        urls=tuple(urls),
    )


def range_handler(data: bytes):
    """A server that honours `Range: bytes=N-` the way download servers do."""

    def handle(request: Request) -> Response:
        match = re.fullmatch(r"bytes=(\d+)-", request.headers.get("Range", ""))
        if match is None:
            return Response(data, status=200, content_type="application/gzip")
        start = int(match[1])
        if start >= len(data):
            return Response(b"", status=416, headers={"Content-Range": f"bytes */{len(data)}"})
        return Response(data[start:], status=206, content_type="application/gzip",
                        headers={"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})

    return handle


def closed_port_url(path: str) -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


# --- pure decisions ------------------------------------------------------------------------------


def test_plan_without_files_fetches_from_zero(tmp_path, payload):
    spec = make_spec(payload, ["http://x/f"])
    assert plan(tmp_path / NAME, tmp_path / f"{NAME}.part", spec) == Action("fetch", 0, "")


def test_plan_resumes_a_partial_part(tmp_path, payload):
    spec = make_spec(payload, ["http://x/f"])
    (tmp_path / f"{NAME}.part").write_bytes(payload[:1234])
    action = plan(tmp_path / NAME, tmp_path / f"{NAME}.part", spec)
    assert (action.kind, action.offset) == ("resume", 1234)


def test_plan_resumes_when_size_is_not_declared(tmp_path, payload):
    spec = make_spec(payload, ["http://x/f"], size=None)
    (tmp_path / f"{NAME}.part").write_bytes(payload)
    action = plan(tmp_path / NAME, tmp_path / f"{NAME}.part", spec)
    assert (action.kind, action.offset) == ("resume", len(payload))


def test_plan_finishes_a_complete_part_and_discards_an_overlong_one(tmp_path, payload):
    spec = make_spec(payload, ["http://x/f"])
    part = tmp_path / f"{NAME}.part"
    part.write_bytes(payload)
    assert plan(tmp_path / NAME, part, spec).kind == "finish"
    part.write_bytes(payload + b"x")
    action = plan(tmp_path / NAME, part, spec)
    assert (action.kind, action.offset) == ("fetch", 0)
    assert "longer than declared" in action.reason


def test_plan_skips_a_verified_file_and_refetches_a_corrupt_one(tmp_path, payload):
    spec = make_spec(payload, ["http://x/f"])
    final = tmp_path / NAME
    final.write_bytes(payload)
    assert plan(final, tmp_path / f"{NAME}.part", spec).kind == "skip"
    final.write_bytes(payload[:-1] + bytes([payload[-1] ^ 1]))  # same size, one bit flipped
    action = plan(final, tmp_path / f"{NAME}.part", spec)
    assert action.kind == "fetch"
    assert "hash mismatch" in action.reason


@pytest.mark.parametrize(
    ("status", "offset", "content_range", "expected"),
    [
        (200, 0, None, "write"),
        (200, 500, None, "write"),  # Range ignored: the body is the whole file
        (206, 500, "bytes 500-999/1000", "append"),
        (206, 500, "bytes 0-999/1000", "restart"),  # wrong start
        (206, 500, None, "restart"),
        (416, 500, "bytes */400", "restart"),
        (416, 0, None, "next"),
        (500, 0, None, "retry"),
        (503, 10, None, "retry"),
        (429, 0, None, "retry"),
        (404, 0, None, "next"),
        (403, 0, None, "next"),
        (410, 0, None, "next"),
    ],
)
def test_response_action(status, offset, content_range, expected):
    assert response_action(status, offset, content_range) == expected


def test_parse_content_range():
    assert parse_content_range("bytes 100-199/200") == (100, 200)
    assert parse_content_range("bytes 100-199/*") == (100, None)
    assert parse_content_range("bytes */200") is None
    assert parse_content_range(None) is None


def test_verify_file_names_what_differs(tmp_path, payload):
    path = tmp_path / NAME
    path.write_bytes(payload)
    verify_file(path, make_spec(payload, [], "md5"))  # does not raise
    bad = make_spec(payload, [], "md5", hexdigest="0" * 32)
    with pytest.raises(IntegrityError, match=rf"^{NAME}: hash mismatch from http://m/x: expected md5:0{{32}}, got md5:"
                                             rf"{hashlib.md5(payload).hexdigest()}$"):
        verify_file(path, bad, source="http://m/x")
    with pytest.raises(IntegrityError, match=rf"size mismatch: expected 3 bytes, got {len(payload)} bytes"):
        verify_file(path, make_spec(payload, [], size=3))
    assert path.read_bytes() == payload  # verification deletes nothing


def test_dry_run_plan_describes_each_case(tmp_path, payload):
    spec = make_spec(payload, ["http://mirror.example/m.tar.gz"])
    assert dry_run_plan(spec, tmp_path) == f"{NAME}: fetch {len(payload)} bytes from http://mirror.example/m.tar.gz"
    (tmp_path / f"{NAME}.part").write_bytes(payload[:10])
    assert dry_run_plan(spec, tmp_path) == (
        f"{NAME}: resume {tmp_path / NAME}.part from 10 bytes of {len(payload)} bytes from http://mirror.example/m.tar.gz")
    (tmp_path / f"{NAME}.part").unlink()
    (tmp_path / NAME).write_bytes(payload)
    assert dry_run_plan(spec, tmp_path) == f"{NAME}: skip, already downloaded and verified at {tmp_path / NAME}"
    assert sorted(p.name for p in tmp_path.iterdir()) == [NAME]  # a dry run writes nothing


# --- fetch against a local server ----------------------------------------------------------------


def test_fetch_verifies_and_reports_progress(httpserver, tmp_path, payload):
    httpserver.expect_request("/m.tar.gz").respond_with_handler(range_handler(payload))
    spec = make_spec(payload, [httpserver.url_for("/m.tar.gz")], "sha384")
    calls: list[tuple[int, int | None]] = []
    path = fetch(spec, tmp_path / "cache", progress=lambda done, total: calls.append((done, total)))
    assert path == tmp_path / "cache" / NAME
    assert path.read_bytes() == payload
    assert siblings(path) == [NAME]  # no .part left
    dones = [done for done, _ in calls]
    assert len(calls) >= 5 and dones == sorted(dones)
    assert dones[0] == 0 and dones[-1] == len(payload)
    assert {total for _, total in calls} == {len(payload)}


def test_fetch_resumes_a_truncated_part(httpserver, tmp_path, payload):
    httpserver.expect_request("/m.tar.gz").respond_with_handler(range_handler(payload))
    spec = make_spec(payload, [httpserver.url_for("/m.tar.gz")])
    (tmp_path / f"{NAME}.part").write_bytes(payload[:40_000])
    calls = []
    path = fetch(spec, tmp_path, progress=lambda done, total: calls.append((done, total)))
    assert path.read_bytes() == payload
    [(request, response)] = httpserver.log
    assert request.headers["Range"] == "bytes=40000-"
    assert response.status_code == 206
    assert len(response.get_data()) == len(payload) - 40_000  # only the rest was sent
    assert calls[0] == (40_000, len(payload))


def test_fetch_restarts_cleanly_when_the_server_ignores_range(httpserver, tmp_path, payload):
    httpserver.expect_request("/m.tar.gz").respond_with_data(payload, content_type="application/gzip")
    spec = make_spec(payload, [httpserver.url_for("/m.tar.gz")], "md5")
    (tmp_path / f"{NAME}.part").write_bytes(b"\0" * 40_000)  # garbage: must not survive
    path = fetch(spec, tmp_path)
    assert path.read_bytes() == payload
    [(request, response)] = httpserver.log
    assert request.headers["Range"] == "bytes=40000-"
    assert response.status_code == 200


def test_fetch_restarts_after_416(httpserver, tmp_path, payload):
    httpserver.expect_request("/m.tar.gz").respond_with_handler(range_handler(payload))
    spec = make_spec(payload, [httpserver.url_for("/m.tar.gz")], size=None)  # so plan() cannot tell
    (tmp_path / f"{NAME}.part").write_bytes(b"\0" * (len(payload) + 10))
    path = fetch(spec, tmp_path)
    assert path.read_bytes() == payload
    assert [(r.headers.get("Range"), resp.status_code) for r, resp in httpserver.log] == [
        (f"bytes={len(payload) + 10}-", 416), (None, 200)]


def test_fetch_restarts_when_content_range_starts_elsewhere(httpserver, tmp_path, payload):
    def wrong_start(request):
        if "Range" in request.headers:
            return Response(payload, status=206, headers={"Content-Range": f"bytes 0-{len(payload) - 1}/{len(payload)}"})
        return Response(payload, status=200)

    httpserver.expect_request("/m.tar.gz").respond_with_handler(wrong_start)
    spec = make_spec(payload, [httpserver.url_for("/m.tar.gz")])
    (tmp_path / f"{NAME}.part").write_bytes(b"\0" * 1000)
    assert fetch(spec, tmp_path).read_bytes() == payload
    assert [r.headers.get("Range") for r, _ in httpserver.log] == ["bytes=1000-", None]


def test_wrong_hash_deletes_the_part_and_leaves_no_file(httpserver, tmp_path, payload):
    httpserver.expect_request("/m.tar.gz").respond_with_data(payload)
    url = httpserver.url_for("/m.tar.gz")
    spec = make_spec(payload, [url], "sha384", hexdigest="ab" * 48)
    with pytest.raises(IntegrityError) as info:
        fetch(spec, tmp_path)
    got = hashlib.sha384(payload).hexdigest()
    assert str(info.value) == (f"{NAME}: hash mismatch from {url}: expected sha384:{'ab' * 48}, got sha384:{got}; "
                               "the bad file was deleted, run again to retry")
    assert list(tmp_path.iterdir()) == []


def test_wrong_size_deletes_the_part_and_leaves_no_file(httpserver, tmp_path, payload):
    httpserver.expect_request("/m.tar.gz").respond_with_data(payload)
    url = httpserver.url_for("/m.tar.gz")
    spec = make_spec(payload, [url], size=len(payload) + 1)
    with pytest.raises(IntegrityError, match=rf"size mismatch from {re.escape(url)}: expected {len(payload) + 1} "
                                             rf"bytes, got {len(payload)} bytes; the bad file was deleted"):
        fetch(spec, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_404_moves_on_to_the_mirror_without_retrying(httpserver, tmp_path, payload):
    httpserver.expect_request("/gone.tar.gz").respond_with_data("not here", status=404)
    httpserver.expect_request("/mirror.tar.gz").respond_with_data(payload)
    spec = make_spec(payload, [httpserver.url_for("/gone.tar.gz"), httpserver.url_for("/mirror.tar.gz")])
    assert fetch(spec, tmp_path, retries=3, backoff=0.001).read_bytes() == payload
    assert [r.path for r, _ in httpserver.log] == ["/gone.tar.gz", "/mirror.tar.gz"]


def test_transient_500_is_retried(httpserver, tmp_path, payload):
    httpserver.expect_oneshot_request("/m.tar.gz").respond_with_data("busy", status=500)
    httpserver.expect_request("/m.tar.gz").respond_with_data(payload)
    spec = make_spec(payload, [httpserver.url_for("/m.tar.gz")])
    assert fetch(spec, tmp_path, retries=2, backoff=0.001).read_bytes() == payload
    assert [resp.status_code for _, resp in httpserver.log] == [500, 200]


def test_persistent_503_gives_up_after_retries(httpserver, tmp_path, payload):
    httpserver.expect_request("/m.tar.gz").respond_with_data("busy", status=503)
    url = httpserver.url_for("/m.tar.gz")
    with pytest.raises(DownloadError) as info:
        fetch(make_spec(payload, [url]), tmp_path, retries=2, backoff=0.001)
    assert str(info.value) == (f"{NAME}: download failed: {url}: HTTP 503 SERVICE UNAVAILABLE "
                               "(gave up after 3 attempts)")
    assert len(httpserver.log) == 3
    assert list(tmp_path.iterdir()) == []


def test_dropped_connection_resumes_where_it_stopped(tmp_path, payload):
    """The first answer stops half-way through its body; the retry asks only for the rest."""
    seen: list[str | None] = []
    half = len(payload) // 2

    class Flaky(BaseHTTPRequestHandler):
        def do_GET(self):
            rng = self.headers.get("Range")
            seen.append(rng)
            if rng is None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload[:half])
                self.close_connection = True
                return
            start = int(rng.removeprefix("bytes=").rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Length", str(len(payload) - start))
            self.send_header("Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}")
            self.end_headers()
            self.wfile.write(payload[start:])

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/m.tar.gz"
        path = fetch(make_spec(payload, [url]), tmp_path, retries=2, backoff=0.001)
    finally:
        server.shutdown()
        server.server_close()
    assert path.read_bytes() == payload
    assert seen == [None, f"bytes={half}-"]


def test_unreachable_urls_name_each_url_and_suggest_synthetic_weights(tmp_path, payload):
    first, second = closed_port_url("/a.tar.gz"), closed_port_url("/b.tar.gz")
    with pytest.raises(DownloadError) as info:
        fetch(make_spec(payload, [first, second]), tmp_path, retries=1, backoff=0.001, timeout=2)
    message = str(info.value)
    assert "\n" not in message
    assert message == (f"{NAME}: download failed: {first}: connection refused (gave up after 2 attempts); "
                       f"{second}: connection refused (gave up after 2 attempts); "
                       "no network? run offline with --synthetic-weights")
    assert list(tmp_path.iterdir()) == []


def test_second_fetch_uses_no_network(httpserver, tmp_path, payload):
    httpserver.expect_request("/m.tar.gz").respond_with_data(payload)
    spec = make_spec(payload, [httpserver.url_for("/m.tar.gz")])
    path = fetch(spec, tmp_path)
    before = path.stat()
    httpserver.clear_log()
    assert fetch(spec, tmp_path) == path
    assert httpserver.log == []
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_complete_part_is_finished_without_network_and_a_bad_one_refetched(httpserver, tmp_path, payload):
    httpserver.expect_request("/m.tar.gz").respond_with_data(payload)
    spec = make_spec(payload, [httpserver.url_for("/m.tar.gz")])
    (tmp_path / f"{NAME}.part").write_bytes(payload)
    assert fetch(spec, tmp_path).read_bytes() == payload
    assert httpserver.log == []
    (tmp_path / NAME).unlink()
    (tmp_path / f"{NAME}.part").write_bytes(b"\0" * len(payload))  # right size, wrong bytes
    assert fetch(spec, tmp_path).read_bytes() == payload
    assert len(httpserver.log) == 1 and "Range" not in httpserver.log[0][0].headers


def test_file_urls(tmp_path, payload):
    source = tmp_path / "src" / "m.tar.gz"
    source.parent.mkdir()
    source.write_bytes(payload)
    missing = (tmp_path / "src" / "missing.tar.gz").as_uri()
    spec = make_spec(payload, [missing, source.as_uri()])
    assert fetch(spec, tmp_path / "dest").read_bytes() == payload
    with pytest.raises(DownloadError) as info:
        fetch(make_spec(payload, [missing]), tmp_path / "other")
    assert str(info.value) == f"{NAME}: download failed: {missing}: no such file or directory"


# --- extraction ----------------------------------------------------------------------------------


@pytest.fixture
def archive(tmp_path, payload) -> Path:
    path = tmp_path / "downloads" / NAME
    path.parent.mkdir()
    path.write_bytes(payload)
    return path


def test_extract_writes_files_and_a_marker(tmp_path, archive, ckpt):
    target = tmp_path / "out" / "model"
    assert extract_archive(archive, target, expect="model.ckpt") == target
    assert (target / "model.ckpt").read_bytes() == ckpt
    assert sorted(p.name for p in target.iterdir()) == [".omzconv-extracted", "README", "model.ckpt"]
    assert siblings(target) == ["model"]  # no temp dir left


def test_extract_is_idempotent(tmp_path, archive):
    target = tmp_path / "out"
    extract_archive(archive, target)
    before = [(p.name, p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(target.iterdir())]
    dir_inode = target.stat().st_ino
    extract_archive(archive, target, expect="model.ckpt")
    assert [(p.name, p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(target.iterdir())] == before
    assert target.stat().st_ino == dir_inode


def test_extract_replaces_a_stale_directory(tmp_path, archive):
    target = tmp_path / "models" / "out"
    extract_archive(archive, target)
    (target / "leftover").write_text("from an older run")
    archive.write_bytes(tar_bytes([file_member("model.ckpt", b"new weights")]))
    os.utime(archive, ns=(10**18, 10**18))
    extract_archive(archive, target, expect="model.ckpt")
    assert sorted(p.name for p in target.iterdir()) == [".omzconv-extracted", "model.ckpt"]
    assert (target / "model.ckpt").read_bytes() == b"new weights"
    assert siblings(target) == ["out"]  # neither the temp nor the moved-aside old directory is left


def test_extract_accepts_a_checkpoint_prefix_for_expect(tmp_path):
    archive = tmp_path / "v2.tar"
    archive.write_bytes(tar_bytes([file_member("model.ckpt.index", b"i"),
                                   file_member("model.ckpt.data-00000-of-00001", b"d")], mode="w"))
    target = extract_archive(archive, tmp_path / "out", expect="model.ckpt")
    assert (target / "model.ckpt.index").read_bytes() == b"i"


def _malicious(kind: str, tmp_path: Path) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(kind)
    if kind == "absolute":
        info.name = str(tmp_path / "abs-escape")
        return info, b"pwned"
    if kind == "dotdot":
        info.name = "sub/../../escape"
        return info, b"pwned"
    if kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
    elif kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, "/etc/passwd"
    elif kind == "chardev":
        info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    elif kind == "fifo":
        info.type = tarfile.FIFOTYPE
    return info, None


@pytest.mark.parametrize(
    ("kind", "why"),
    [
        ("absolute", "has an absolute path"),
        ("dotdot", "has a '..' component"),
        ("symlink", "is a symbolic link (to '../../../etc/passwd')"),
        ("hardlink", "is a hard link (to '/etc/passwd')"),
        ("chardev", "is a device file"),
        ("fifo", "is a FIFO"),
    ],
)
def test_malicious_members_reject_the_whole_archive(tmp_path, kind, why):
    bad, data = _malicious(kind, tmp_path)
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(tar_bytes([file_member("model.ckpt", b"weights"), (bad, data)]))
    work = tmp_path / "work"
    target = work / "model"
    target.mkdir(parents=True)
    (target / "keep.txt").write_text("untouched")
    with pytest.raises(ArchiveError) as info:
        extract_archive(archive, target)
    message = str(info.value)
    assert message.startswith(f"evil.tar.gz: refusing to extract: member {bad.name!r} {why}")
    assert message.endswith("nothing was extracted")
    assert sorted(p.name for p in target.iterdir()) == ["keep.txt"]  # the old directory as it was
    assert siblings(target) == ["model"]  # no temp dir
    assert not (tmp_path / "abs-escape").exists() and not (work / "escape").exists()


def test_member_problem_accepts_plain_files_and_directories():
    directory = tarfile.TarInfo("./inception")
    directory.type = tarfile.DIRTYPE
    assert member_problem(tarfile.TarInfo("./inception/model.ckpt")) is None
    assert member_problem(directory) is None
    assert member_problem(tarfile.TarInfo("a/..b/c")) is None  # '..b' is a name, not a parent


def test_missing_expected_member_is_an_error_and_leaves_nothing(tmp_path, archive):
    target = tmp_path / "out" / "model"
    with pytest.raises(ArchiveError, match=rf"^{NAME}: expected 'inception_v4.ckpt' in the archive, found: "
                                           r"model.ckpt, README$"):
        extract_archive(archive, target, expect="inception_v4.ckpt")
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_corrupt_archive_is_an_archive_error(tmp_path, payload):
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(payload[: len(payload) // 2])
    target = tmp_path / "out" / "model"
    with pytest.raises(ArchiveError, match=r"^broken.tar.gz: corrupt or not a tar archive"):
        extract_archive(archive, target)
    assert not target.exists()
    assert not target.parent.exists() or list(target.parent.iterdir()) == []
    archive.write_bytes(b"this is not an archive at all")
    with pytest.raises(ArchiveError, match=r"^broken.tar.gz: corrupt or not a tar archive"):
        extract_archive(archive, target)


# --- bounds: size, cap, stall, Ctrl-C, credentials (issue 16 §2) -----------------------------------


class _Server:
    """A local HTTP server with a misbehaving handler; every answer ends by itself within `seconds`."""

    def __init__(self, mode: str, *, body: bytes = b"", interval: float = 0.5, seconds: float = 10.0,
                 content_length: int | None = None) -> None:
        import time

        owner = self
        self.sent = 0
        self.connections = 0

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                owner.connections += 1
                started = time.monotonic()
                if mode == "silent":  # never answers
                    while time.monotonic() - started < seconds:
                        time.sleep(0.05)
                    return
                self.send_response(200)
                if content_length is not None:
                    self.send_header("Content-Length", str(content_length))
                self.end_headers()
                try:
                    if mode == "flood":  # `body` over and over, as fast as the reader takes it
                        while time.monotonic() - started < seconds and owner.sent < 64 << 20:
                            self.wfile.write(body)
                            owner.sent += len(body)
                    else:  # "trickle": one byte every `interval` seconds
                        while time.monotonic() - started < seconds:
                            self.wfile.write(b"x")
                            self.wfile.flush()
                            owner.sent += 1
                            time.sleep(interval)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/m.tar.gz"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve():
    servers: list[_Server] = []

    def start(mode: str, **kwargs) -> _Server:
        servers.append(_Server(mode, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_a_server_streaming_past_the_declared_size_is_cut_off_at_one_byte_more(serve, tmp_path):
    server = serve("flood", body=b"z" * 65536)  # no Content-Length: the body ends when the server closes
    spec = make_spec(b"a" * 127, [server.url])
    with pytest.raises(DownloadError) as info:
        fetch(spec, tmp_path, retries=0)
    assert str(info.value) == (f"{NAME}: download failed: {server.url}: sent more than the 127 bytes models.yaml "
                               "declares")
    assert list(tmp_path.iterdir()) == []  # the .part is deleted
    assert server.sent < 32 << 20  # stopped reading long before the 64 MiB the server would send


def test_a_server_announcing_more_than_the_declared_size_is_refused_before_its_body(serve, tmp_path):
    server = serve("flood", body=b"z" * 65536, content_length=50 << 20)
    with pytest.raises(DownloadError, match=r"announces 52428800 bytes, more than the 127 bytes models.yaml declares$"):
        fetch(make_spec(b"a" * 127, [server.url]), tmp_path, retries=0)
    assert list(tmp_path.iterdir()) == []


def test_the_write_stops_at_the_limit_plus_one_byte(tmp_path):
    from omzconv.download.failures import Failure
    from omzconv.download.stream import Limits, Stall
    from omzconv.download.transfer import _write

    limits = Limits(100, True, 30.0, 1)
    part = tmp_path / "x.part"
    with pytest.raises(Failure, match="sent more than the 100 bytes"):
        _write(part, "wb", iter([b"a" * 60, b"b" * 60, b"c" * 60]), 0, 100, limits, Stall(limits), None)
    assert part.read_bytes() == b"a" * 60 + b"b" * 41


def test_an_unpublished_size_is_capped(serve, tmp_path, monkeypatch, payload):
    monkeypatch.setenv("OMZCONV_MAX_DOWNLOAD", "64K")
    server = serve("flood", body=b"z" * 65536)
    spec = FileSpec(NAME, None, None, (server.url,))
    with pytest.raises(DownloadError, match=r"sent more than 65536 bytes \(64.0 KiB\)|sent more than 65536 bytes"):
        fetch(spec, tmp_path, retries=0)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("OMZCONV_MAX_DOWNLOAD", "lots")
    with pytest.raises(Exception, match=r"^OMZCONV_MAX_DOWNLOAD: expected a size such as 2G"):
        fetch(spec, tmp_path, retries=0)


def test_an_unpublished_hash_is_announced_once_with_the_sha256_recorded(httpserver, tmp_path, payload, caplog):
    httpserver.expect_request("/m.tar.gz").respond_with_data(payload)
    spec = FileSpec(NAME, None, None, (httpserver.url_for("/m.tar.gz"),))
    with caplog.at_level("WARNING", logger="omzconv"):
        fetch(spec, tmp_path)
        fetch(spec, tmp_path)  # already there: nothing to announce
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [f"{NAME}: no hash is published for this archive: recorded sha256:"
                        f"{hashlib.sha256(payload).hexdigest()} of what came from {spec.urls[0]} and checks the "
                        "file against it from now on (--require-hash refuses such archives)"]


def test_require_hash_refuses_an_unpublished_one_before_any_request(httpserver, tmp_path, payload, monkeypatch):
    httpserver.expect_request("/m.tar.gz").respond_with_data(payload)
    spec = FileSpec(NAME, None, None, (httpserver.url_for("/m.tar.gz"),))
    with pytest.raises(IntegrityError, match=rf"^{NAME}: no hash is published for this archive, and --require-hash"):
        fetch(spec, tmp_path, require_hash=True)
    monkeypatch.setenv("OMZCONV_REQUIRE_HASH", "1")  # what convert/verify downloads follow
    with pytest.raises(IntegrityError):
        fetch(spec, tmp_path)
    assert httpserver.log == [] and list(tmp_path.iterdir()) == []
    assert fetch(make_spec(payload, [spec.urls[0]]), tmp_path).is_file()  # a published hash is fine


def test_download_require_hash_is_one_line_and_fetches_nothing(tmp_path):
    from click.testing import CliRunner

    from omzconv.cli import main

    result = CliRunner().invoke(main, ["--cache-dir", str(tmp_path / "c"), "download", "inception_v4", "vgg_16",
                                       "--require-hash"])
    assert result.exit_code == 1
    assert result.output == ("Error: vgg_16_2016_08_28.tar.gz: no hash is published for this archive, and "
                             "--require-hash (or OMZCONV_REQUIRE_HASH=1) refuses such archives\n")
    assert not (tmp_path / "c").exists()


def test_the_unpublished_archives_are_fetched_over_https():
    from omzconv.registry import load_registry

    registry = load_registry(Path(__file__).resolve().parents[1] / "models.yaml")
    unpublished = [m for m in registry.models if m.files[0].digest is None]
    assert len(unpublished) == 8
    for model in unpublished:
        assert model.files[0].urls == (
            f"https://storage.googleapis.com/download.tensorflow.org/models/{model.files[0].name}",)


def test_a_trickling_server_fails_the_stall_deadline(serve, tmp_path, payload):
    import time

    server = serve("trickle", interval=0.3, seconds=10)
    started = time.monotonic()
    with pytest.raises(DownloadError) as info:
        fetch(make_spec(payload, [server.url]), tmp_path, retries=0, stall_window=1.0, stall_bytes=1024)
    elapsed = time.monotonic() - started
    assert re.fullmatch(rf"{NAME}: download failed: {re.escape(server.url)}: stalled: \d bytes in 1 s "
                        r"\(at least 1024 needed\)", str(info.value)), str(info.value)
    assert elapsed < 3


def test_a_server_that_never_answers_fails_the_stall_deadline(serve, tmp_path, payload):
    import time

    server = serve("silent", seconds=10)
    started = time.monotonic()
    with pytest.raises(DownloadError, match=r"stalled: 0 bytes in 1 s"):
        fetch(make_spec(payload, [server.url]), tmp_path, retries=0, stall_window=1.0)
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("mode", ["trickle", "silent"])
def test_the_first_ctrl_c_ends_a_download_within_a_second(serve, tmp_path, mode):
    """A real SIGINT to `omzconv download` while the server trickles a byte every 2 s (or never answers)."""
    import signal
    import subprocess
    import sys
    import time

    server = serve(mode, interval=2.0, seconds=20)
    data = yaml.safe_load((Path(__file__).resolve().parents[1] / "models.yaml").read_text())
    data["models"]["inception_v4"]["files"][0]["urls"] = [server.url]
    models = tmp_path / "models.yaml"
    models.write_text(yaml.safe_dump(data, sort_keys=False))
    process = subprocess.Popen([sys.executable, "-m", "omzconv", "--models", str(models), "--cache-dir",
                                str(tmp_path / "cache"), "download", "inception_v4"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")})
    deadline = time.monotonic() + 30
    while server.connections == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    try:
        _, stderr = process.communicate(timeout=10)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert time.monotonic() - sent < 2.0
    assert "Interrupted" in stderr and "Traceback" not in stderr


def test_credentials_in_urls_are_never_printed(tmp_path, payload, httpserver):
    from click.testing import CliRunner

    from omzconv.cli import main
    from omzconv.download.security import redact

    assert redact("http://user:s3cret@host/a and https://tok@h2/b, file:///x") == \
        "http://***@host/a and https://***@h2/b, file:///x"
    url = closed_port_url("/a.tar.gz").replace("http://", "http://user:s3cret@")
    with pytest.raises(DownloadError) as info:
        fetch(make_spec(payload, [url]), tmp_path, retries=0)
    assert "s3cret" not in str(info.value) and "http://***@127.0.0.1:" in str(info.value)
    assert "s3cret" not in dry_run_plan(make_spec(payload, [url]), tmp_path)

    httpserver.expect_request("/gone.tar.gz").respond_with_data("no", status=404)
    url = httpserver.url_for("/gone.tar.gz").replace("http://", "http://user:s3cret@")
    data = yaml.safe_load((Path(__file__).resolve().parents[1] / "models.yaml").read_text())
    data["models"]["inception_v4"]["files"][0]["urls"] = [url]
    models = tmp_path / "models.yaml"
    models.write_text(yaml.safe_dump(data, sort_keys=False))
    base = ["--models", str(models), "--cache-dir", str(tmp_path / "c")]
    outputs = [CliRunner().invoke(main, [*base, *args]).output for args in (
        ["info", "inception_v4"], ["info", "inception_v4", "--json"], ["download", "inception_v4", "--dry-run"],
        ["-q", "download", "inception_v4"])]
    assert all("http://***@localhost:" in out or "http://***@127.0.0.1:" in out for out in outputs), outputs
    assert not any("s3cret" in out for out in outputs), outputs
    data["models"]["inception_v4"]["files"][0]["urls"] = ["ftp://user:s3cret@host/a.tar.gz"]
    models.write_text(yaml.safe_dump(data, sort_keys=False))
    result = CliRunner().invoke(main, [*base, "list"])
    assert result.exit_code == 1 and "s3cret" not in result.output and "ftp://***@host" in result.output


# --- extraction budget --------------------------------------------------------------------------


def test_an_archive_expanding_past_its_budget_is_refused_from_its_headers(tmp_path):
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(tar_bytes([file_member("model.ckpt", bytes(30 << 20))]))  # 30 MiB of zeros: ~30 KB
    target = tmp_path / "out" / "model"
    with pytest.raises(ArchiveError) as info:
        extract_archive(archive, target)
    assert str(info.value) == ("bomb.tar.gz: refusing to extract: its contents exceed 10485760 bytes (10.0 MiB), "
                               "the budget for this archive (set OMZCONV_MAX_EXTRACT to change the absolute cap); "
                               "nothing was extracted")
    assert not (tmp_path / "out").exists()


def test_extracted_bytes_are_counted_while_writing(tmp_path):
    from omzconv.download.extract import _write_members

    archive = tmp_path / "a.tar"
    archive.write_bytes(tar_bytes([file_member("a", b"x" * 3000), file_member("b", b"y" * 3000)], mode="w"))
    with tarfile.open(archive) as tar, pytest.raises(ArchiveError, match="exceed 4000 bytes"):
        _write_members(tar, tar.getmembers(), tmp_path, "a.tar", 4000)  # the headers are not checked here
    assert (tmp_path / "a").stat().st_size == 3000
    assert (tmp_path / "b").stat().st_size <= 1000  # stopped within one piece of the budget


def test_too_many_members_are_refused(tmp_path, monkeypatch):
    from omzconv.download import extract

    monkeypatch.setattr(extract, "MAX_MEMBERS", 10)
    archive = tmp_path / "many.tar"
    archive.write_bytes(tar_bytes([file_member(f"f{i}", b"") for i in range(11)], mode="w"))
    with pytest.raises(ArchiveError, match="refusing to extract: more than 10 members"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_extraction_removes_what_a_killed_extraction_left(tmp_path, archive):
    from omzconv.fileutil import STALE_AFTER

    import time

    target = tmp_path / "cache" / "checkpoint"
    target.parent.mkdir()
    stale = target.parent / ".checkpoint.k1ll3d.tmp"
    stale.mkdir()
    (stale / "model.ckpt").write_bytes(b"half" * 1000)
    past = time.time() - STALE_AFTER - 60
    os.utime(stale, (past, past))
    legacy = target.parent / ".checkpoint.tmp-0123abcd"  # omzconv 0.1.0's name for it
    legacy.mkdir()
    os.utime(legacy, (past, past))
    extract_archive(archive, target, expect="model.ckpt")
    assert sorted(os.listdir(target.parent)) == ["checkpoint"]
    stale.mkdir()  # left by a run killed after a later one completed: the next run removes it too
    os.utime(stale, (past, past))
    extract_archive(archive, target, expect="model.ckpt")
    assert sorted(os.listdir(target.parent)) == ["checkpoint"]
