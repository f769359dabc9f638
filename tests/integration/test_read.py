"""Bytes read through the mount are the catalogue's bytes, exactly."""
import errno
import hashlib
import mmap
import os
import random
import shutil
import subprocess
import threading
import time

import pytest

from conftest import catalogue_requests
from rucio_client import Client, manifest_files, find_path, replicated


def sha256_of(path, bs=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(bs)
            if not b:
                return h.hexdigest()
            h.update(b)


def small_files(lake, limit=4 << 30):
    return [f for f in replicated(lake) if f["size"] < limit]


def test_every_file_reads_whole(lake, tmnt):
    files = small_files(lake)
    assert len(files) > 20
    for f in files:
        assert sha256_of(find_path(tmnt, f)) == f["sha256"], f["name"]


def test_random_preads(lake, tmnt):
    rnd = random.Random(20261124)
    files = [f for f in small_files(lake) if f["size"] > 0]
    big = max(files, key=lambda f: f["size"])
    handles = {}
    try:
        for i in range(1000):
            # half on the biggest file, half spread over the others
            f = big if i % 2 else rnd.choice(files)
            if f["name"] not in handles:
                handles[f["name"]] = (os.open(find_path(tmnt, f), os.O_RDONLY),
                                      open(f["local_path"], "rb"))
            fd, ref = handles[f["name"]]
            off = rnd.randrange(0, f["size"] + 10)
            n = rnd.choice([1, 7, 512, 4096, 65536, 300000])
            ref.seek(off)
            assert os.pread(fd, n, off) == ref.read(n), (f["name"], off, n)
    finally:
        for fd, ref in handles.values():
            os.close(fd)
            ref.close()


def test_sparse_reads(lake, tmnt):
    """Many small reads far apart in one file (the pattern of ROOT files
    that vector reads serve), then one spanning several of them."""
    f = max(small_files(lake), key=lambda f: f["size"])
    assert f["size"] >= 20 << 20
    step = f["size"] // 97
    segs = [(i * step + (i * 131) % 4096, 100 + (i * 37) % 3000) for i in range(97)]
    fd = os.open(find_path(tmnt, f), os.O_RDONLY)
    try:
        with open(f["local_path"], "rb") as ref:
            for off, n in segs:
                ref.seek(off)
                assert os.pread(fd, n, off) == ref.read(n), (off, n)
            ref.seek(step)
            assert os.pread(fd, 3 * step, step) == ref.read(3 * step)
    finally:
        os.close(fd)


def test_reads_at_and_past_eof(lake, tmnt):
    f = [f for f in small_files(lake) if f["size"] > 100][0]
    fd = os.open(find_path(tmnt, f), os.O_RDONLY)
    try:
        assert os.pread(fd, 10, f["size"]) == b""
        assert os.pread(fd, 10, f["size"] + 12345) == b""
        assert len(os.pread(fd, 100, f["size"] - 3)) == 3
    finally:
        os.close(fd)


def test_empty_file(lake, mnt):
    empty = [f for f in replicated(lake) if f["size"] == 0]
    assert empty
    with open(find_path(mnt, empty[0]), "rb") as fh:
        assert fh.read() == b""


def test_cp_r_dataset(lake, mnt, tmp_path):
    f = max(replicated(lake), key=lambda f: len(f["siblings"]))
    src = os.path.dirname(find_path(mnt, f))
    dst = tmp_path / "copy"
    subprocess.run(["cp", "-r", src, str(dst)], check=True)
    by_path = {p: g for g in manifest_files(lake) for p in g["paths"]}
    n = 0
    for name in os.listdir(dst):
        rel = os.path.join(os.path.relpath(src, mnt.dir), name)
        if rel in by_path:
            assert sha256_of(dst / name) == by_path[rel]["sha256"]
            n += 1
    assert n >= 100


def test_mmap(lake, tmnt):
    f = [f for f in small_files(lake) if f["size"] > 3 << 20][0]
    with open(find_path(tmnt, f), "rb") as fh, \
            open(f["local_path"], "rb") as ref:
        m = mmap.mmap(fh.fileno(), 0, prot=mmap.PROT_READ)
        want = ref.read()
        assert len(m) == len(want)
        assert m[:4096] == want[:4096]
        assert m[-5000:] == want[-5000:]
        assert hashlib.sha256(m[:]).hexdigest() == f["sha256"]
        m.close()


def getfattr(path, name):
    return os.getxattr(path, name).decode()


def test_xattrs(lake, mnt):
    cli = Client(lake)
    f = [f for f in small_files(lake) if f["size"] > 0][0]
    p = find_path(mnt, f)
    assert getfattr(p, "user.rucio.did") == "%s:%s" % (f["scope"], f["name"])
    assert getfattr(p, "user.rucio.type") == "FILE"
    assert getfattr(p, "user.rucio.bytes") == str(f["size"])
    assert getfattr(p, "user.rucio.adler32") == f["adler32"]
    assert getfattr(p, "user.rucio.md5") == f["md5"]
    pfns = getfattr(p, "user.rucio.replicas").split("\n")
    rep = cli.replicas(f["scope"], f["name"])[0]
    # root:// ones too, now that the build reads them
    want = [u for u, _ in sorted(rep["pfns"].items(),
                                 key=lambda kv: kv[1]["priority"])]
    assert [u.replace("%20", " ") for u in pfns] == want or pfns == want
    names = os.listxattr(p)
    for n in ("user.rucio.did", "user.rucio.type", "user.rucio.bytes",
              "user.rucio.adler32", "user.rucio.md5", "user.rucio.replicas"):
        assert n in names
    d = os.path.dirname(p)
    assert getfattr(d, "user.rucio.type") in ("DATASET", "CONTAINER",
                                              "SCOPE")
    with pytest.raises(OSError):
        os.getxattr(d, "user.rucio.replicas")
    with pytest.raises(OSError):
        os.setxattr(p, "user.rucio.did", b"x")
    out = subprocess.run(["getfattr", "-d", p], capture_output=True,
                         text=True, check=True).stdout
    assert "user.rucio.adler32=" in out


def test_no_labels_or_acls_is_said_once(mnt, tmp_path):
    """security.* and system.* are not supported (EOPNOTSUPP), not merely
    absent (ENODATA): ls -l then asks once per mount, not twice per file."""
    p = os.path.join(mnt.dir, "user.alice")
    for name in ("security.selinux", "system.posix_acl_access",
                 "system.posix_acl_default", "trusted.x"):
        with pytest.raises(OSError) as e:
            os.getxattr(p, name)
        assert e.value.errno == errno.EOPNOTSUPP, name
    log = tmp_path / "trace"
    subprocess.run(["strace", "-f", "-e", "trace=lgetxattr,getxattr",
                    "-o", str(log), "ls", "-lR", p],
                   stdout=subprocess.DEVNULL, check=True)
    calls = [x for x in log.read_text().splitlines() if "xattr(" in x]
    files = sum(len(fs) + len(ds) for _, ds, fs in os.walk(p))
    assert files > 10
    assert len(calls) <= 4, calls


def test_failover_when_an_rse_dies_mid_read(lake, mount_factory):
    m = mount_factory(lake, "connect_timeout=2", "io_timeout=3")
    f = max(small_files(lake), key=lambda f: f["size"])
    assert f["size"] >= 20 << 20
    p = find_path(m, f)
    h = hashlib.sha256()
    first = lake.storage_requests("XRD_DISK")
    try:
        with open(p, "rb", buffering=0) as fh:
            h.update(fh.read(4 << 20))
            lake.kill_rse("NGINX_DISK")
            while True:
                b = fh.read(1 << 20)
                if not b:
                    break
                h.update(b)
    finally:
        lake.start_rse("NGINX_DISK")
    assert h.hexdigest() == f["sha256"]
    assert lake.storage_requests("XRD_DISK") > first
    assert m.alive()


def test_all_replicas_down_gives_eio_not_hang(lake, mount_factory):
    m = mount_factory(lake, "connect_timeout=2", "io_timeout=3")
    f = [f for f in small_files(lake) if f["size"] > 100000][1]
    p = find_path(m, f)
    os.stat(p)
    lake.kill_rse("NGINX_DISK")
    lake.kill_rse("XRD_DISK")
    try:
        t = time.time()
        with pytest.raises(OSError) as e:
            with open(p, "rb") as fh:
                fh.read()
        assert e.value.errno == 5  # EIO
        assert time.time() - t < 20
        # NGINX_DISK https, XRD_DISK https and root://
        assert "all 3 replicas failed" in m.logtext()
    finally:
        lake.start_rse("NGINX_DISK")
        lake.start_rse("XRD_DISK")
    assert m.alive()
    with open(p, "rb") as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == f["sha256"]


def test_concurrent_readers(lake, tmnt):
    files = [f for f in small_files(lake) if f["size"] > 1 << 20][:4]
    errors = []

    def reader(f):
        try:
            if sha256_of(find_path(tmnt, f), bs=65536) != f["sha256"]:
                errors.append(f["name"])
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    ts = [threading.Thread(target=reader, args=(f,)) for f in files * 3]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors


def test_cp_r_of_a_dataset_resolves_replicas_in_batches(
        lake, mount_factory, tmp_path):
    """cp -r opens a directory's files in inode order, which is not the
    listing's: batching follows membership of the directory, so the
    replicas of a 100-file dataset still come in a few requests (1, 8,
    64, ... files), not one per file."""
    m = mount_factory(lake)
    want = {f["name"]: f for f in manifest_files(lake)
            if "cta:many_files" in f["datasets"]}
    d = m.path("cta", "many_files")
    listing = os.listdir(d)
    by_inode = sorted(listing, key=lambda n: os.stat(os.path.join(d, n)).st_ino)
    assert by_inode != listing  # else this test proves nothing new
    lake.reset_counts()
    subprocess.run(["cp", "-r", d, str(tmp_path / "copy")], check=True,
                   timeout=120)
    for name, f in want.items():
        with open(tmp_path / "copy" / name, "rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == f["sha256"], name
    assert catalogue_requests(lake, "/replicas/list") <= 5


def test_single_replica_files(lake, mnt):
    for name in ("xrd_only.dat", "nginx_only.dat"):
        f = [f for f in manifest_files(lake) if f["name"] == name][0]
        assert sha256_of(find_path(mnt, f)) == f["sha256"]


def test_file_without_replica_is_eio(lake, mnt):
    f = [f for f in manifest_files(lake) if f["name"] == "no_replica.dat"][0]
    p = find_path(mnt, f)
    assert os.stat(p).st_size == f["size"]
    with pytest.raises(OSError) as e:
        open(p, "rb").close()
    assert e.value.errno == 5
    assert "lists no replica" in mnt.logtext()


def test_opening_a_dataset_in_order_resolves_replicas_in_batches(
        lake, mount_factory):
    """tar, cp -r or a loop over a dataset open its files in listing
    order: their replicas come a batch per request (1, 8, 64, 512 files),
    not a request per file; an open out of order asks for its own."""
    m = mount_factory(lake)
    want = {f["name"]: f for f in manifest_files(lake)
            if "cta:many_files" in f["datasets"]}
    assert len(want) >= 100
    d = m.path("cta", "many_files")
    names = os.listdir(d)
    assert sorted(names) == sorted(want)
    lake.reset_counts()
    for name in names:
        with open(os.path.join(d, name), "rb") as fh:
            data = fh.read()
        assert hashlib.sha256(data).hexdigest() == want[name]["sha256"], name
    assert catalogue_requests(lake, "/replicas/list") <= 6
    # out of order, after the replica lists expired: still every byte
    m2 = mount_factory(lake, "replica_ttl=0")
    d2 = m2.path("cta", "many_files")
    some = random.Random(7).sample(sorted(want), 20)
    lake.reset_counts()
    for name in some:
        with open(os.path.join(d2, name), "rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == \
                want[name]["sha256"]
    assert catalogue_requests(lake, "/replicas/list") == len(some)
