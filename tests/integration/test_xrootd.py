"""root:// through the mount (issue 18): the lake's xrootd 5.5.3, a TLS
and token-enforcing xrootd (scitokens, ztn), a redirector with a data
server behind it (cmsd), and a fault-injecting fake server
(tests/servers/fakexrd.py). Each read that could hang runs in a child
process with a deadline, so a hang fails the test instead of the run."""
import errno
import hashlib
import os
import random
import subprocess
import sys
import time

import pytest

from conftest import nginx_bytes
from localusers import make_traversable
from rucio_client import manifest_files, replicated, find_path

RSE_NGINX, RSE_XRD = "NGINX_DISK", "XRD_DISK"
FAKE = "FAKE_XRD"            # fakexrd, the faulty first replica
FAKE_RD, FAKE_DS = "FAKE_RD", "FAKE_DS"   # fakexrd as redirector, data server
REDIR = "XRD_REDIR"          # xrootd + cmsd manager, data server behind
# short deadlines: a fault costs seconds, not minutes
FAST = ("connect_timeout=2", "io_timeout=3", "read_timeout=12")
ROOT_ONLY = ("schemes=root",)

# Reads in a child process: (sha256 or None, errno or None), never a hang
READER = r"""
import hashlib, json, os, sys
p, mode = sys.argv[1], sys.argv[2]
try:
    if mode == "whole":
        h = hashlib.sha256()
        with open(p, "rb", buffering=0) as f:
            for b in iter(lambda: f.read(1 << 20), b""):
                h.update(b)
        print(json.dumps([h.hexdigest(), None]))
    elif mode.startswith("par:"):   # as "at:", each read by a thread
        import threading
        segs = [tuple(map(int, g.split(":"))) for g in mode[4:].split(",")]
        fd = os.open(p, os.O_RDONLY)
        got, errs = [None] * len(segs), []
        go = threading.Barrier(len(segs))
        def one(i):
            go.wait()
            try:
                got[i] = os.pread(fd, segs[i][1], segs[i][0])
            except OSError as e:
                errs.append(e)
        ts = [threading.Thread(target=one, args=(i,)) for i in range(len(segs))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        os.close(fd)
        if errs:
            raise errs[0]
        print(json.dumps([hashlib.sha256(b"".join(got)).hexdigest(), None]))
    else:   # "at:OFF:LEN,OFF:LEN,...": the bytes' sha256
        h = hashlib.sha256()
        fd = os.open(p, os.O_RDONLY)
        for seg in mode[3:].split(","):
            off, n = map(int, seg.split(":"))
            h.update(os.pread(fd, n, off))
        os.close(fd)
        print(json.dumps([h.hexdigest(), None]))
except OSError as e:
    print(json.dumps([None, e.errno]))
"""


def read_in_child(path, mode="whole", timeout=60):
    """(sha256, None) or (None, errno); fails the test if it takes longer
    than @timeout (a hang)."""
    import json
    try:
        r = subprocess.run([sys.executable, "-c", READER, path, mode],
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail("read of %s took over %ds (hang)" % (path, timeout))
    assert r.returncode == 0, r.stderr
    return tuple(json.loads(r.stdout))


def sha_of_ranges(local, segs):
    h = hashlib.sha256()
    with open(local, "rb") as f:
        for off, n in segs:
            f.seek(off)
            h.update(f.read(n))
    return h.hexdigest()


def file_entry(lake, scope, name):
    return [f for f in manifest_files(lake)
            if (f["scope"], f["name"]) == (scope, name)][0]


def root_opens(lake, pfn_path):
    """root:// opens (not XrdHttp's) the lake's xrootd logged for a file."""
    return sum(1 for m, p in lake.storage_log(RSE_XRD)
               if m == "OPEN" and p.endswith(pfn_path))


def root_mount(lake, mount_factory, *opts):
    return mount_factory(lake, *(ROOT_ONLY + opts))


# --------------------------------------------------------------------------
# the lake's xrootd over root://
# --------------------------------------------------------------------------
def test_every_file_reads_whole_over_root(lake, mount_factory):
    m = root_mount(lake, mount_factory)
    files = [f for f in replicated(lake) if f["size"] < 64 << 20]
    assert len(files) > 20
    big = max(files, key=lambda f: f["size"])
    opens0, sent0 = root_opens(lake, big["pfn_path"]), nginx_bytes(lake, big)
    for f in files:
        sha, err = read_in_child(find_path(m, f))
        assert err is None and sha == f["sha256"], (f["name"], err)
    # root:// it was: xrootd's root port opened it, nginx sent nothing more
    assert root_opens(lake, big["pfn_path"]) > opens0
    assert nginx_bytes(lake, big) == sent0
    assert m.alive()


def test_random_preads_over_root(lake, mount_factory):
    m = root_mount(lake, mount_factory)
    rnd = random.Random(18)
    files = [f for f in replicated(lake) if f["size"] > 0]
    big = max(files, key=lambda f: f["size"])
    opens0 = root_opens(lake, big["pfn_path"])
    handles = {}
    try:
        for i in range(600):
            f = big if i % 2 else rnd.choice(files)
            if f["name"] not in handles:
                handles[f["name"]] = (os.open(find_path(m, f), os.O_RDONLY),
                                      open(f["local_path"], "rb"))
            fd, ref = handles[f["name"]]
            off = rnd.randrange(0, f["size"] + 10)
            n = rnd.choice([1, 7, 4096, 65536, 300000])
            ref.seek(off)
            assert os.pread(fd, n, off) == ref.read(n), (f["name"], off, n)
    finally:
        for fd, ref in handles.values():
            os.close(fd)
            ref.close()
    assert root_opens(lake, big["pfn_path"]) > opens0


def test_stat_and_eof_over_root(lake, mount_factory):
    """Sizes are the catalogue's; reads at and past the end agree with
    them over root:// (a short kXR_read answer is the end of the file)."""
    m = root_mount(lake, mount_factory)
    for f in [f for f in replicated(lake) if f["size"] > 100][:10]:
        p = find_path(m, f)
        assert os.stat(p).st_size == f["size"]
        fd = os.open(p, os.O_RDONLY)
        try:
            assert len(os.pread(fd, 100, f["size"] - 3)) == 3
            assert os.pread(fd, 10, f["size"]) == b""
            assert os.pread(fd, 10, f["size"] + 12345) == b""
        finally:
            os.close(fd)
    empty = [f for f in replicated(lake) if f["size"] == 0]
    with open(find_path(m, empty[0]), "rb") as fh:
        assert fh.read() == b""


def test_xattr_lists_root_replicas(lake, mount_factory):
    """A root:// PFN is a replica like an https one: shown in
    user.rucio.replicas (root:// is no longer left out)."""
    m = mount_factory(lake, "schemes=https:root")
    f = [f for f in replicated(lake) if f["size"] > 0][0]
    reps = os.getxattr(find_path(m, f), "user.rucio.replicas").decode()
    assert any(u.startswith("root://127.0.0.1:%d/" % lake.ports["xrd_root"])
               for u in reps.split("\n")), reps


def test_root_killed_mid_read_fails_over_to_https(lake, mount_factory):
    """root:// first; its server dies after 4 MiB: the rest comes from the
    HTTP replica of the same file, bytes exact."""
    f = max([f for f in replicated(lake) if f["size"] < 64 << 20],
            key=lambda f: f["size"])
    assert f["size"] >= 20 << 20
    lake.set_rse_priority(RSE_XRD, "root", 1)
    lake.set_rse_priority(RSE_XRD, "https", 4)
    lake.set_rse_priority(RSE_NGINX, "https", 5)
    try:
        m = mount_factory(lake, "schemes=root:https", *FAST)
        p = find_path(m, f)
        opens0 = root_opens(lake, f["pfn_path"])
        sent0 = nginx_bytes(lake, f)
        h = hashlib.sha256()
        try:
            with open(p, "rb", buffering=0) as fh:
                h.update(fh.read(4 << 20))
                assert root_opens(lake, f["pfn_path"]) > opens0
                lake.kill_rse(RSE_XRD)
                for b in iter(lambda: fh.read(1 << 20), b""):
                    h.update(b)
        finally:
            lake.start_rse(RSE_XRD)
        assert h.hexdigest() == f["sha256"]
        assert nginx_bytes(lake, f) > sent0
        assert m.alive()
    finally:
        lake.set_rse_priority(RSE_XRD, "root", 3)
        lake.set_rse_priority(RSE_XRD, "https", 2)
        lake.set_rse_priority(RSE_NGINX, "https", 1)


@pytest.fixture
def replicas(lake41):
    """replicas(scope, name, rse): a replica for this test only (the lake
    is shared by the session: later tests must not find it)."""
    added = []

    def add(scope, name, rse):
        lake41.add_replica(scope, name, rse)
        added.append((scope, name, rse))
    yield add
    for r in added:
        lake41.remove_replica(*r)


# --------------------------------------------------------------------------
# fakexrd: faults on the wire
# --------------------------------------------------------------------------
FAULT_FILE = ("user.alice", "random40M.bin")


@pytest.fixture
def fake(lake41, replicas):
    """fakexrd as RSE FAKE_XRD (root, priority 1: before XRD_DISK's root
    PFN, priority 3) holding FAULT_FILE, faults cleared."""
    fx = lake41.fakexrds.get(FAKE) or lake41.start_fakexrd(FAKE, chunk=64 * 1024)
    fx.clear_faults()
    fx.reset()
    replicas(*FAULT_FILE, FAKE)
    yield fx
    fx.clear_faults()


def fault_mount(lake, mount_factory, *extra):
    # only FAKE_XRD's PFN and, behind it, XRD_DISK's root:// one
    return mount_factory(lake, "schemes=root",
                         "rse_expression=%s|%s" % (FAKE, RSE_XRD), *(FAST + extra))


def assert_still_serves(m, lake):
    """The daemon survived: another file reads whole."""
    g = [f for f in replicated(lake) if f["size"] > 1000 and
         (f["scope"], f["name"]) != FAULT_FILE][0]
    sha, err = read_in_child(find_path(m, g), timeout=40)
    assert (sha, err) == (g["sha256"], None)
    assert m.alive()


# faults a client sees as such: the next replica must give every byte
DETECTABLE = [
    ("truncated", {}),
    ("oversized", {"extra": 4096}),
    ("wrong_sid", {}),
    ("waitresp_never", {"seconds": 60}),
    ("error", {"errnum": 3005, "message": "injected"}),
    ("error", {"errnum": 3011}),
    ("stall", {}),
    ("stall", {"ops": ["read"]}),
    ("close", {"after": 0}),
    ("close", {"after": 70000}),
    ("truncated", {"ops": ["open"]}),
]


@pytest.mark.parametrize("mode,kw", DETECTABLE,
                         ids=["%s-%s" % (m, "-".join("%s" % v for v in k.values()))
                              for m, k in DETECTABLE])
def test_fake_fault_fails_over(lake41, fake, mount_factory, mode, kw):
    f = file_entry(lake41, *FAULT_FILE)
    fake.set_fault(r"random40M\.bin$", mode, **kw)
    m = fault_mount(lake41, mount_factory)
    t = time.time()
    sha, err = read_in_child(find_path(m, f), timeout=90)
    assert any(r["fault"] == mode for r in fake.requests(path_contains="random40M")), \
        "the fault was never exercised: %r" % fake.requests()[-5:]
    assert err is None, "EIO although XRD_DISK has the file: errno %s" % err
    assert sha == f["sha256"]
    assert time.time() - t < 80
    assert_still_serves(m, lake41)


def test_fake_all_replicas_faulty_is_eio_not_hang(lake41, fake, mount_factory):
    """No good replica (the fake alone): EIO, within the read deadline."""
    f = file_entry(lake41, *FAULT_FILE)
    fake.set_fault(r"random40M\.bin$", "stall", ops=["read"])
    m = mount_factory(lake41, "schemes=root", "rse_expression=" + FAKE, *FAST)
    sha, err = read_in_child(find_path(m, f), timeout=60)
    assert any(r["op"] == "read" for r in fake.requests(path_contains="random40M"))
    assert sha is None and err == errno.EIO
    assert m.alive() and os.listdir(m.dir)


@pytest.mark.parametrize("at", [0, 5 << 20, (40 << 20) - 10])
def test_fake_lying_bytes_never_reach_the_reader(lake41, fake, mount_factory, at):
    """Right lengths, wrong bytes: caught by the file's checksum (the
    whole file is read), so the reader gets the true bytes (from
    XRD_DISK) or EIO, never the lie."""
    f = file_entry(lake41, *FAULT_FILE)
    fake.set_fault(r"random40M\.bin$", "lying", at=at, len=16)
    m = fault_mount(lake41, mount_factory)
    sha, err = read_in_child(find_path(m, f), timeout=90)
    assert any(r["fault"] == "lying" for r in fake.requests(path_contains="random40M"))
    assert (sha, err) in ((f["sha256"], None), (None, errno.EIO)), (sha, err)
    assert_still_serves(m, lake41)


LEGAL = [
    ("wait", {"seconds": 1, "count": 2}),
    ("waitresp", {"delay": 0.5, "seconds": 10}),
    ("reorder", {"hold": 1}),
    ("none", {}),
]


@pytest.mark.parametrize("mode,kw", LEGAL, ids=[m for m, _ in LEGAL])
def test_fake_legal_answers_read_from_the_fake(lake41, fake, mount_factory, mode, kw):
    """Answers a correct client must take: kXR_wait, kXR_waitresp then
    kXR_attn/asynresp, answers out of request order. Every byte comes
    from the fake itself (no failover needed)."""
    f = file_entry(lake41, *FAULT_FILE)
    fake.set_fault(r"random40M\.bin$", mode, **kw)
    m = mount_factory(lake41, "schemes=root", "rse_expression=" + FAKE, *FAST)
    sha, err = read_in_child(find_path(m, f), timeout=90)
    assert (sha, err) == (f["sha256"], None)
    reqs = fake.requests(path_contains="random40M")
    assert any(r["fault"] == (None if mode == "none" else mode) and
               r["op"] in ("open", "read") for r in reqs), reqs[-5:]
    if mode == "wait":
        opens = [r for r in reqs if r["op"] == "open"]
        assert len(opens) >= 3 and [o["answer"] for o in opens[:2]] == ["wait", "wait"]
        # honoured: each resend came no sooner than the wait asked
        assert opens[1]["time"] - opens[0]["time"] >= 0.9
        assert opens[2]["time"] - opens[1]["time"] >= 0.9
    assert m.alive()


@pytest.mark.parametrize("op", ["read", "readv"])
def test_fake_wait_on_a_read_is_honoured(lake41, fake, mount_factory, op):
    """kXR_wait answering a read (or a vector read): the same request is
    sent again after the seconds the server asked, on the same replica,
    and every byte is right."""
    f = file_entry(lake41, *FAULT_FILE)
    fake.set_fault(r"random40M\.bin$", "wait", seconds=2, count=1, ops=[op])
    m = mount_factory(lake41, "schemes=root", "rse_expression=" + FAKE, *FAST)
    segs = [(i * (1 << 20) + 777, 3000) for i in range(0, 38, 2)]
    how = "par:" if op == "readv" else "at:"
    sha, err = read_in_child(find_path(m, f), how + ",".join(
        "%d:%d" % s for s in segs), timeout=60)
    assert err is None and sha == sha_of_ranges(f["local_path"], segs)
    reqs = [r for r in fake.requests(op=op, path_contains="random40M")]
    waited = [r for r in reqs if r["answer"] == "wait"]
    assert len(waited) == 1, reqs[:5]
    # the resend asks the same bytes; other threads' reads (par:) may
    # come in between
    ask = lambda r: (r["offset"], r["rlen"], r["segs"])  # noqa: E731
    again = [r for r in reqs if r["time"] > waited[0]["time"] and
             r["answer"] != "wait" and ask(r) == ask(waited[0])]
    assert again and again[0]["time"] - waited[0]["time"] >= 1.9, reqs[:5]
    assert m.alive()


def test_fake_oksofar_chunks_and_no_over_read(lake41, fake, mount_factory):
    """Tiny kXR_oksofar frames; preads near the end: each answer holds
    exactly what was asked (the fake logs every read)."""
    f = file_entry(lake41, *FAULT_FILE)
    m = mount_factory(lake41, "schemes=root", "rse_expression=" + FAKE, *FAST)
    segs = [(0, 1), (f["size"] - 5, 100), (12345, 65536), (f["size"] // 2, 4096)]
    sha, err = read_in_child(find_path(m, f), "at:" + ",".join("%d:%d" % s for s in segs))
    assert err is None and sha == sha_of_ranges(f["local_path"], segs)
    reads = fake.requests(op="read", path_contains="random40M")
    assert reads
    for r in reads:   # never a read that starts past the end
        assert 0 <= r["offset"] < f["size"] and r["rlen"] > 0, r


def test_fake_sparse_reads_use_readv_and_bad_headers_are_caught(lake41, fake, mount_factory):
    """Many small reads far apart, by threads at once, become kXR_readv
    (issue 18: one thread's reads come one at a time, nothing to group);
    segment headers that do not match the request are refused: the bytes
    come from XRD_DISK or the read is EIO, never the moved range."""
    f = file_entry(lake41, *FAULT_FILE)
    segs = [(i * (1 << 20) + 777, 3000) for i in range(0, 38, 2)]
    m = mount_factory(lake41, "schemes=root", "rse_expression=" + FAKE, *FAST)
    sha, err = read_in_child(find_path(m, f), "par:" + ",".join("%d:%d" % s for s in segs))
    assert (sha, err) == (sha_of_ranges(f["local_path"], segs), None)
    assert fake.requests(op="readv", path_contains="random40M"), "no kXR_readv"
    fake.set_fault(r"random40M\.bin$", "readv_badhdr", shift=4096)
    m2 = fault_mount(lake41, mount_factory)
    sha, err = read_in_child(find_path(m2, f), "par:" + ",".join("%d:%d" % s for s in segs))
    assert (sha, err) in ((sha_of_ranges(f["local_path"], segs), None), (None, errno.EIO))
    assert_still_serves(m2, lake41)


# --------------------------------------------------------------------------
# redirectors
# --------------------------------------------------------------------------
def a_file(lake, min_size, skip=(), max_size=64 << 20):
    """A file on both RSEs of at least @min_size bytes (and not the 5 GiB
    sparse one: the fakes serve from Python)."""
    for f in replicated(lake):
        if min_size <= f["size"] <= max_size and (f["scope"], f["name"]) not in skip:
            return f
    raise AssertionError("no file of %d bytes" % min_size)


def test_read_through_xrootd_redirector(lake41, mount_factory, replicas):
    """xrootd + cmsd manager, a data server behind it: the mount reads
    through the manager's redirect, bytes exact, the data server opened
    the file."""
    r = lake41.redirectors.get(REDIR) or lake41.start_redirector(REDIR)
    f = a_file(lake41, 5 << 20)
    replicas(f["scope"], f["name"], REDIR)
    before = len(r.opens(f["pfn_path"]))
    m = mount_factory(lake41, "schemes=root", "rse_expression=" + REDIR, *FAST)
    sha, err = read_in_child(find_path(m, f))
    assert (sha, err) == (f["sha256"], None)
    assert len(r.opens(f["pfn_path"])) > before
    assert m.alive()


def test_redirector_wait_during_startup_is_honoured(lake41, mount_factory, replicas):
    """A manager fresh from its start answers kXR_wait (cms.delay
    startup): the read waits and resends, then gets every byte from the
    data server, well within read_timeout."""
    r = lake41.redirectors.get(REDIR) or lake41.start_redirector(REDIR)
    f = a_file(lake41, 1 << 20, skip=(FAULT_FILE,))
    replicas(f["scope"], f["name"], REDIR)
    m = mount_factory(lake41, "schemes=root", "rse_expression=" + REDIR,
                      "read_timeout=60")
    p = find_path(m, f)
    os.stat(p)
    before = len(r.opens(f["pfn_path"]))
    try:
        r.restart_manager(startup=6)
        t = time.time()
        sha, err = read_in_child(p, timeout=60)
        took = time.time() - t
    finally:
        r.restart_manager(startup=1, wait=True)
    assert (sha, err) == (f["sha256"], None)
    assert took >= 3, "no wait: the manager was still starting (%.1fs)" % took
    assert len(r.opens(f["pfn_path"])) > before
    assert m.alive()


def test_redirect_retry_carries_tried(lake41, mount_factory, replicas):
    """A redirector (fakexrd saying it is a manager) sends the open to a
    data server that fails it: the client goes back to the redirector
    with tried=<host> (and triedrc=), and the read succeeds there."""
    rd = lake41.fakexrds.get(FAKE_RD) or lake41.start_fakexrd(FAKE_RD, manager=True)
    ds = lake41.fakexrds.get(FAKE_DS) or lake41.start_fakexrd(FAKE_DS)
    for s in (rd, ds):
        s.clear_faults()
        s.reset()
    f = a_file(lake41, 1 << 20, skip=(FAULT_FILE,))
    replicas(f["scope"], f["name"], FAKE_RD)
    rd.set_fault("", "redirect", port=ds.port, count=1)
    ds.set_fault("", "error", errnum=3005, message="data server broken")
    m = mount_factory(lake41, "schemes=root", "rse_expression=" + FAKE_RD, *FAST)
    sha, err = read_in_child(find_path(m, f))
    assert (sha, err) == (f["sha256"], None)
    opens = rd.requests(op="open")
    assert [o["answer"] for o in opens][:1] == ["redirect"]
    assert ds.requests(op="open") and ds.requests(op="open")[0]["answer"] == "error"
    assert any("tried=127.0.0.1" in (o["cgi"] or "") for o in opens[1:]), opens
    assert m.alive()


def test_redirect_hop_limit(lake41, mount_factory, replicas):
    """A redirector that redirects to itself forever: EIO after a bounded
    number of hops, no hang, no crash."""
    rd = lake41.fakexrds.get(FAKE_RD) or lake41.start_fakexrd(FAKE_RD, manager=True)
    rd.clear_faults()
    rd.reset()
    f = a_file(lake41, 1 << 20, skip=(FAULT_FILE,))
    replicas(f["scope"], f["name"], FAKE_RD)
    rd.set_fault("", "redirect")
    try:
        m = mount_factory(lake41, "schemes=root", "rse_expression=" + FAKE_RD, *FAST)
        sha, err = read_in_child(find_path(m, f), timeout=60)
        assert sha is None and err == errno.EIO
        hops = len(rd.requests(op="open"))
        assert 2 <= hops <= 64, hops
        assert m.alive()
    finally:
        rd.clear_faults()


# --------------------------------------------------------------------------
# TLS + tokens (ztn) on the token store's root:// port
# --------------------------------------------------------------------------
ALICE_FILE = ("user.alice", "notes.txt")
BOB_FILE = ("user.bob", "bob1.dat")


@pytest.fixture
def roots_rse(toklake):
    """An RSE naming the token store's root:// port (TLS + ztn) as
    roots://, holding ALICE_FILE and BOB_FILE for this test only."""
    rse = toklake.store.add_root_replicas([ALICE_FILE, BOB_FILE], scheme="roots")
    yield rse
    for did in (ALICE_FILE, BOB_FILE):
        toklake.lake.remove_replica(*did, rse)


def _local(lake, did):
    with open(lake.files[did]["local_path"], "rb") as f:
        return f.read()


def _refused(r):
    return r.returncode != 0 and b"Permission denied" in r.stderr


def test_roots_with_tokens_per_caller(toklake, mount_factory, local_users, roots_rse):
    """roots:// (TLS, ztn) on a shared mount: each caller reads with their
    own token; out of scope is EACCES; the two users' requests go over
    different connections (the store logs a connection per subject, and
    no connection carries both)."""
    lake, store = toklake.lake, toklake.store
    rse = roots_rse
    m = mount_factory(lake, "allow_other", "token_issuer=" + toklake.issuer.url,
                      "schemes=roots", "rse_expression=" + rse, *FAST)
    make_traversable(m.dir)
    a = local_users.add()
    a.write_token(toklake.token("alice", read=[toklake.user_scope("user.alice")]))
    b = local_users.add()
    b.write_token(toklake.token("bob", read=[toklake.user_scope("user.bob")]))
    alice = os.path.join(m.dir, file_entry(lake, *ALICE_FILE)["paths"][0])
    bob = os.path.join(m.dir, file_entry(lake, *BOB_FILE)["paths"][0])
    assert a.run(["cat", alice]).stdout == _local(lake, ALICE_FILE)
    assert b.run(["cat", bob]).stdout == _local(lake, BOB_FILE)
    assert _refused(b.run(["cat", alice]))
    assert _refused(a.run(["cat", bob]))
    roots = [r for r in store.opens() if not r["tident"].startswith("unknown.")]
    ga = [r for r in roots if r["subject"] == "alice" and r["granted"]]
    gb = [r for r in roots if r["subject"] == "bob" and r["granted"]]
    assert ga and gb, roots
    assert not any(r["granted"] for r in roots
                   if r["subject"] == "bob" and "notes.txt" in r["path"])
    # one connection, one subject
    by_conn = {}
    for r in roots:
        by_conn.setdefault(r["tident"], set()).add(r["subject"])
    assert all(len(s) == 1 for s in by_conn.values()), by_conn
    assert {r["tident"] for r in ga}.isdisjoint({r["tident"] for r in gb})
    assert m.alive()


def test_roots_without_token_is_eacces(toklake, mount_factory, roots_rse):
    """A mount without a storage token (userpass to Rucio) reading a file
    whose only replica needs ztn: the server refuses the login ("Auth
    failed"), which is EACCES (issue 18), no bytes, no hang."""
    lake = toklake.lake
    rse = roots_rse
    m = mount_factory(lake, "schemes=roots", "rse_expression=" + rse, *FAST)
    f = file_entry(lake, *ALICE_FILE)
    sha, err = read_in_child(os.path.join(m.dir, f["paths"][0]), timeout=60)
    assert sha is None and err == errno.EACCES
    assert m.alive()


def test_roots_in_scope_token_reads(toklake, mount_factory, tmp_path, roots_rse):
    """A single-user mount whose token (token_file) covers the file reads
    it over roots://: TLS verified against rucio.cfg's ca_cert, ztn."""
    lake = toklake.lake
    rse = roots_rse
    tok = tmp_path / "tok"
    tok.write_text(toklake.token("alice", read=[toklake.user_scope("user.alice")]))
    os.chmod(tok, 0o600)
    m = mount_factory(lake, "token_file=%s" % tok, "schemes=roots",
                      "rse_expression=" + rse, *FAST,
                      cfg_kw={"auth_type": "oidc", "password": None})
    f = file_entry(lake, *ALICE_FILE)
    sha, err = read_in_child(os.path.join(m.dir, f["paths"][0]))
    assert (sha, err) == (f["sha256"], None)
    assert any(r["granted"] and r["subject"] == "alice" and
               not r["tident"].startswith("unknown.")
               for r in toklake.store.opens(path_contains="notes.txt"))
