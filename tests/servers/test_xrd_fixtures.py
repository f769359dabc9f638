"""Self-test of the root:// fixtures (fakexrd.py, xrdredir.py, the token
store's roots:// port), checked with Debian's own client (xrdcp, xrdfs
5.5.3) and curl.

    /usr/bin/python3 -m pytest tests/servers -q -k xrd
"""
import hashlib
import os
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lakegen  # noqa: E402
from lake import Lake  # noqa: E402

CACHE = os.environ.get("RUCIOFS_LAKE_CACHE") or "/tmp/ruciofs-lake-cache-%d" % os.getuid()
FILE = ("user.alice", "random40M.bin")
# XrdCl's deadlines, short: a fault must not cost minutes
XRD_ENV = dict(os.environ, XRD_REQUESTTIMEOUT="4", XRD_STREAMTIMEOUT="4", XRD_TIMEOUTRESOLUTION="1")


@pytest.fixture(scope="module")
def xlake(tmp_path_factory):
    with Lake(str(tmp_path_factory.mktemp("xrdlake")), profile="test", cache_dir=CACHE) as lk:
        yield lk


@pytest.fixture(scope="module")
def fx(xlake):
    return xlake.start_fakexrd()


def xrdcp(url, out, env=XRD_ENV, timeout=120):
    t = time.time()
    r = subprocess.run(["xrdcp", "-f", url, out], capture_output=True, text=True, env=env, timeout=timeout)
    return r, time.time() - t


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def copy_with(fx, xlake, tmp_path, mode=None, **kw):
    fx.clear_faults()
    fx.reset()
    if mode:
        fx.set_fault(r"random40M\.bin$", mode, **kw)
    out = str(tmp_path / "out")
    r, took = xrdcp(fx.url(*FILE), out)
    good = r.returncode == 0 and sha(out) == xlake.files[FILE]["sha256"]
    return r, good, took, fx.requests(path_contains="random40M")


def test_fakexrd_serves_like_xrootd(fx, xlake, tmp_path):
    f = xlake.files[FILE]
    r, good, _, reqs = copy_with(fx, xlake, tmp_path)
    assert good, r.stderr
    ops = [q["op"] for q in reqs]
    assert ops[0] == "open" and ops[-1] == "close" and "read" in ops
    reads = [q for q in reqs if q["op"] == "read"]
    assert sum(q["rlen"] for q in reads) >= f["size"]
    path = "/rucio/" + lakegen.lfn2path(*FILE)
    st = subprocess.run(["xrdfs", "root://127.0.0.1:%d" % fx.port, "stat", path], capture_output=True,
                        text=True, env=XRD_ENV, timeout=30)
    assert "Size:   %d" % f["size"] in st.stdout and "IsReadable" in st.stdout
    q = subprocess.run(["xrdfs", "root://127.0.0.1:%d" % fx.port, "query", "checksum", path],
                       capture_output=True, text=True, env=XRD_ENV, timeout=30)
    assert q.stdout.strip() == "adler32 " + f["adler32"]
    q = subprocess.run(["xrdfs", "root://127.0.0.1:%d" % fx.port, "query", "config", "readv_iov_max"],
                       capture_output=True, text=True, env=XRD_ENV, timeout=30)
    assert q.stdout.strip() == "1024"
    nf = subprocess.run(["xrdfs", "root://127.0.0.1:%d" % fx.port, "stat", "/rucio/nope"], capture_output=True,
                        text=True, env=XRD_ENV, timeout=30)
    assert nf.returncode != 0 and "3011" in nf.stderr


@pytest.mark.parametrize("mode,kw,ok", [
    ("lying", {"at": 1000, "len": 10}, False),      # xrdcp cannot tell: wrong bytes, rc 0
    ("truncated", {}, False),
    ("oversized", {"extra": 5}, False),
    ("waitresp_never", {"seconds": 30}, False),
    ("error", {"errnum": 3011, "message": "gone"}, False),
    ("stall", {}, False),
    ("close", {"after": 1000}, False),
    ("wrong_sid", {}, False),
    ("wait", {"seconds": 2, "count": 1}, True),
    ("waitresp", {"delay": 0.5}, True),
    ("redirect", {"count": 1, "opaque": "fx.hop=1"}, True),
    ("reorder", {"hold": 1}, True),
    ("none", {}, True),
])
def test_fakexrd_faults_against_xrdcp(fx, xlake, tmp_path, mode, kw, ok):
    r, good, took, reqs = copy_with(fx, xlake, tmp_path, mode, **kw)
    assert good == ok, (r.returncode, r.stderr)
    assert took < 60
    if mode != "none":
        assert any(q["fault"] == mode for q in reqs), reqs[:5]
    if mode == "lying":
        assert r.returncode == 0
    if mode == "error":
        assert "[3011] gone" in r.stderr
    if mode == "wait":
        opens = [q for q in reqs if q["op"] == "open"]
        assert [o["answer"] for o in opens] == ["wait", "ok"]
        assert opens[1]["time"] - opens[0]["time"] >= 1.9
    if mode == "waitresp":
        assert [q["answer"] for q in reqs if q["op"] == "open"] == ["asynresp"]
    if mode == "redirect":
        assert [q["cgi"] for q in reqs if q["op"] == "open"] == ["", "fx.hop=1"]


def test_fakexrd_redirect_to_real_xrootd(fx, xlake, tmp_path):
    before = xlake.storage_requests("XRD_DISK", path_contains="random40M", method="OPEN")
    r, good, _, reqs = copy_with(fx, xlake, tmp_path, "redirect", port=xlake.ports["xrd_root"])
    assert good, r.stderr
    assert [q["answer"] for q in reqs] == ["redirect"]
    assert xlake.storage_requests("XRD_DISK", path_contains="random40M", method="OPEN") > before


def test_fakexrd_manager_gets_tried(xlake, tmp_path):
    """xrdcp goes back to a manager with tried= after a data server's
    error (what the mount's client must do too)."""
    rd = xlake.start_fakexrd("FAKE_RD_T", manager=True)
    ds = xlake.start_fakexrd("FAKE_DS_T")
    rd.set_fault("", "redirect", port=ds.port, count=1)
    ds.set_fault("", "error", errnum=3011)
    r, _ = xrdcp(rd.url(*FILE), str(tmp_path / "o"))
    assert r.returncode == 0, r.stderr
    assert [(q["cgi"], q["answer"]) for q in rd.requests(op="open")] == \
        [("", "redirect"), ("tried=127.0.0.1&triedrc=enoent", "ok")]
    assert [q["answer"] for q in ds.requests(op="open")] == ["error"]


def test_fakexrd_readv(fx, xlake):
    """kXR_readv by hand (no Debian tool sends one): segment headers and
    data as a server sends them; readv_badhdr moves the offsets."""
    import socket
    import struct
    f = xlake.files[FILE]
    path = ("/rucio/" + lakegen.lfn2path(*FILE)).encode()

    def talk(sock, sid, code, body, payload=b""):
        sock.sendall(sid + struct.pack(">H", code) + body.ljust(16, b"\0") + struct.pack(">i", len(payload)) + payload)
        out = b""
        while True:
            hdr = recv(sock, 8)
            status, dlen = struct.unpack(">Hi", hdr[2:])
            out += recv(sock, dlen)
            if status != 4000:
                return status, out

    def recv(sock, n):
        b = b""
        while len(b) < n:
            c = sock.recv(n - len(b))
            assert c
            b += c
        return b
    segs = [(0, 10), (5 << 20, 4096), (f["size"] - 3, 100)]
    for mode in (None, "readv_badhdr"):
        fx.clear_faults()
        if mode:
            fx.set_fault("random40M", mode, shift=4096)
        with socket.create_connection(("127.0.0.1", fx.port), timeout=10) as s:
            s.sendall(struct.pack(">5i", 0, 0, 0, 4, 2012))
            recv(s, 16)
            assert talk(s, b"\0\1", 3006, struct.pack(">i", 0x511))[0] == 0
            assert talk(s, b"\0\1", 3007, struct.pack(">i8s", 1, b"t"))[0] == 0
            st, fh = talk(s, b"\0\2", 3010, struct.pack(">HH", 0, 0x10), path)
            assert st == 0
            req = b"".join(struct.pack(">4siq", fh[:4], n, off) for off, n in segs)
            st, data = talk(s, b"\0\3", 3025, b"", req)
        assert st == 0
        got, pos = [], 0
        while pos < len(data):
            _, n, off = struct.unpack(">4siq", data[pos:pos + 16])
            got.append((off, n))
            pos += 16 + n
        want = [(off, min(n, f["size"] - off)) for off, n in segs]
        if mode is None:
            assert got == want
        else:
            assert got != want and [g[0] - w[0] for g, w in zip(got, want)] == [4096] * 3
    fx.clear_faults()


def test_redirector_with_cmsd(xlake, tmp_path):
    r = xlake.start_redirector("XRD_REDIR_T")
    f = xlake.files[FILE]
    out = str(tmp_path / "o")
    p, _ = xrdcp(r.url(*FILE), out)
    assert p.returncode == 0 and sha(out) == f["sha256"], p.stderr
    # the data server opened it, after the manager redirected
    assert r.opens("random40M", role="server") and r.opens("random40M", role="manager")
    c = subprocess.run(["curl", "-sS", "-L", "-o", out, "-w", "%{http_code} %{num_redirects}",
                        "http://127.0.0.1:%d/rucio/%s" % (r.ports["manager_http"], lakegen.lfn2path(*FILE))],
                       capture_output=True, text=True, timeout=60)
    assert c.stdout == "200 1" and sha(out) == f["sha256"]


def test_redirector_waits_while_starting(xlake, tmp_path):
    """A restarted manager answers kXR_wait until its startup delay is
    over: xrdcp waits it out (about 10 s on 5.5.3) and copies."""
    r = xlake.redirectors.get("XRD_REDIR_T") or xlake.start_redirector("XRD_REDIR_T")
    try:
        r.restart_manager(startup=4)
        p, took = xrdcp(r.url(*FILE), str(tmp_path / "o"), env=dict(os.environ, XRD_REQUESTTIMEOUT="60"))
    finally:
        r.restart_manager(startup=1, wait=True)
    assert p.returncode == 0, p.stderr
    assert took >= 3


def test_token_store_roots_ztn(xlake, tmp_path):
    import tokinfra
    t = tokinfra.TokenLake(xlake)
    path = "/rucio/" + lakegen.lfn2path(*FILE)
    env = dict(XRD_ENV, X509_CERT_DIR=os.path.join(xlake.workdir, "tls", "cadir"))
    results = {}
    for who, tok in (("alice", t.token("alice", read=["/user/alice"])), ("bob", t.token("bob", read=["/user/bob"])),
                     ("none", None)):
        e = dict(env)
        if tok:
            e["BEARER_TOKEN"] = tok
        r, _ = xrdcp("roots://127.0.0.1:%d/%s" % (t.store.root_port, path), str(tmp_path / who), env=e)
        results[who] = (r.returncode, r.stderr)
    assert results["alice"][0] == 0 and sha(str(tmp_path / "alice")) == xlake.files[FILE]["sha256"]
    assert "[3010]" in results["bob"][1]
    assert "Auth failed" in results["none"][1]
    opens = [o for o in t.store.opens("random40M") if not o["tident"].startswith("unknown.")]
    assert [(o["subject"], o["granted"]) for o in opens] == [("alice", True), ("bob", False)]
    assert opens[0]["tident"] != opens[1]["tident"]
    rse = t.store.add_root_replicas([FILE])
    assert xlake.pfn(*FILE, rse=rse, scheme="roots").startswith("roots://127.0.0.1:%d//rucio/" % t.store.root_port)
