"""ruciofs-ctl: prefetch with progress, pins, eviction, status."""
import hashlib
import json
import mmap
import os
import pty
import re
import subprocess
import time

import pytest

from conftest import TOP_BUILD, catalogue_requests, nginx_bytes
from rucio_client import find_path, replicated

CTL = os.environ.get("RUCIOFS_CTL_BIN") or os.path.join(TOP_BUILD,
                                                        "ruciofs-ctl")


def ctl(*args, check=True):
    r = subprocess.run([CTL] + list(args), capture_output=True, text=True,
                       timeout=120)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def status(m):
    """The daemon's status, as ruciofs-ctl status --json gives it."""
    return json.loads(ctl("-m", m.dir, "status", "--json").stdout)


def cached(path):
    return float(os.getxattr(path, "user.ruciofs.cached"))


def dataset_of(lake, lo=2, hi=50, min_bytes=0):
    """A dataset directory (relative) with between lo and hi files, one
    of them at least min_bytes long."""
    by_dir = {}
    for f in replicated(lake):
        by_dir.setdefault(os.path.dirname(f["paths"][0]), []).append(f)
    for d, fs in sorted(by_dir.items()):
        if lo <= len(fs) <= hi and d.count("/") >= 1 and \
                max(f["size"] for f in fs) >= min_bytes:
            return d, fs
    raise AssertionError("no dataset of that size")


def storage_hits(lake, f):
    return sum(lake.storage_requests(r, path_contains=f["pfn_path"])
               for r in ("NGINX_DISK", "XRD_DISK"))


def poll(cond, timeout):
    """True once @cond holds, False if it did not within @timeout s."""
    end = time.time() + timeout
    while not cond():
        if time.time() > end:
            return False
        time.sleep(0.05)
    return True


def wait_until(cond, what, timeout=10):
    if not poll(cond, timeout):
        pytest.fail(what)


def test_prefetch_to_a_pipe_fills_the_cache(lake41, mount_factory):
    m = mount_factory(lake41)
    d, files = dataset_of(lake41)
    r = ctl("prefetch", m.path(d))
    assert r.stdout.startswith("prefetched ")
    assert "%d/%d files" % (len(files), len(files)) in r.stdout
    assert "\r" not in r.stdout
    for f in files:
        assert cached(find_path(m, f)) == 1.0
    before = [storage_hits(lake41, f) for f in files]
    for f in files:
        with open(find_path(m, f), "rb") as fh:
            fh.read()
    assert [storage_hits(lake41, f) for f in files] == before


def test_prefetch_of_many_files_resolves_replicas_in_batches(
        lake41, mount_factory):
    m = mount_factory(lake41)
    d = m.path("cta", "many_files")
    n = len(os.listdir(d))
    assert n >= 100
    lake41.reset_counts()
    r = ctl("prefetch", d)
    assert "%d/%d files" % (n, n) in r.stdout
    asked = catalogue_requests(lake41, "/replicas/list")
    assert 1 <= asked <= (n + 511) // 512, asked
    for name in os.listdir(d)[:20]:
        assert cached(os.path.join(d, name)) == 1.0


def test_prefetch_of_what_is_whole_asks_no_replicas(lake41, mount_factory):
    m = mount_factory(lake41)
    d = m.path("cta", "many_files")
    n = len(os.listdir(d))
    ctl("prefetch", d)
    lake41.reset_counts()
    r = ctl("prefetch", d)
    assert "%d/%d files" % (n, n) in r.stdout
    assert catalogue_requests(lake41, "/replicas/list") == 0
    total, before = re.search(r"files, (.+) \((.+) were cached\)",
                              r.stdout).groups()
    assert total == before, r.stdout


def test_prefetch_offline_of_what_is_whole(lake41, mount_factory):
    m = mount_factory(lake41, "offline_retry=1", "connect_timeout=1",
                      "io_timeout=2")
    d, files = dataset_of(lake41)
    ctl("prefetch", m.path(d))
    # the catalogue out of reach: the file list kept last time serves
    lake41.stop_catalogue()
    try:
        r = ctl("prefetch", m.path(d))
        assert "%d/%d files" % (len(files), len(files)) in r.stdout
    finally:
        lake41.start_catalogue()


def test_prefetch_on_a_terminal_shows_progress(lake41, mount_factory):
    m = mount_factory(lake41)
    big = max(replicated(lake41), key=lambda f: f["size"]
              if f["size"] < 64 << 20 else 0)
    did = "%s:%s" % (big["scope"], big["name"])
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(CTL, [CTL, "-m", m.dir, "prefetch", did])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, wst = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(wst) == 0, out
    text = out.decode(errors="replace")
    assert "\r[" in text and "ETA" in text and "files" in text
    assert "100%" in text
    assert cached(find_path(m, big)) == 1.0


def test_prefetch_resumes_where_it_stopped(lake41, mount_factory):
    # no read-ahead: what the first pass cached must be exactly known
    m = mount_factory(lake41, "readahead=no", "rse_expression=NGINX_DISK")
    big = max(replicated(lake41), key=lambda f: f["size"]
              if f["size"] < 64 << 20 else 0)
    p = find_path(m, big)
    start = nginx_bytes(lake41, big)
    fd = os.open(p, os.O_RDONLY)
    try:
        # nor the kernel's, which would go on fetching the next block
        # after the reads returned
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        for _ in range(10):  # an earlier, interrupted pass
            assert len(os.read(fd, 1 << 20)) == 1 << 20
    finally:
        os.close(fd)
    # each read returned once its block was queued for the cache
    had = round(cached(p) * ((big["size"] + (1 << 20) - 1) >> 20))
    assert had == 10
    # nginx logs a request once it has sent it: wait for the line
    wait_until(lambda: nginx_bytes(lake41, big) - start == 10 << 20,
               "the first pass fetched other than its 10 MiB")
    r = ctl("prefetch", p)
    assert "(10.0 MiB were cached)" in r.stdout, r.stdout
    # exactly the bytes not cached before crossed the network
    assert nginx_bytes(lake41, big) - start == big["size"]
    assert cached(p) == 1.0


def md5_of(path):
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for b in iter(lambda: fh.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def drop_caches():
    subprocess.run(["sh", "-c", "sync; echo 3 > /proc/sys/vm/drop_caches"])


def test_prefetch_after_evict_stores_every_block(lake41, mount_factory):
    # read-ahead on (the default): a sequential read of stored blocks
    # stages those ahead of the reader in memory. Without passthrough
    # (older kernels) the daemon serves warm reads.
    m = mount_factory(lake41, "passthrough=no", "offline_retry=1",
                      "connect_timeout=1", "io_timeout=2")
    d, files = dataset_of(lake41, lo=2, hi=10, min_bytes=16 << 20)
    for f in files:
        assert md5_of(find_path(m, f)) == f["md5"]
    # staged blocks nobody took stay until their room is wanted. Whether
    # a pass leaves any depends on how far staging got ahead of the
    # reader (under load the reader can take every block itself): a few
    # passes, as the setting up of what is tested below.
    end = time.time() + 60
    while True:
        drop_caches()
        for f in files:  # a warm reader that stops early (a header scan)
            with open(find_path(m, f), "rb") as fh:
                while fh.read(1 << 20) and fh.tell() < 4 << 20:
                    pass
        if poll(lambda: status(m)["staged"] > 0, 3):
            break
        if time.time() > end:
            pytest.fail("nothing was staged")
    ctl("evict", m.path(d))
    # the evicted blocks' staged copies went with them
    wait_until(lambda: status(m)["staged"] == 0, "staged copies outlive "
               "the eviction")
    r = ctl("prefetch", m.path(d))
    assert "%d/%d files" % (len(files), len(files)) in r.stdout
    # the prefetch returns once the writer stored what it fetched
    for f in files:
        assert cached(find_path(m, f)) == 1.0, f["name"]
    drop_caches()
    lake41.stop_catalogue()
    lake41.stop_rse("NGINX_DISK")
    lake41.stop_rse("XRD_DISK")
    try:
        for f in files:
            assert md5_of(find_path(m, f)) == f["md5"], f["name"]
    finally:
        lake41.start_catalogue()
        lake41.start_rse("NGINX_DISK")
        lake41.start_rse("XRD_DISK")


def test_pins_survive_pressure_and_restart(lake41, mount_factory):
    opts = ("cache_size=1M", "block_size=64K")
    m = mount_factory(lake41, *opts)
    d, files = dataset_of(lake41, lo=2, hi=10)
    pinned = [f for f in files if f["size"] < 200 << 10]
    assert pinned
    for f in pinned:
        ctl("prefetch", "--pin", find_path(m, f))
    others = [f for f in replicated(lake41)
              if 4096 < f["size"] <= 1 << 20 and f not in files]
    for f in others:  # more than the quota, twice
        with open(find_path(m, f), "rb") as fh:
            fh.read()
    time.sleep(1.5)
    for f in pinned:
        assert cached(find_path(m, f)) == 1.0
    st = status(m)
    assert st["pinned"] >= sum(f["size"] for f in pinned)
    assert st["used"] <= st["quota"]
    m.unmount()
    m2 = mount_factory(lake41, "cache_dir=" + m.cache, *opts)
    for f in pinned:
        assert cached(find_path(m2, f)) == 1.0
    st = status(m2)
    assert st["pinned"] >= sum(f["size"] for f in pinned)
    # unpinned, they go like anything else
    for f in pinned:
        ctl("unpin", find_path(m2, f))
    for f in others:
        with open(find_path(m2, f), "rb") as fh:
            fh.read()
    time.sleep(1.5)
    st = status(m2)
    assert st["pinned"] == 0


def test_pin_over_quota_is_refused_before_fetching(lake41, mount_factory):
    m = mount_factory(lake41, "cache_size=1M", "block_size=64K")
    big = max(replicated(lake41), key=lambda f: f["size"]
              if f["size"] < 64 << 20 else 0)
    before = storage_hits(lake41, big)
    r = ctl("prefetch", "--pin", find_path(m, big), check=False)
    assert r.returncode != 0
    assert "quota" in r.stderr
    assert storage_hits(lake41, big) == before


def test_evict_and_status(lake41, mount_factory):
    m = mount_factory(lake41)
    d, files = dataset_of(lake41)
    ctl("prefetch", m.path(d))
    st = status(m)
    for key in ("quota", "used", "pinned", "hits", "misses", "cache_bytes",
                "net_bytes", "endpoints"):
        assert key in st
    assert st["net_bytes"] >= sum(f["size"] for f in files)
    assert "NGINX_DISK" in st["endpoints"]
    # the prefetch returns once its blocks are stored: the writer wrote
    # (at least) all of them, and took time doing it
    assert st["written"] >= sum(f["size"] for f in files)
    assert st["write_us"] > 0 and st["wait_us"] >= 0
    human = ctl("-m", m.dir, "status").stdout
    assert "hit ratio" in human and "quota" in human
    assert "disk writes" in human
    ctl("evict", m.path(d))
    for f in files:
        assert cached(find_path(m, f)) == 0.0


def test_only_the_owner_may_use_the_socket(lake41, mount_factory):
    m = mount_factory(lake41)
    sock = os.getxattr(m.dir, "user.ruciofs.ctl").decode()
    assert os.stat(sock).st_mode & 0o077 == 0
    r = subprocess.run(["runuser", "-u", "nobody", "--", CTL, "-m", m.dir,
                        "status"], capture_output=True, text=True)
    assert r.returncode != 0


def test_unmount_during_a_prefetch_is_clean(lake41, mount_factory):
    # 4 KiB blocks make the prefetch of the big sparse file slow enough
    # to still be running when the mount goes
    m = mount_factory(lake41, "block_size=4K", "cache_size=1G")
    big = max(replicated(lake41), key=lambda f: f["size"])
    assert big["size"] > 1 << 30
    p = subprocess.Popen([CTL, "prefetch", find_path(m, big)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    time.sleep(1.5)
    assert p.poll() is None, "the prefetch ended too soon to test this"
    t = time.time()
    m.unmount()
    assert m.proc.returncode == 0
    assert time.time() - t < 10
    out, err = p.communicate(timeout=10)
    assert p.returncode != 0


def test_reads_go_through_one_session_per_endpoint(lake41, mount_factory):
    """A transport session per (endpoint, identity): files open on one
    endpoint share it, and it is kept when they close, for the next."""
    m = mount_factory(lake41, "rse_expression=NGINX_DISK")
    d, files = dataset_of(lake41, lo=2)
    assert status(m)["sessions"] == {"busy": 0, "idle": 0}
    handles = [open(find_path(m, f), "rb") for f in files[:2]]
    try:
        for fh, f in zip(handles, files):
            assert hashlib.sha256(fh.read()).hexdigest() == f["sha256"]
        assert status(m)["sessions"] == {"busy": 1, "idle": 0}
    finally:
        for fh in handles:
            fh.close()
    # RELEASE reaches the daemon after close() returns
    wait_until(lambda: status(m)["sessions"] == {"busy": 0, "idle": 1},
               "the session is kept once its files are closed")
    assert "sessions      0 with open files, 1 kept" in \
        ctl("-m", m.dir, "status").stdout


def read_blocks_direct(path, bs):
    """Reads @path one block at a time with O_DIRECT, so that each read
    reaches the daemon as one read of one whole block (no page cache, no
    kernel read-ahead). Returns the bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, bs)  # page-aligned, as O_DIRECT wants
    out = bytearray()
    try:
        while True:
            n = os.preadv(fd, [buf], len(out))
            out += buf[:n]
            if n < bs:
                return bytes(out)
    finally:
        os.close(fd)
        buf.close()


def test_status_counts_each_block_read_once(lake41, mount_factory):
    # a reader's miss is looked up more than once (the nowait pass, the
    # waiting pass, once more before the fetch): it must count once
    bs = 64 << 10
    m = mount_factory(lake41, "readahead=no", "passthrough=no",
                      "block_size=64K")
    f = next(f for f in replicated(lake41) if 4 * bs < f["size"] < 2 << 20)
    nblocks = (f["size"] + bs - 1) // bs
    data = read_blocks_direct(find_path(m, f), bs)
    assert hashlib.md5(data).hexdigest() == f["md5"]
    st = status(m)
    assert (st["hits"], st["misses"]) == (0, nblocks)
    data = read_blocks_direct(find_path(m, f), bs)
    assert hashlib.md5(data).hexdigest() == f["md5"]
    st = status(m)
    assert (st["hits"], st["misses"]) == (nblocks, nblocks)
    assert st["cache_bytes"] == f["size"]
