"""The tree, attributes and names shown by the mount match the catalogue."""
import calendar
import email.utils
import errno
import os
import random
import subprocess

import pytest

from conftest import catalogue_requests
from rucio_client import Client, posix_name, walk_catalogue, manifest_files, find_path


def test_tree_matches_catalogue(lake, mnt):
    cli = Client(lake)
    scopes = cli.scopes()
    assert sorted(os.listdir(mnt.dir)) == sorted(scopes)
    want = {}
    for s in scopes:
        walk_catalogue(cli, s, None, s, want, {})
    got = {}
    for s in scopes:
        for root, dirs, files in os.walk(mnt.path(s)):
            rel = os.path.relpath(root, mnt.dir)
            got[rel] = sorted(dirs + files)
    assert got == want


def test_stat_sizes_and_times(lake, mnt):
    cli = Client(lake)
    for f in manifest_files(lake):
        p = find_path(mnt, f)
        st = os.stat(p)
        assert st.st_size == f["size"], p
        assert st.st_blocks == (f["size"] + 511) // 512
        assert st.st_nlink == 1
        assert st.st_mode & 0o777 == 0o444
        meta = cli.meta(f["scope"], f["name"])
        upd = calendar.timegm(email.utils.parsedate(meta["updated_at"]))
        assert int(st.st_mtime) == upd, p


def test_times_are_asked_for_only_when_needed(lake, mount_factory):
    """A dataset's content carries names, sizes and checksums: `find` and
    a plain listing ask nothing more; the first stat asks for the times
    of the files around it in bulk, and they are the catalogue's."""
    m = mount_factory(lake)
    want = {f["name"]: f for f in manifest_files(lake)
            if "cta:many_files" in f["datasets"]}
    assert len(want) >= 100
    d = m.path("cta", "many_files")
    os.listdir(m.path("cta"))
    lake.reset_counts()
    out = subprocess.run(["find", d, "-type", "f"], check=True,
                         capture_output=True, text=True).stdout.split()
    assert sorted(os.path.basename(x) for x in out) == sorted(want)
    assert catalogue_requests(lake, "/dids/bulkmeta") == 0
    assert sorted(e.name for e in os.scandir(d) if e.is_file()) == \
        sorted(want)
    assert catalogue_requests(lake, "/dids/bulkmeta") == 0
    ls = subprocess.run(["ls", "-l", "--time-style=+%s", d], check=True,
                        capture_output=True, text=True).stdout
    # a request per thousand files, whatever order `ls` stats them in
    assert 1 <= catalogue_requests(lake, "/dids/bulkmeta") <= (len(want) + 999) // 1000
    cli = Client(lake)
    shown = {l.split()[-1]: int(l.split()[-2])
             for l in ls.splitlines()[1:]}
    for name in random.Random(3).sample(sorted(want), 10):
        meta = cli.meta("cta", name)
        upd = calendar.timegm(email.utils.parsedate(meta["updated_at"]))
        assert shown[posix_name(name)] == upd, name
        assert int(os.stat(os.path.join(d, name)).st_mtime) == upd
    # known now: another listing answers them with the names
    before = catalogue_requests(lake, "/dids/bulkmeta")
    subprocess.run(["ls", "-lR", d], check=True, capture_output=True)
    assert catalogue_requests(lake, "/dids/bulkmeta") == before


def test_large_sparse_file_size_is_64bit(lake, mnt):
    big = [f for f in manifest_files(lake) if f["size"] > 4 << 30]
    assert big, "the test lake must hold a file over 4 GiB"
    for f in big:
        p = find_path(mnt, f)
        assert os.stat(p).st_size == f["size"]
        # read across the 4 GiB boundary and at the very end
        with open(p, "rb") as fh, open(f["local_path"], "rb") as ref:
            for off in (0, (4 << 30) - 3, f["size"] - 7, f["size"] - 1):
                fh.seek(off)
                ref.seek(off)
                assert fh.read(4096) == ref.read(4096), off


def test_directories_and_statfs(lake, mnt):
    for s in os.listdir(mnt.dir):
        st = os.stat(mnt.path(s))
        assert st.st_mode & 0o777 == 0o555
    vfs = os.statvfs(mnt.dir)
    assert vfs.f_namemax == 255
    assert vfs.f_flag & os.ST_RDONLY


def test_du_find_tar_rsync(lake, mnt, tmp_path):
    # the dataset holding the many small files
    f = max(manifest_files(lake), key=lambda f: len(f["siblings"]))
    top = os.path.dirname(find_path(mnt, f))
    out = subprocess.run(["find", top, "-type", "f"], check=True,
                         capture_output=True, text=True).stdout.split("\n")
    files = [x for x in out if x]
    assert files
    size = sum(os.stat(x).st_size for x in files)
    du = subprocess.run(["du", "-sb", top], check=True, capture_output=True,
                        text=True).stdout.split()[0]
    assert int(du) >= size
    tar = tmp_path / "t.tar"
    subprocess.run(["tar", "-cf", str(tar), "-C", top, "."], check=True)
    listed = subprocess.run(["tar", "-tf", str(tar)], check=True,
                            capture_output=True, text=True).stdout
    for x in files:
        assert "./" + os.path.relpath(x, top) in listed
    dst = tmp_path / "rs"
    subprocess.run(["rsync", "-a", top + "/", str(dst) + "/"], check=True)
    for x in files:
        rel = os.path.relpath(x, top)
        assert open(x, "rb").read() == open(dst / rel, "rb").read()


@pytest.mark.parametrize("op", ["touch", "mkdir", "rm", "mv", "write"])
def test_changes_are_erofs(lake, mnt, op):
    f = manifest_files(lake)[0]
    p = find_path(mnt, f)
    d = os.path.dirname(p)
    with pytest.raises(OSError) as e:
        if op == "touch":
            open(os.path.join(d, "new-file"), "w").close()
        elif op == "mkdir":
            os.mkdir(os.path.join(d, "new-dir"))
        elif op == "rm":
            os.unlink(p)
        elif op == "mv":
            os.rename(p, p + ".moved")
        else:
            open(p, "r+b").close()
    assert e.value.errno == errno.EROFS


def test_missing_names(mnt):
    with pytest.raises(FileNotFoundError):
        os.stat(mnt.path("no-such-scope"))
    scope = sorted(os.listdir(mnt.dir))[0]
    with pytest.raises(FileNotFoundError):
        os.stat(mnt.path(scope, "no-such-did"))


def test_names_with_spaces_unicode_and_slashes(lake, mnt):
    special = [f for f in manifest_files(lake)
               if " " in f["name"] or not f["name"].isascii()
               or "/" in f["name"]]
    assert special
    for f in special:
        p = find_path(mnt, f)
        assert os.path.basename(p) == posix_name(f["name"])
        with open(p, "rb") as fh:
            assert len(fh.read()) == f["size"]
