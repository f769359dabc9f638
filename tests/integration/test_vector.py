"""Sparse reads grouped into vector reads: many threads reading small
pieces far apart in one open file get the right bytes through fewer
requests than reads, multi-range ones (nginx, XrdHttp); never to an RSE
with Rucio's simulate_multirange; and a multi-range answer that lies
gives EIO or the next replica's bytes, never wrong ones."""
import errno
import json
import os
import random
import threading
import time

import pytest

from rucio_client import find_path, manifest_files

FAULT = "FAULT_DISK"
BS = 64 << 10      # the mounts' block size: many blocks in 40 MiB
READS = 256        # 4 KiB reads, each in a block of its own
THREADS = 32


def big(lake):
    return [g for g in manifest_files(lake)
            if (g["scope"], g["name"]) == ("user.alice", "random40M.bin")][0]


def sparse_offsets(f, seed, n=READS):
    """@n page-aligned offsets, each in a block of its own, no two blocks
    side by side and never block 0: what a sparse reader asks."""
    rnd = random.Random(seed)
    blocks = rnd.sample(range(1, f["size"] // BS // 2), n)
    return [2 * b * BS + rnd.randrange(0, BS // 2, 4096) for b in blocks]


def sparse_read(path, offsets, threads=THREADS, size=4096):
    """Reads @size bytes at each offset, @threads threads sharing one fd
    (no kernel read-ahead), started together. ({off: bytes}, [errors])."""
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
    got, errs = {}, []
    start = threading.Barrier(threads)

    def work(mine):
        start.wait()
        for off in mine:
            try:
                got[off] = os.pread(fd, size, off)
            except OSError as e:
                errs.append(e)

    ts = [threading.Thread(target=work, args=(offsets[i::threads],))
          for i in range(threads)]
    try:
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
    finally:
        os.close(fd)
    return got, errs


def expected(f, offsets, size=4096):
    with open(f["local_path"], "rb") as fh:
        return {o: os.pread(fh.fileno(), size, o) for o in offsets}


def nginx_since(lake):
    p = os.path.join(lake.workdir, "nginx", "access.log")
    return os.path.getsize(p) if os.path.exists(p) else 0


def nginx_gets(lake, f, since, at_least=0, timeout=10):
    """nginx's log entries for @f's bytes after offset @since of its log.
    nginx may write a request's line after its client has the bytes: with
    @at_least, the log is read again until that many are there or
    @timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        out = []
        with open(os.path.join(lake.workdir, "nginx", "access.log")) as fh:
            fh.seek(since)
            for line in fh:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if f["pfn_path"] in (e.get("uri") or ""):
                    out.append(e)
        if len(out) >= at_least or time.monotonic() > deadline:
            return out
        time.sleep(0.05)


def test_sparse_threads_are_grouped_into_multirange_gets(lake41,
                                                         mount_factory):
    f = big(lake41)
    offs = sparse_offsets(f, 1)
    since = nginx_since(lake41)
    m = mount_factory(lake41, "rse_expression=NGINX_DISK",
                      "block_size=%d" % BS)
    got, errs = sparse_read(find_path(m, f), offs)
    assert not errs, (errs[:3], m.logtext())
    assert got == expected(f, offs)
    gets = nginx_gets(lake41, f, since)
    multi = [e for e in gets if "," in e["range"]]
    assert multi, "no multi-range request: %r" % gets[:5]
    assert all(e["status"] == 206 for e in gets), gets
    # grouped: fewer requests than reads
    assert len(gets) < len(offs), (len(gets), len(offs))
    assert "one by one" not in m.logtext()


def test_xrdhttp_answers_multirange_too(lake41, mount_factory):
    f = big(lake41)
    offs = sparse_offsets(f, 2)
    m = mount_factory(lake41, "rse_expression=XRD_DISK",
                      "block_size=%d" % BS)
    got, errs = sparse_read(find_path(m, f), offs)
    assert not errs, (errs[:3], m.logtext())
    assert got == expected(f, offs)
    # XrdHttp's layout (bare "Content-range", its boundary) was taken
    assert "one by one" not in m.logtext()


def test_root_sparse_threads_read_right(lake41, mount_factory):
    """The same sparse reads over root:// only: grouped into kXR_readv by
    the xrootd transport, the right bytes."""
    f = big(lake41)
    offs = sparse_offsets(f, 8)
    m = mount_factory(lake41, "schemes=root", "rse_expression=XRD_DISK",
                      "block_size=%d" % BS)
    got, errs = sparse_read(find_path(m, f), offs)
    assert not errs, (errs[:3], m.logtext())
    assert got == expected(f, offs)


def test_vector_reads_no_sends_one_range_per_request(lake41, mount_factory):
    f = big(lake41)
    offs = sparse_offsets(f, 3, 64)
    since = nginx_since(lake41)
    m = mount_factory(lake41, "rse_expression=NGINX_DISK",
                      "block_size=%d" % BS, "vector_reads=no")
    got, errs = sparse_read(find_path(m, f), offs)
    assert not errs and got == expected(f, offs)
    gets = nginx_gets(lake41, f, since)
    assert gets and not [e for e in gets if "," in e["range"]]


def test_simulate_multirange_rse_gets_no_multirange(lake41, mount_factory):
    """An RSE with Rucio's simulate_multirange is asked one range per
    request, however sparse the reads."""
    rse = "MULTIRANGE_DISK"
    f = big(lake41)
    lake41.add_rse(rse, [{"scheme": "https", "hostname": "127.0.0.1",
                          "port": lake41.ports["nginx"],
                          "prefix": "/rucio"}],
                   {"simulate_multirange": 1}, exist_ok=True)
    lake41.add_replica(f["scope"], f["name"], rse)
    try:
        offs = sparse_offsets(f, 4)
        since = nginx_since(lake41)
        m = mount_factory(lake41, "rse_expression=" + rse,
                          "block_size=%d" % BS)
        got, errs = sparse_read(find_path(m, f), offs)
        assert not errs, (errs[:3], m.logtext())
        assert got == expected(f, offs)
        gets = nginx_gets(lake41, f, since, at_least=len(offs))
        assert len(gets) >= len(offs)
        assert not [e for e in gets if "," in e["range"]], gets[:5]
    finally:
        lake41.remove_replica(f["scope"], f["name"], rse)


@pytest.fixture
def on_store(lake41, store):
    """random40M.bin with a replica on the faultstore too."""
    f = big(lake41)
    store.clear_faults()
    store.reset()
    lake41.add_replica(f["scope"], f["name"], FAULT)
    yield f
    store.clear_faults()
    lake41.remove_replica(f["scope"], f["name"], FAULT)


def multirange_requests(store, f):
    return [r for r in store.requests()
            if f["pfn_path"] in r["path"] and "," in (r["range"] or "")]


@pytest.mark.parametrize("lie", ["shift", "drop", "dup", "extra", "short"])
def test_lying_multirange_answer_fails_over(lake41, mount_factory, store,
                                            on_store, lie):
    """The liar first (faultstore priority 1), XrdHttp second: every byte
    right, from the honest one."""
    f = on_store
    store.set_fault(f["name"], "multipart", lie=lie)
    offs = sparse_offsets(f, 5)
    m = mount_factory(lake41, "rse_expression=%s|XRD_DISK" % FAULT,
                      "block_size=%d" % BS)
    got, errs = sparse_read(find_path(m, f), offs)
    assert not errs, (errs[:3], m.logtext())
    assert got == expected(f, offs)
    assert multirange_requests(store, f), store.requests()[:5]
    assert "moved to the next replica" in m.logtext()


def test_lying_multirange_alone_is_eio_never_wrong(lake41, mount_factory,
                                                   store, on_store):
    f = on_store
    store.set_fault(f["name"], "multipart", lie="shift")
    offs = sparse_offsets(f, 6)
    m = mount_factory(lake41, "rse_expression=" + FAULT,
                      "block_size=%d" % BS)
    got, errs = sparse_read(find_path(m, f), offs)
    want = expected(f, offs)
    assert all(got[o] == want[o] for o in got)
    assert errs and all(e.errno == errno.EIO for e in errs), errs[:3]
    assert multirange_requests(store, f)


@pytest.mark.parametrize("how", ["whole", "single"])
def test_server_without_multirange_is_read_one_by_one(
        lake41, mount_factory, store, on_store, how):
    """A server that answers a multi-range request with the whole file
    (200) or with its first range only is asked no more multi-range
    requests, and every byte is right."""
    f = on_store
    if how == "single":
        store.set_fault(f["name"], "multipart", lie="single")
    offs = sparse_offsets(f, 7)
    m = mount_factory(lake41, "rse_expression=" + FAULT,
                      "block_size=%d" % BS)
    got, errs = sparse_read(find_path(m, f), offs)
    assert not errs, (errs[:3], m.logtext())
    assert got == expected(f, offs)
    # only the batches already on the wire when the first answer came
    # (each of two reads or more): after it, none
    first = len(multirange_requests(store, f))
    assert 1 <= first <= len(offs) // 2
    assert "one by one" in m.logtext()
    more = [o for o in sparse_offsets(f, 8) if o not in got]
    got, errs = sparse_read(find_path(m, f), more)
    assert not errs, (errs[:3], m.logtext())
    assert got == expected(f, more)
    assert len(multirange_requests(store, f)) == first
