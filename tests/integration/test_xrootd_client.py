"""The native root:// client end to end: a mount that may read only root://
replicas (XRD_DISK's xrootd 5.5.3) gives the catalogue's bytes exactly,
and the server saw the opens; xrdcp (Debian's XrdCl) agrees on the bytes."""
import hashlib
import os
import random
import shutil
import subprocess
import time

import pytest

from rucio_client import find_path, manifest_files


ROOT_ONLY = ("schemes=root", "rse_expression=XRD_DISK")


def sha256_of(path, bs=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(bs)
            if not b:
                return h.hexdigest()
            h.update(b)


def on_xrd(lake):
    return [f for f in manifest_files(lake) if "XRD_DISK" in f.get("rses", [])]


def pick(lake, sizes):
    """One XRD_DISK file of each size in @sizes (the lake has them all)."""
    files = on_xrd(lake)
    out = []
    for size in sizes:
        f = next((f for f in files if f["size"] == size), None)
        assert f is not None, "no XRD_DISK file of %d bytes" % size
        out.append(f)
    return out


def root_opens(lake, f):
    return lake.storage_requests("XRD_DISK", path_contains=f["pfn_path"],
                                 method="OPEN")


def test_root_whole_files(lake41, mount_factory):
    """Whole files of 0, 4095, 1 MiB+1 and 40 MiB bytes through root://
    only: the catalogue's SHA-256, and each one opened over root:// (a
    mount without the xrootd transport skips every replica: EIO)."""
    m = mount_factory(lake41, *ROOT_ONLY)
    files = pick(lake41, [0, 4095, 1048577, 41943047])
    for f in files:
        before = root_opens(lake41, f)
        assert sha256_of(find_path(m, f)) == f["sha256"], f["name"]
        if f["size"]:
            assert root_opens(lake41, f) > before, f["name"]
    assert "broken answer" not in m.logtext()


def test_every_xrd_file_reads_whole_over_root(lake41, mount_factory):
    """Every XRD_DISK file under 4 GiB, whatever its name (spaces, UTF-8,
    '%', '#'), whole over root:// only: the catalogue's SHA-256."""
    m = mount_factory(lake41, *ROOT_ONLY)
    files = [f for f in on_xrd(lake41) if f["size"] < 4 << 30]
    assert len(files) > 20
    for f in files:
        assert sha256_of(find_path(m, f)) == f["sha256"], f["name"]


def test_root_random_preads_and_stat(lake41, mount_factory):
    """Random preads (cold, so each reaches the server as kXR_read) and
    stat sizes over root:// match the local copies."""
    m = mount_factory(lake41, *ROOT_ONLY)
    rnd = random.Random(20261206)
    files = [f for f in on_xrd(lake41) if 0 < f["size"] < 1 << 30]
    big = max(files, key=lambda f: f["size"])
    for f in files[:20] + [big]:
        assert os.stat(find_path(m, f)).st_size == f["size"]
    fd = os.open(find_path(m, big), os.O_RDONLY)
    try:
        with open(big["local_path"], "rb") as ref:
            for _ in range(300):
                off = rnd.randrange(0, big["size"] + 10)
                n = rnd.choice([1, 100, 4096, 65536, 300000, 3 << 20])
                ref.seek(off)
                assert os.pread(fd, n, off) == ref.read(n), (off, n)
    finally:
        os.close(fd)


def test_root_concurrent_readers_share_connections(lake41, mount_factory):
    """Eight threads reading random ranges of two files at once over
    root:// only: their requests share a few connections (stream ids
    demultiplexed by one receive thread each) and every byte lands in
    its own reader's buffer."""
    import threading
    m = mount_factory(lake41, *ROOT_ONLY)
    files = pick(lake41, [41943047, 1048577])
    errors = []

    def reader(seed):
        rnd = random.Random(seed)
        f = files[seed % 2]
        try:
            fd = os.open(find_path(m, f), os.O_RDONLY)
            try:
                for _ in range(60):
                    off = rnd.randrange(0, f["size"])
                    n = rnd.choice([4096, 65536, 1 << 20])
                    if os.pread(fd, n, off) != local(f, off, n):
                        errors.append((f["name"], off, n))
            finally:
                os.close(fd)
        except OSError as e:
            errors.append(e)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:5]
    assert m.alive()


def test_root_open_file_survives_server_restart(lake41, mount_factory):
    """An open file whose xrootd connection died (the server restarted
    between two reads) is opened again on a new connection: the next
    cold read gives the file's bytes (it was EIO: the handle lived on
    the dead connection, and root:// was the only replica)."""
    m = mount_factory(lake41, *ROOT_ONLY)
    f = pick(lake41, [41943047])[0]
    fd = os.open(find_path(m, f), os.O_RDONLY)
    try:
        assert os.pread(fd, 4096, 0) == local(f, 0, 4096)
        lake41.kill_rse("XRD_DISK")
        lake41.start_rse("XRD_DISK")
        off = f["size"] - (3 << 20)
        assert os.pread(fd, 65536, off) == local(f, off, 65536)
    finally:
        os.close(fd)
        lake41.start_rse("XRD_DISK")


def test_root_server_killed_mid_read_fails_over_to_https(lake41,
                                                         mount_factory):
    """root:// first (the lake's priorities changed for the test): the
    xrootd server is killed after the first MiB was read; the rest of
    the file comes from NGINX_DISK's https replica, every byte right."""
    from conftest import nginx_bytes
    f = pick(lake41, [41943047])[0]
    lake41.set_rse_priority("NGINX_DISK", "https", 4)
    lake41.set_rse_priority("XRD_DISK", "https", 5)
    try:
        m = mount_factory(lake41, "connect_timeout=2")
        with open(find_path(m, f), "rb") as fh:
            assert fh.read(1 << 20) == local(f, 0, 1 << 20)
            assert root_opens(lake41, f) >= 1
            before = nginx_bytes(lake41, f)
            lake41.kill_rse("XRD_DISK")
            h = hashlib.sha256(local(f, 0, 1 << 20))
            while True:
                b = fh.read(1 << 20)
                if not b:
                    break
                h.update(b)
        assert h.hexdigest() == f["sha256"]
        assert nginx_bytes(lake41, f) > before
    finally:
        lake41.start_rse("XRD_DISK")
        lake41.set_rse_priority("NGINX_DISK", "https", 1)
        lake41.set_rse_priority("XRD_DISK", "https", 2)


@pytest.mark.skipif(not shutil.which("xrdcp"), reason="xrdcp not installed")
def test_root_bytes_match_xrdcp(lake41, mount_factory, tmp_path):
    """Debian's xrdcp, reading the same root:// PFN, gets the bytes the
    mount gives."""
    m = mount_factory(lake41, *ROOT_ONLY)
    f = pick(lake41, [1048577])[0]
    url = lake41.pfn(f["scope"], f["name"], "XRD_DISK", scheme="root")
    out = tmp_path / "xrdcp.out"
    subprocess.run(["xrdcp", "-s", "-f", url, str(out)], check=True,
                   timeout=60)
    assert sha256_of(str(out)) == sha256_of(find_path(m, f)) == f["sha256"]


XRDTOOL = os.path.join(os.environ.get("top_builddir", "build"), "tests",
                       "unit", "xrdtool")


def xrdtool(*args, check=True):
    """tests/unit/xrdtool: the transport without a mount (stdout: bytes)."""
    r = subprocess.run([XRDTOOL] + [str(a) for a in args], timeout=120,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if check:
        assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r


def local(f, off, n):
    with open(f["local_path"], "rb") as fh:
        fh.seek(off)
        return fh.read(n)


def test_root_vector_reads(lake41):
    """kXR_readv against xrootd 5.5.3: 1,500 segments (two requests of at
    most 1,024), one of 3 MiB (split under the 2 MiB segment limit),
    empty ones, the file's last byte: the bytes are the file's, in
    order (the transport had no vector read before: EOPNOTSUPP)."""
    big = pick(lake41, [41943047])[0]
    url = lake41.pfn(big["scope"], big["name"], "XRD_DISK", scheme="root")
    rnd = random.Random(18)
    segs, off = [], 0
    for i in range(1500):
        n = 0 if i % 97 == 5 else rnd.choice([1, 100, 4096, 20000])
        segs.append((off, n))
        off += n + rnd.randrange(1, 5000)
    segs.append((off, 3 << 20))
    segs.append((big["size"] - 1, 1))
    spec = ",".join("%d:%d" % s for s in segs)
    got = xrdtool(url, big["size"], "readv", spec).stdout
    assert got == b"".join(local(big, o, n) for o, n in segs)


def test_root_reads_through_one_handle(lake41):
    """Several kXR_reads through one handle and session, one of 20 MiB
    (three requests): each exactly the file's bytes; a read past the
    end of the file is an error, not fewer bytes."""
    big = pick(lake41, [41943047])[0]
    url = lake41.pfn(big["scope"], big["name"], "XRD_DISK", scheme="root")
    reads = [(0, 1), (12345, 4096), (1 << 20, 20 << 20),
             (big["size"] - 7, 7)]
    args = [a for r in reads for a in r]
    got = xrdtool(url, big["size"], "read", *args).stdout
    assert got == b"".join(local(big, o, n) for o, n in reads)
    r = xrdtool(url, big["size"], "read", big["size"] - 7, 8, check=False)
    assert r.returncode == 2 and r.stdout == b"", r.stderr


def alice_and_bob_files(toklake):
    files = [f for f in manifest_files(toklake.lake)
             if "XRD_DISK" in f.get("rses", []) and f["size"] > 0]
    a = next(f for f in files if f["scope"] == "user.alice")
    b = next(f for f in files if f["scope"] == "user.bob")
    return a, b


def token_url(store, f, scheme="roots"):
    return "%s://127.0.0.1:%d/%s" % (scheme, store.root_port,
                                     store.storage_path(f["scope"],
                                                        f["name"]))


def test_roots_ztn_token_in_scope_and_out(toklake, tmp_path):
    """roots:// with ztn against xrootd + scitokens: alice's token reads
    her file (the store logs a granted open for her), not bob's
    (EACCES), and no token is EACCES; root:// to the same port is
    made TLS by the server and reads as well. The certificate is
    checked: without the lake's CA the connection is refused."""
    lake, store = toklake.lake, toklake.store
    a, b = alice_and_bob_files(toklake)
    tok = tmp_path / "tok"
    tok.write_text(toklake.token("alice", read=[toklake.user_scope(
        "user.alice")]))
    os.chmod(tok, 0o600)
    ca = ("-c", lake.ca_cert)
    got = xrdtool(*ca, "-t", tok, token_url(store, a), a["size"], "read", 0,
                  a["size"]).stdout
    assert got == local(a, 0, a["size"])
    assert any(r["granted"] for r in store.opens(
        path_contains=a["pfn_path"], subject="alice"))
    got = xrdtool(*ca, "-t", tok, token_url(store, a, "root"), a["size"],
                  "read", 0, a["size"]).stdout
    assert got == local(a, 0, a["size"])
    r = xrdtool(*ca, "-t", tok, token_url(store, b), b["size"], "read", 0,
                b["size"], check=False)
    assert r.returncode == 2 and b"EACCES" in r.stderr, r.stderr
    r = xrdtool(*ca, token_url(store, a), a["size"], "read", 0, a["size"],
                check=False)
    assert r.returncode == 2 and b"EACCES" in r.stderr, r.stderr
    # a CA that did not sign the server's certificate: never trusted
    r = xrdtool("-c", "/etc/ssl/certs/ca-certificates.crt", "-t", tok,
                token_url(store, a), a["size"], "read", 0, 1, check=False)
    assert r.returncode == 2 and r.stdout == b"", r.stderr


ROOTS_RSE = "XRD_TOKEN_ROOTS"


def test_shared_mount_reads_per_caller_over_roots(toklake, mount_factory,
                                                  local_users):
    """A shared mount reading only roots:// replicas of the token store
    (ztn with each caller's own token): alice reads her file, bob his,
    neither the other's (EACCES); the store saw each one's token on a
    granted open, and bob's never on alice's file."""
    from test_shared import (ALICE_FILE, BOB_FILE, local_bytes, path_of,
                             refused, shared_mount, user_with_token)
    lake, store = toklake.lake, toklake.store
    lake.add_rses([{"rse": ROOTS_RSE, "protocols": [{
        "scheme": "roots", "hostname": "127.0.0.1",
        "port": store.root_port, "prefix": "//rucio", "priority": 1}],
        "attributes": {"token_protected": True}}], exist_ok=True)
    for did in (ALICE_FILE, BOB_FILE):
        lake.add_replica(did[0], did[1], ROOTS_RSE)
    try:
        m = shared_mount(toklake, mount_factory, "schemes=roots",
                         "rse_expression=" + ROOTS_RSE)
        a = user_with_token(toklake, local_users, "alice", "user.alice")
        b = user_with_token(toklake, local_users, "bob", "user.bob")
        alice, bob = path_of(m, lake, ALICE_FILE), path_of(m, lake, BOB_FILE)
        assert a.run(["cat", alice]).stdout == local_bytes(lake, ALICE_FILE)
        assert b.run(["cat", bob]).stdout == local_bytes(lake, BOB_FILE)
        assert refused(b.run(["cat", alice]))
        assert refused(a.run(["cat", bob]))
        assert any(r["granted"] for r in
                   store.opens(path_contains="notes.txt", subject="alice"))
        assert not any(r["granted"] for r in
                       store.opens(path_contains="notes.txt", subject="bob"))
        assert m.alive()
    finally:
        for did in (ALICE_FILE, BOB_FILE):
            lake.remove_replica(did[0], did[1], ROOTS_RSE)


class TinyXrd:
    """A scripted xrootd manager on 127.0.0.1 (just enough of the protocol
    for redirects, waits and errors on kXR_open; h-xrdtest's fakexrd.py is
    the real fault injector): answer(path, n) gives, for the n-th open,
    ("redirect", port, opaque), ("wait", secs) or ("error", num, msg)."""

    def __init__(self, answer, tls=None):
        """@tls: (certificate, key): kXR_gotoTLS after kXR_protocol."""
        import socket
        import ssl
        import threading
        self.answer, self.opens, self.closes = answer, [], []
        self.ctx = None
        if tls:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(*tls)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.threading = threading
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.sock.close()

    @staticmethod
    def _read(c, n):
        b = b""
        while len(b) < n:
            k = c.recv(n - len(b))
            if not k:
                raise EOFError
            b += k
        return b

    @staticmethod
    def _send(c, sid, status, body):
        import struct
        c.sendall(sid + struct.pack(">Hi", status, len(body)) + body)

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.threading.Thread(target=self._serve, args=(c,),
                                  daemon=True).start()

    def _serve(self, c):
        import struct
        try:
            self._read(c, 20)
            hdr = self._read(c, 24)
            self._read(c, struct.unpack(">i", hdr[20:])[0])
            self._send(c, b"\0\0", 0, struct.pack(">ii", 0x511, 0))
            flags = 0xc0000002 if self.ctx else 2   # haveTLS|gotoTLS
            self._send(c, hdr[:2], 0, struct.pack(">iI", 0x511, flags))
            if self.ctx:
                c = self.ctx.wrap_socket(c, server_side=True)
            while True:
                hdr = self._read(c, 24)
                sid, req = hdr[:2], struct.unpack(">H", hdr[2:4])[0]
                payload = self._read(c, struct.unpack(">i", hdr[20:])[0])
                if req == 3003:
                    self.closes.append(hdr[4:8])
                if req != 3010:
                    self._send(c, sid, 0, b"\0" * 16 if req == 3007 else b"")
                    continue
                path = payload.decode()
                self.opens.append(path)
                a = self.answer(path, len(self.opens))
                if a[0] == "async":
                    # waitresp now, the answer later in an attn/asynresp
                    self._send(c, sid, 4006, struct.pack(">i", 5))
                    time.sleep(a[2] if len(a) > 2 else 0)
                    status, body = self._frame(a[1])
                    inner = sid + struct.pack(">Hi", status, len(body)) + body
                    self._send(c, b"\0\0", 4001,
                               struct.pack(">ii", 5008, 0) + inner)
                else:
                    self._send(c, sid, *self._frame(a))
        except (EOFError, OSError):
            c.close()

    @staticmethod
    def _frame(a):
        import struct
        if a[0] == "redirect":
            host = a[3] if len(a) > 3 else "127.0.0.1"
            return 4004, struct.pack(">i", a[1]) + ("%s?%s" % (
                host, a[2])).encode()
        if a[0] == "wait":
            return 4005, struct.pack(">i", a[1])
        if a[0] == "ok":
            return 0, a[1]
        return 4003, struct.pack(">i", a[1]) + a[2].encode() + b"\0"


def test_root_redirect_wait_and_tried(lake41):
    """An open told to wait (kXR_wait 1), then redirected to a data server
    that has not got the file (kXR_NotFound), comes back to the manager
    with tried=<host>&triedrc=enoent, is redirected to the real xrootd
    with an opaque, and reads the file's bytes there. The redirect comes
    as kXR_waitresp and then an unsolicited attn/asynresp (dCache doors
    answer opens so)."""
    f = pick(lake41, [4095])[0]
    real = lake41.pfn(f["scope"], f["name"], "XRD_DISK", scheme="root")
    real_port = int(real.split(":")[2].split("/")[0])
    bad = TinyXrd(lambda path, n: ("error", 3011, "no such file"))

    def manager(path, n):
        if n == 1:
            return ("wait", 1)
        if "tried=" not in path:
            return ("redirect", bad.port, "rfs.hop=bad")
        return ("async", ("redirect", real_port, "rfs.hop=good"))

    mgr = TinyXrd(manager)
    try:
        url = "root://127.0.0.1:%d//%s" % (mgr.port, real.split("//", 2)[2])
        got = xrdtool(url, f["size"], "read", 0, f["size"]).stdout
        assert got == local(f, 0, f["size"])
        path = "/" + real.split("//", 2)[2]
        assert mgr.opens == [path, path,
                             path + "?tried=127.0.0.1&triedrc=enoent"]
        assert bad.opens == [path + "?rfs.hop=bad"]
    finally:
        mgr.close()
        bad.close()


def test_root_late_open_is_closed(lake41):
    """An open answered with kXR_waitresp whose asynresp comes after the
    open's deadline (connect_timeout + io_timeout) fails ETIMEDOUT, and
    the handle the late answer carries is closed at once (it would stay
    open on the server for the connection's life)."""
    f = pick(lake41, [4095])[0]
    mgr = TinyXrd(lambda path, n: ("async", ("ok", b"\0\0\0\x2a"), 3))
    try:
        url = "root://127.0.0.1:%d//rucio/x" % mgr.port
        r = xrdtool("-o", "connect_timeout=1", "-o", "io_timeout=1", "-s",
                    4, url, f["size"], "read", 0, 1, check=False)
        assert r.returncode == 2 and b"ETIMEDOUT" in r.stderr, r.stderr
        assert mgr.closes == [b"\0\0\0\x2a"]
    finally:
        mgr.close()


def test_root_redirect_to_link_local_is_refused(lake41):
    """A redirect to a link-local address (where cloud metadata services
    answer) is refused before any connection, like an HTTP one: the open
    fails EPERM and the manager is asked nothing more."""
    mgr = TinyXrd(lambda path, n: ("redirect", 80, "x=1", "169.254.169.254"))
    try:
        url = "root://127.0.0.1:%d//rucio/x" % mgr.port
        r = xrdtool("-o", "connect_timeout=2", url, 10, "read", 0, 1,
                    check=False)
        assert r.returncode == 2 and b"EPERM" in r.stderr, r.stderr
        assert len(mgr.opens) == 1
    finally:
        mgr.close()


def test_root_token_in_cgi_only_over_tls(lake41, tmp_path):
    """A TLS server that asks no authentication gets the caller's token
    as authz=Bearer%20<token> in the open's CGI (servers that authorise
    by CGI); a plain one never sees it, and no log line holds it."""
    tok = tmp_path / "tok"
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln"
    tok.write_text(token)
    tls = TinyXrd(lambda path, n: ("error", 3011, "nope"),
                  tls=(lake41.server_cert, lake41.server_key))
    plain = TinyXrd(lambda path, n: ("error", 3011, "nope"))
    try:
        for mgr, scheme in ((tls, "roots"), (plain, "root")):
            url = "%s://127.0.0.1:%d//rucio/x" % (scheme, mgr.port)
            r = xrdtool("-c", lake41.ca_cert, "-t", tok, url, 10, "read",
                        0, 1, check=False)
            assert r.returncode == 2 and b"ENOENT" in r.stderr, r.stderr
            assert token.encode() not in r.stderr
        assert tls.opens == ["/rucio/x?authz=Bearer%20" + token]
        assert plain.opens == ["/rucio/x"]
    finally:
        tls.close()
        plain.close()


def test_root_checksum_query(lake41):
    """kXR_query checksum (cks.type=adler32) of a file through its open
    handle: xrootd 5.5.3's answer is the catalogue's adler32; a server
    that answers with something else is "no checksum" (EOPNOTSUPP), not
    a failure of the file."""
    f = pick(lake41, [1048577])[0]
    url = lake41.pfn(f["scope"], f["name"], "XRD_DISK", scheme="root")
    out = xrdtool(url, f["size"], "cksum", "adler32").stdout.decode()
    assert out.strip() == f["adler32"].lower()
    mgr = TinyXrd(lambda path, n: ("ok", b"\0\0\0\x07"))
    try:
        url = "root://127.0.0.1:%d//rucio/x" % mgr.port
        r = xrdtool(url, 10, "cksum", "adler32", check=False)
        assert r.returncode == 2 and b"EOPNOTSUPP" in r.stderr, r.stderr
    finally:
        mgr.close()
