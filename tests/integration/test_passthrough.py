"""Whole cached files read by the kernel from their block files (FUSE
passthrough, Linux 6.9+), and everything that must keep them off that
path: a file not whole, a block file changed since it was verified, an
inode already open through the daemon, passthrough=no."""
import mmap
import os
import threading

import pytest

from rucio_client import find_path
from test_cache import (BS, cacheable, drop_caches, flip_in_cache, remount,
                        sha256_of, storage_hits)
from test_ctl import ctl, status

NEGOTIATED = "passthrough: whole cached files are read by the kernel"


def kernel_offers(m):
    if NEGOTIATED not in m.logtext():
        assert "not offered by this kernel" in m.logtext()
        pytest.skip("this kernel has no FUSE passthrough")


def cached_then_remounted(lake, mount_factory, f, *opts):
    m = mount_factory(lake)
    assert sha256_of(find_path(m, f)) == f["sha256"]
    return remount(mount_factory, lake, m, *opts)


def test_whole_cached_file_is_read_by_the_kernel(lake41, mount_factory):
    f = cacheable(lake41, lo=3 * BS)[0]
    m = cached_then_remounted(lake41, mount_factory, f)
    kernel_offers(m)
    before = storage_hits(lake41, f)
    drop_caches()
    assert sha256_of(find_path(m, f)) == f["sha256"]
    st = status(m)
    assert st["whole_opens"] == 1
    assert st["cache_bytes"] == 0  # not one read came to the daemon
    assert storage_hits(lake41, f) == before
    # seeks, short reads at the end, and mmap, all from the block file
    with open(find_path(m, f), "rb") as fh, open(f["local_path"],
                                                 "rb") as ref:
        for off in (f["size"] - 1, 0, BS - 7, f["size"] // 2):
            fh.seek(off)
            ref.seek(off)
            assert fh.read(4096) == ref.read(4096)
        assert fh.read(1) == ref.read(1)
        fh.seek(f["size"])
        assert fh.read(10) == b""
        mm = mmap.mmap(fh.fileno(), 0, prot=mmap.PROT_READ)
        ref.seek(BS + 3)
        assert mm[BS + 3:BS + 3 + 65536] == ref.read(65536)
        mm.close()
    assert os.stat(find_path(m, f)).st_size == f["size"]
    assert status(m)["cache_bytes"] == 0


def test_open_through_the_daemon_keeps_later_opens_there(lake41,
                                                         mount_factory):
    f = cacheable(lake41, lo=2 * BS)[0]
    m = mount_factory(lake41)
    kernel_offers(m)
    p = find_path(m, f)
    first = open(p, "rb")  # not cached yet: through the daemon
    try:
        assert sha256_of(p) == f["sha256"]  # now whole, while still open
        ctl("prefetch", p)  # waits for the writer: stored and sealed
        # the kernel refuses an inode in both modes: this open must be
        # served like the first one, and succeed
        assert sha256_of(p) == f["sha256"]
        assert status(m)["whole_opens"] == 0
        assert first.read() != b""
    finally:
        first.close()
    assert sha256_of(p) == f["sha256"]
    assert status(m)["whole_opens"] == 1


def test_many_opens_of_one_file_share_its_backing(lake41, mount_factory):
    f = cacheable(lake41, lo=2 * BS)[-1]
    m = cached_then_remounted(lake41, mount_factory, f)
    kernel_offers(m)
    p = find_path(m, f)
    results = []

    def reader():
        results.append(sha256_of(p))

    ts = [threading.Thread(target=reader) for _ in range(6)]
    held = open(p, "rb")
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert results == [f["sha256"]] * 6
    held.close()
    assert sha256_of(p) == f["sha256"]  # its backing id registered anew
    assert status(m)["whole_opens"] == 8


def test_a_changed_block_file_is_read_through_the_daemon(lake41,
                                                         mount_factory):
    f = cacheable(lake41, lo=3 * BS)[-1]
    m = mount_factory(lake41)
    assert sha256_of(find_path(m, f)) == f["sha256"]
    m.unmount()
    with open(f["local_path"], "rb") as ref:
        ref.seek(2 * BS + 99)
        needle = ref.read(64)
    flip_in_cache(m.cache, needle)
    m2 = mount_factory(lake41, "cache_dir=" + m.cache)
    kernel_offers(m2)
    drop_caches()
    assert sha256_of(find_path(m2, f)) == f["sha256"]
    assert status(m2)["whole_opens"] == 0
    log = m2.logtext()
    assert "changed since it was verified" in log
    assert "block 2 of %s:%s failed its checksum" % (f["scope"],
                                                    f["name"]) in log


def test_passthrough_off(lake41, mount_factory):
    f = cacheable(lake41, lo=BS)[-1]
    m = cached_then_remounted(lake41, mount_factory, f, "passthrough=no")
    assert sha256_of(find_path(m, f)) == f["sha256"]
    st = status(m)
    assert st["whole_opens"] == 0
    assert st["cache_bytes"] >= f["size"]
    assert NEGOTIATED not in m.logtext()
