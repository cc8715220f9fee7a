"""The viewer talks only to its own page, writes only new files under plain names, and fails fast on a bad host."""

from __future__ import annotations

import http.client
import os
import threading
import time

import numpy as np
import pytest

from gen3d.cli.main import main
from gen3d.errors import InputError
from gen3d.viewer import app as app_module
from gen3d.viewer import build_viewer
from gen3d.viewer.origins import check_origin, origin_allowed, parse_origin
from gen3d.viewer.paths import MAX_NAME_LENGTH, safe_file_name, write_new_file
from gen3d.viewer.server import is_loopback, probe_host

FRIEND = "http://friend.example:9000"


@pytest.fixture()
def samples(tmp_path):
    """A run directory with one tiny samples file: ``<tmp>/run/samples/s0.npy``."""
    folder = tmp_path / "run" / "samples"
    folder.mkdir(parents=True)
    path = folder / "s0.npy"
    np.save(path, np.random.default_rng(0).normal(size=(2, 40, 3)).astype(np.float32))
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A running viewer on a free loopback port that also allows :data:`FRIEND`."""
    folder = tmp_path_factory.mktemp("served")
    np.save(folder / "cloud.npy", np.random.default_rng(1).normal(size=(40, 3)).astype(np.float32))
    app = build_viewer(folder / "cloud.npy", port=0, allowed_origins=[FRIEND]).start()
    yield app
    app.stop()


def _tree(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"") for p in sorted(root.rglob("*"))}


def _handshake(port: int, origin: str | None) -> int:
    """HTTP status of a websocket handshake with ``origin`` (101 when it succeeds)."""
    import viser
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    try:
        with connect(
            f"ws://127.0.0.1:{port}",
            origin=origin,
            proxy=None,
            open_timeout=10,
            subprotocols=[f"viser-v{viser.__version__}"],
        ):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def _http_get(port: int, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/", headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------- origin rule


@pytest.mark.parametrize(
    "origin, expected",
    [
        (None, True),
        ("http://127.0.0.1:8080", True),
        ("http://localhost:8080", True),
        ("http://[::1]:8080", True),
        ("https://127.0.0.1:8080", True),
        ("HTTP://LOCALHOST:8080", True),
        ("http://127.0.0.1:8080/", True),
        (" http://127.0.0.1:8080 ", True),
        ("http://evil.example", False),
        ("https://evil.example:8080", False),
        ("http://evil.example:8080", False),
        ("http://localhost.evil.example:8080", False),
        ("http://127.0.0.1.evil.example:8080", False),
        ("null", False),
        ("", False),
        ("file://", False),
        ("ws://127.0.0.1:8080", False),
        ("http://localhost:8081", False),
        ("http://127.0.0.1", False),
        ("http://[::1]:9999", False),
        ("http://::1:8080", False),
        ("http://127.0.0.1:8080//", False),
        ("http://127.0.0.1:8080/path", False),
        ("http://127.0.0.1:8080?x=1", False),
        ("http://user@127.0.0.1:8080", False),
        ("http://127.0.0.1:8080@evil.example", False),
        ("http://127.0.0.1:99999", False),
        ("http://127.0.0.1:port", False),
        ("http://friend.example:9000", True),
        ("http://FRIEND.example:9000/", True),
        ("https://friend.example:9000", False),
        ("http://friend.example", False),
    ],
)
def test_origin_allowed(origin, expected):
    assert origin_allowed(origin, "127.0.0.1", 8080, [FRIEND]) is expected


def test_origin_allowed_accepts_the_bound_host_and_default_ports():
    assert origin_allowed("http://192.168.1.20:8080", "192.168.1.20", 8080)
    assert not origin_allowed("http://192.168.1.20:8080", "127.0.0.1", 8080)
    assert origin_allowed("http://[::1]:8080", "[::1]", 8080)
    assert origin_allowed("http://localhost", "127.0.0.1", 80)
    assert origin_allowed("https://localhost", "127.0.0.1", 443)
    assert origin_allowed("http://box.lan", "127.0.0.1", 8080, ["http://box.lan:80"])
    assert not origin_allowed("null", "127.0.0.1", 8080, ["null"])


def test_parse_and_check_origin():
    assert parse_origin("HTTPS://Example.COM") == ("https", "example.com", 443)
    assert parse_origin("http://[::1]:81") == ("http", "::1", 81)
    assert parse_origin("null") is None
    assert check_origin(FRIEND) == FRIEND
    for bad in ("friend.example:9000", "null", "ftp://x", "http://x/y"):
        with pytest.raises(InputError, match="invalid origin"):
            check_origin(bad)


# --------------------------------------------------------------------------------------------- live server


def test_foreign_origins_are_refused_by_the_running_viewer(served):
    port = served.port
    assert _handshake(port, "http://evil.example") == 403
    assert _handshake(port, "null") == 403
    assert _handshake(port, f"http://localhost:{port + 1}") == 403
    assert _http_get(port, {"Origin": "http://evil.example"}) == 403


def test_the_viewers_own_page_and_allowed_origins_connect(served):
    port = served.port
    assert _handshake(port, f"http://127.0.0.1:{port}") == 101
    assert _handshake(port, f"http://localhost:{port}") == 101
    assert _handshake(port, FRIEND) == 101
    assert _handshake(port, None) == 101  # not a browser page
    assert _http_get(port, {}) == 200
    assert _http_get(port, {"Origin": f"http://127.0.0.1:{port}"}) == 200


def _upgrade_request(port: int, origin: str) -> bytes:
    return (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
    ).encode()


def _reply(sock) -> bytes:
    """What the server sends back before closing or within 5 s (b"" when it dropped the connection)."""
    sock.settimeout(5)
    try:
        return sock.recv(4096)
    except (ConnectionResetError, TimeoutError):
        return b""


def test_connections_that_predate_the_guard_are_dropped():
    """A connection accepted before the guard (its handshake pending with viser's own hook) must not get through."""
    import socket

    import viser

    from gen3d.viewer.server import install_origin_guard

    server = viser.ViserServer(host="127.0.0.1", port=0, verbose=False)
    try:
        port = int(server.get_port())
        early = socket.create_connection(("127.0.0.1", port))  # accepted, handshake not sent yet
        time.sleep(0.5)  # the server registers it and waits for its request
        install_origin_guard(server, lambda origin: origin is None)
        with early:
            early.sendall(_upgrade_request(port, "http://evil.example"))
            assert not _reply(early).startswith(b"HTTP/1.1 101")
        with socket.create_connection(("127.0.0.1", port)) as late:
            late.sendall(_upgrade_request(port, "http://evil.example"))
            assert _reply(late).startswith(b"HTTP/1.1 403")
    finally:
        server.stop()


def test_malformed_allowed_origins_are_refused(samples):
    with pytest.raises(InputError, match="invalid origin"):
        build_viewer(samples, allowed_origins=["evil.example"])


# ------------------------------------------------------------------------------------------------- saving


def test_safe_file_name_accepts_only_plain_names():
    assert safe_file_name("chair", ".ply") == "chair.ply"
    assert safe_file_name("chair.v2.PLY", ".ply") == "chair.v2.ply"
    assert safe_file_name("x" * MAX_NAME_LENGTH, ".ply") == "x" * MAX_NAME_LENGTH + ".ply"
    bad_names = ["", " ", ".", "..", "../x", "sub/../../samples/s0", "a/b", "a\\b", "/etc/passwd", ".hidden"]
    bad_names += ["a..b", "a\x00b", "a\nb", "x" * (MAX_NAME_LENGTH + 1)]
    for bad in bad_names:
        with pytest.raises(InputError, match="invalid file name"):
            safe_file_name(bad, ".ply")


def test_bad_file_names_write_nothing_anywhere(samples, tmp_path):
    app = build_viewer(samples, port=0)
    before = _tree(tmp_path)
    bad_names = ["../x", "sub/../../samples/s0", "a/b", "..", ".hidden", str(tmp_path / "abs"), "..\\x"]
    for bad in bad_names:
        for fmt in ("ply", "obj"):
            with pytest.raises(InputError, match="invalid file name") as info:
                app.save_current(fmt, name=bad)
            assert repr(bad) in str(info.value)
    assert _tree(tmp_path) == before


def test_saves_never_replace_a_file(samples, tmp_path):
    from gen3d.data.io import load_points

    samples_bytes = samples.read_bytes()
    app = build_viewer(samples, port=0)
    viewer = tmp_path.resolve() / "run" / "viewer"
    first = app.save_current("ply", name="keep")
    assert first == viewer / "keep.ply"
    content = first.read_bytes()
    app.select(1)
    second = app.save_current("ply", name="keep.ply")
    third = app.save_current("ply", name="keep")
    assert (second, third) == (viewer / "keep_1.ply", viewer / "keep_2.ply")
    assert first.read_bytes() == content
    np.testing.assert_array_equal(load_points(first), app.items[0].points)
    np.testing.assert_array_equal(load_points(second), app.items[1].points)
    assert sorted(p.name for p in viewer.iterdir()) == ["keep.ply", "keep_1.ply", "keep_2.ply"]  # no leftovers
    assert samples.read_bytes() == samples_bytes  # the input is untouched


def test_concurrent_saves_get_distinct_names(tmp_path):
    results: list = []

    def save(i: int) -> None:
        results.append(write_new_file(tmp_path / "same.txt", lambda p: p.write_text(str(i))))

    threads = [threading.Thread(target=save, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 8
    assert sorted(p.read_text() for p in results) == [str(i) for i in range(8)]


def test_numbering_works_without_hard_links(tmp_path, monkeypatch):
    def no_links(*_args):
        raise PermissionError("operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    (tmp_path / "a.txt").write_text("old")
    path = write_new_file(tmp_path / "a.txt", lambda p: p.write_text("new"))
    assert path == tmp_path / "a_1.txt" and path.read_text() == "new"
    assert (tmp_path / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "a_1.txt"]


def test_a_failed_write_leaves_nothing(tmp_path):
    def fail(_path):
        raise InputError("broken writer")

    with pytest.raises(InputError, match="broken writer"):
        write_new_file(tmp_path / "viewer" / "x.ply", fail)
    assert list((tmp_path / "viewer").iterdir()) == []


def test_a_viewer_folder_linked_out_of_the_run_is_refused(samples, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, tmp_path / "run" / "viewer")
    app = build_viewer(samples, port=0)
    with pytest.raises(InputError, match="outside the run directory"):
        app.save_current("ply", name="x")
    assert list(elsewhere.iterdir()) == []


def test_the_save_button_reports_a_refused_name(samples):
    app = build_viewer(samples, port=0).start()
    try:
        app._gui["name"].value = "../x"
        for callback in app._gui["save_ply"]._impl.update_cb:
            callback(None)
        status = app._gui["status"].content
        assert "Error" in status and "invalid file name '../x'" in status
        app._gui["name"].value = "plain"
        for callback in app._gui["save_ply"]._impl.update_cb:
            callback(None)
        assert "plain.ply" in app._gui["status"].content
    finally:
        app.stop()
    run = samples.parent.parent
    assert not (run / "x.ply").exists() and sorted(p.name for p in (run / "viewer").iterdir()) == ["plain.ply"]


# --------------------------------------------------------------------------------------------- host checks


@pytest.mark.parametrize("host", ["192.0.2.1", "not-a-host.invalid"])
def test_view_exits_at_once_on_a_host_it_cannot_serve(samples, capsys, host):
    start = time.monotonic()
    assert main(["view", str(samples), "--host", host, "--port", "8765"]) == 2
    assert time.monotonic() - start < 15
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("gen3d: error: ") and host in err[0] and "8765" in err[0]


def test_view_refuses_a_malformed_allowed_origin(samples, capsys):
    assert main(["view", str(samples), "--allow-origin", "evil.example"]) == 2
    assert "invalid origin 'evil.example'" in capsys.readouterr().err


def test_probe_host_gives_up_on_a_slow_lookup(monkeypatch):
    import socket

    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: time.sleep(2))
    start = time.monotonic()
    with pytest.raises(InputError, match="slow.example port 80: looking up the host timed out"):
        probe_host("slow.example", 80, timeout=0.2)
    assert time.monotonic() - start < 1.5


def test_probe_host_and_loopback():
    assert is_loopback(probe_host("127.0.0.1", 0))
    assert is_loopback(["::1", "127.0.0.1"])
    assert not is_loopback(["0.0.0.0"]) and not is_loopback(["192.168.1.20", "127.0.0.1"])


def test_a_network_visible_viewer_warns(samples, monkeypatch, capsys):
    seen = {}

    def interrupt(_seconds):
        seen["url"] = capsys.readouterr()
        raise KeyboardInterrupt

    monkeypatch.setattr(app_module, "_idle", interrupt)
    monkeypatch.setattr(app_module, "probe_host", lambda host, port: ["192.168.1.20"])
    assert main(["view", str(samples), "--port", "0"]) == 0
    out, err = seen["url"]
    assert "serving" in out and "http://127.0.0.1:" in out
    warnings = [line for line in err.splitlines() if line.startswith("gen3d: warning:")]
    assert len(warnings) == 1 and "reachable from the network" in warnings[0]


def test_quiet_on_loopback_and_urls_of_ipv6_hosts(samples):
    app = build_viewer(samples, port=0)
    app.addresses = probe_host("127.0.0.1", 0)
    assert not app.network_visible
    assert build_viewer(samples, host="::1", port=8080).url == "http://[::1]:8080/"
    assert build_viewer(samples, host="[::1]", port=8080).host == "::1"
    assert build_viewer(samples, host="::", port=8080).url == "http://[::1]:8080/"
    assert build_viewer(samples, host="0.0.0.0", port=8080).url == "http://127.0.0.1:8080/"
