"""Never a dead mount: a slow catalogue or a trickling replica holds only
the requests that wait on them. Cached data is answered at once while
listings hang; every read has an overall deadline."""
import errno
import os
import threading
import time

from rucio_client import find_path, replicated


def drop_page_cache():
    """The kernel's page cache only: names it knows stay known, so a read
    of a file it has looked up goes to the daemon and nowhere else."""
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("1\n")


def datasets(lake, f):
    """Collection directories (mount-relative) other than @f's."""
    mine = os.path.dirname(f["paths"][0])
    return sorted({os.path.dirname(g["paths"][0]) for g in replicated(lake)}
                  - {mine})


def test_slow_listings_do_not_hold_cached_reads(lake41, mount_factory):
    m = mount_factory(lake41)
    f = [g for g in replicated(lake41) if g["size"] == 1048577][0]
    p = find_path(m, f)
    with open(p, "rb") as fh:  # cached, replicas known
        want = fh.read()
    dirs = datasets(lake41, f)[:10]
    assert len(dirs) >= 5, dirs
    lake41.slow_catalogue(10, match=r"/dids/.+/(dids|files)$")
    lake41.reset_counts()
    workers = []
    try:
        # 20 listings of directories never listed: each waits 10 s
        for i in range(20):
            d = m.path(dirs[i % len(dirs)])
            t = threading.Thread(target=lambda d=d: os.listdir(d),
                                 daemon=True)
            t.start()
            workers.append(t)
        end = time.time() + 5
        while time.time() < end and \
                lake41.catalogue_counts()["total"] == 0:
            time.sleep(0.05)
        time.sleep(0.5)  # the rest of them queue up behind the first
        drop_page_cache()
        t0 = time.time()
        with open(p, "rb") as fh:
            got = fh.read()
        took = time.time() - t0
        assert got == want
        assert took < 2, "a cached read waited %.1f s" % took
        assert sum(t.is_alive() for t in workers) >= 10, "listings not slow"
    finally:
        lake41.slow_catalogue(0)
        for t in workers:
            t.join(30)
    assert m.alive()


FAULT = "FAULT_DISK"


def test_a_trickle_ends_at_read_timeout(lake41, mount_factory):
    store = lake41.faultstores.get(FAULT) or lake41.start_faultstore(FAULT)
    f = [g for g in replicated(lake41) if g["size"] == 1048577][0]
    store.clear_faults()
    # above the low-speed limit (1K): only an overall deadline ends it
    store.set_fault(f["name"], "trickle", rate=2048)
    lake41.add_replica(f["scope"], f["name"], FAULT)
    try:
        m = mount_factory(lake41, "rse_expression=%s" % FAULT,
                          "read_timeout=4s")
        t0 = time.time()
        with open(find_path(m, f), "rb") as fh:
            try:
                fh.read(100)
                raise AssertionError("a trickle read did not fail")
            except OSError as e:
                assert e.errno == errno.EIO
        took = time.time() - t0
        assert 3.5 < took < 10, took
        log = m.logtext()
        assert "read_timeout (4 s) reached" in log, log
        assert "%s (" % FAULT in log and "KiB/s" in log, log
        # beside a good replica, the trickle is left long before that
        m2 = mount_factory(lake41, "rse_expression=%s|XRD_DISK" % FAULT,
                           "read_timeout=60s")
        t0 = time.time()
        with open(find_path(m2, f), "rb") as fh:
            assert len(fh.read()) == f["size"]
        assert time.time() - t0 < 10
        assert m.alive() and m2.alive()
    finally:
        store.clear_faults()
        lake41.remove_replica(f["scope"], f["name"], FAULT)
