"""The native root:// client end to end: a mount that may read only root://
replicas (XRD_DISK's xrootd 5.5.3) gives the catalogue's bytes exactly,
and the server saw the opens; xrdcp (Debian's XrdCl) agrees on the bytes."""
import hashlib
import os
import random
import shutil
import subprocess

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
