"""The persistent block cache: restarts, crashes, corruption, quota,
a full disk, and one fetch per block however many readers."""
import hashlib
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import nginx_bytes
from rucio_client import find_path, replicated

BS = 1 << 20


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def cacheable(lake, lo=1, hi=64 << 20):
    return [f for f in replicated(lake) if lo <= f["size"] <= hi]


def storage_hits(lake, f):
    return sum(lake.storage_requests(r, path_contains=f["pfn_path"])
               for r in ("NGINX_DISK", "XRD_DISK"))


def cached(path):
    return float(os.getxattr(path, "user.ruciofs.cached"))


def remount(mount_factory, lake, old, *opts):
    old.unmount()
    return mount_factory(lake, "cache_dir=" + old.cache, *opts)


def test_restart_with_storage_stopped(lake41, mount_factory):
    files = cacheable(lake41)[:12]
    m = mount_factory(lake41)
    for f in files:
        assert sha256_of(find_path(m, f)) == f["sha256"]
        assert cached(find_path(m, f)) == 1.0
    lake41.stop_rse("NGINX_DISK")
    lake41.stop_rse("XRD_DISK")
    try:
        m2 = remount(mount_factory, lake41, m, "connect_timeout=1",
                     "io_timeout=2")
        for f in files:
            assert sha256_of(find_path(m2, f)) == f["sha256"]
        assert "replicas failed" not in m2.logtext()
    finally:
        lake41.start_rse("NGINX_DISK")
        lake41.start_rse("XRD_DISK")


def drop_caches():
    subprocess.run(["sh", "-c", "sync; echo 3 > /proc/sys/vm/drop_caches"])


def test_cached_reads_send_nothing_to_storage(lake41, mount_factory):
    f = max(cacheable(lake41), key=lambda f: f["size"])
    m = mount_factory(lake41)
    assert sha256_of(find_path(m, f)) == f["sha256"]
    before = storage_hits(lake41, f)
    m2 = remount(mount_factory, lake41, m)
    drop_caches()
    assert sha256_of(find_path(m2, f)) == f["sha256"]
    assert storage_hits(lake41, f) == before


def test_sigkill_mid_read_then_remount(lake41, mount_factory):
    files = cacheable(lake41, lo=BS)
    m = mount_factory(lake41)
    paths = [find_path(m, f) for f in files]
    readers = [subprocess.Popen(["cat", p], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for p in paths]
    time.sleep(0.4)
    m.proc.send_signal(signal.SIGKILL)
    m.proc.wait()
    for r in readers:
        r.wait(timeout=30)
    subprocess.run(["fusermount3", "-u", "-z", m.dir])
    m2 = remount(mount_factory, lake41, m)
    for f in files:
        assert sha256_of(find_path(m2, f)) == f["sha256"], f["name"]
    # and once more, now served from what the cache kept
    m3 = remount(mount_factory, lake41, m2)
    for f in files:
        assert sha256_of(find_path(m3, f)) == f["sha256"], f["name"]


def flip_in_cache(cache, needle):
    """Flips one byte of @needle where the cache keeps it: in one block
    file under blocks/, and nowhere in LMDB's index."""
    with open(os.path.join(cache, "data.mdb"), "rb") as fh:
        assert needle not in fh.read()
    hits = []
    for root, _, names in os.walk(os.path.join(cache, "blocks")):
        for name in names:
            with open(os.path.join(root, name), "r+b") as fh:
                data = fh.read()
                pos = data.find(needle)
                if pos < 0:
                    continue
                fh.seek(pos + len(needle) // 2)
                fh.write(bytes([data[pos + len(needle) // 2] ^ 0x5a]))
                hits.append(name)
    assert len(hits) == 1, "block bytes found in %d block files" % len(hits)


def test_corrupt_block_detected_and_healed(lake41, mount_factory):
    f = [f for f in cacheable(lake41, lo=3 * BS)][0]
    m = mount_factory(lake41)
    assert sha256_of(find_path(m, f)) == f["sha256"]
    m.unmount()
    with open(f["local_path"], "rb") as ref:
        ref.seek(BS + 12345)
        needle = ref.read(64)
    flip_in_cache(m.cache, needle)
    before = storage_hits(lake41, f)
    m2 = mount_factory(lake41, "cache_dir=" + m.cache)
    drop_caches()
    assert sha256_of(find_path(m2, f)) == f["sha256"]
    # one line, an event naming the file and the block
    assert "event corrupt-block: block 1 of %s:%s failed its checksum" % (
        f["scope"], f["name"]) in m2.logtext()
    assert storage_hits(lake41, f) == before + 1  # only that block again
    m3 = remount(mount_factory, lake41, m2)
    assert sha256_of(find_path(m3, f)) == f["sha256"]
    assert "failed its checksum" not in m3.logtext()


def test_quota_holds_under_twice_the_load(lake41, mount_factory):
    bs, quota = 64 << 10, 1 << 20
    m = mount_factory(lake41, "cache_size=%d" % quota, "block_size=%d" % bs)
    files = sorted(cacheable(lake41, lo=4096, hi=quota),
                   key=lambda f: f["name"])
    total = 0
    for f in files:
        assert sha256_of(find_path(m, f)) == f["sha256"]
        total += f["size"]
    assert total >= 2 * quota, "the lake must hold twice the quota"
    time.sleep(1.5)  # the writer commits and evicts between batches
    kept = sum(cached(find_path(m, f)) * f["size"] for f in files)
    assert 0 < kept <= quota
    assert cached(find_path(m, files[-1])) == 1.0  # the newest stays
    # and everything still reads right, evicted or not
    for f in files:
        assert sha256_of(find_path(m, f)) == f["sha256"]


def test_full_cache_disk_degrades_to_network(lake41, mount_factory,
                                             tmp_path):
    small = tmp_path / "tiny"
    small.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs",
                        str(small)])
    if r.returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        m = mount_factory(lake41, "cache_dir=%s/c" % small,
                          "cache_size=1G")
        files = cacheable(lake41, lo=BS)[:6]
        for f in files:
            assert sha256_of(find_path(m, f)) == f["sha256"]
        time.sleep(1.5)
        for f in files:
            assert sha256_of(find_path(m, f)) == f["sha256"]
        assert m.alive()
        m.unmount()
    finally:
        subprocess.run(["umount", "-l", str(small)])


def test_concurrent_readers_fetch_each_block_once(lake41, mount_factory):
    f = max(cacheable(lake41, hi=32 << 20), key=lambda f: f["size"])
    m = mount_factory(lake41, "rse_expression=NGINX_DISK")
    p = find_path(m, f)
    os.stat(p)
    before = nginx_bytes(lake41, f)
    errors = []
    start = threading.Barrier(16)

    def reader():
        try:
            start.wait()
            with open(p, "rb", buffering=0) as fh:
                h = hashlib.sha256()
                for b in iter(lambda: fh.read(256 << 10), b""):
                    h.update(b)
            if h.hexdigest() != f["sha256"]:
                errors.append("bad data")
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    ts = [threading.Thread(target=reader) for _ in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    assert nginx_bytes(lake41, f) - before == f["size"]


def test_cache_off(lake41, mount_factory):
    m = mount_factory(lake41, "cache=no")
    f = cacheable(lake41, lo=BS)[0]
    assert sha256_of(find_path(m, f)) == f["sha256"]
    with pytest.raises(OSError):
        os.getxattr(find_path(m, f), "user.ruciofs.cached")
    assert not os.path.exists(os.path.join(m.cache, "data.mdb"))


def test_offline_listing_stat_and_reading(lake41, mount_factory):
    files = cacheable(lake41)[:8]
    m = mount_factory(lake41, "offline_retry=1")
    listed, mtimes = {}, {}
    for f in files:
        p = find_path(m, f)
        listed[os.path.dirname(p)] = sorted(os.listdir(os.path.dirname(p)))
        assert sha256_of(p) == f["sha256"]
        mtimes[f["name"]] = os.stat(p).st_mtime
    top = sorted(os.listdir(m.dir))
    m.unmount()
    never = [f for f in replicated(lake41)
             if os.path.dirname(f["paths"][0]) not in
             {os.path.relpath(d, m.dir) for d in listed}
             and 0 < f["size"] < 1 << 20][0]
    lake41.stop_catalogue()
    lake41.stop_rse("NGINX_DISK")
    lake41.stop_rse("XRD_DISK")
    try:
        m2 = mount_factory(lake41, "cache_dir=" + m.cache, "offline_retry=1",
                           "connect_timeout=1", "io_timeout=2")
        assert "mounting offline" in m2.logtext()
        assert sorted(os.listdir(m2.dir)) == top
        for d, names in listed.items():
            rel = os.path.relpath(d, m.dir)
            assert sorted(os.listdir(m2.path(rel))) == names
        for f in files:
            p = find_path(m2, f)
            assert os.stat(p).st_size == f["size"]
            # times asked for after the listing was kept are kept too
            assert os.stat(p).st_mtime == mtimes[f["name"]]
            assert sha256_of(p) == f["sha256"]
        # what was never cached fails, promptly
        t = time.time()
        with pytest.raises(OSError) as e:
            os.stat(find_path(m2, never))
        assert e.value.errno == 5
        assert time.time() - t < 5
    finally:
        lake41.start_catalogue()
        lake41.start_rse("NGINX_DISK")
        lake41.start_rse("XRD_DISK")
    # the link is back: used again without a remount
    time.sleep(1.5)
    assert sha256_of(find_path(m2, never)) == never["sha256"]


def test_random_read_fetches_its_pages_sequential_reads_ahead(lake41,
                                                              mount_factory):
    f = max(cacheable(lake41, hi=64 << 20), key=lambda f: f["size"])
    nblocks = (f["size"] + BS - 1) // BS
    assert nblocks >= 20
    m = mount_factory(lake41, "rse_expression=NGINX_DISK")
    p = find_path(m, f)
    before = storage_hits(lake41, f)
    before_bytes = nginx_bytes(lake41, f)
    fd = os.open(p, os.O_RDONLY | os.O_DIRECT)
    try:
        # a lone read in the middle: its own page, nothing more
        import mmap
        buf = mmap.mmap(-1, 4096)
        os.preadv(fd, [buf], 10 * BS + 4096)
        time.sleep(0.5)
        assert storage_hits(lake41, f) - before == 1
        assert nginx_bytes(lake41, f) - before_bytes == 4096
        with open(f["local_path"], "rb") as ref:
            ref.seek(10 * BS + 4096)
            assert bytes(buf) == ref.read(4096)
        # the same block again: now fetched whole, and kept
        os.preadv(fd, [buf], 10 * BS + 3 * 4096)
        time.sleep(0.5)
        assert nginx_bytes(lake41, f) - before_bytes == 4096 + BS
        os.preadv(fd, [buf], 10 * BS + 5 * 4096)
        assert nginx_bytes(lake41, f) - before_bytes == 4096 + BS
        # reads that follow on grow a window fetched ahead
        for i in range(4):
            os.preadv(fd, [buf], (11 + i) * BS)
        time.sleep(1.0)
        got = nginx_bytes(lake41, f) - before_bytes
        assert got > 4096 + (1 + 4) * BS, got
    finally:
        os.close(fd)
    assert sha256_of(p) == f["sha256"]
    # and every byte of the file crossed the network once, besides the
    # lone page
    assert nginx_bytes(lake41, f) - before_bytes == f["size"] + 4096


def test_corrupt_index_is_set_aside(lake41, mount_factory):
    files = cacheable(lake41, hi=4 << 20)[:3]
    m = mount_factory(lake41)
    for f in files:
        assert sha256_of(find_path(m, f)) == f["sha256"]
    m.unmount()
    # LMDB's two meta pages overwritten: "not an LMDB file"
    mdb = os.path.join(m.cache, "data.mdb")
    with open(mdb, "r+b") as fh:
        fh.write(b"\xa5" * 8192)
    m2 = mount_factory(lake41, "cache_dir=" + m.cache)
    kept = [n for n in os.listdir(m.cache) if n.startswith("data.mdb.")]
    assert len(kept) == 1 and kept[0].startswith("data.mdb.corrupt-"), kept
    log = m2.logtext()
    assert "cache index '%s' is corrupt (MDB_INVALID" % mdb in log, log
    assert os.path.join(m.cache, kept[0]) in log, log
    assert "network only" not in log, log
    # a cache again: read, stored, and whole in it
    for f in files:
        p = find_path(m2, f)
        assert sha256_of(p) == f["sha256"]
        deadline = time.time() + 10
        while cached(p) < 1.0:
            assert time.time() < deadline, (f["name"], cached(p))
            time.sleep(0.1)
