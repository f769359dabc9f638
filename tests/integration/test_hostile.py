"""A catalogue that sends what it should not: names that would forge log
lines, records that are malformed. Its own lake: these tests add DIDs."""
import errno
import hashlib
import os
import uuid

import pytest

import lake as lakemod
from conftest import new_lake
from rucio_client import posix_name, replicated


@pytest.fixture(scope="module")
def hlake():
    with new_lake("lake-41-hostile") as lk:
        yield lk


def new_dataset(lake, scope, files=()):
    """A fresh open dataset in @scope holding the manifest @files."""
    name = "hostile_" + uuid.uuid4().hex[:8]
    lake.admin("POST", "add_did", {"scope": scope, "name": name,
                                   "type": "DATASET", "is_open": True})
    if files:
        lake.attach(scope, name, [(f["scope"], f["name"]) for f in files])
    return name


def bad_file(scope, name, **meta):
    """A lake-JSON file entry; @meta overrides its columns as sent."""
    return {"scope": scope, "name": name, "bytes": 1, "adler32": "00000001",
            "md5": "0" * 32, "replicas": {}, "meta": meta}


def test_control_characters_in_names_are_escaped(hlake, mount_factory):
    f = [g for g in replicated(hlake) if 0 < g["size"] < 1 << 20][0]
    scope = f["scope"]
    ds = new_dataset(hlake, scope, [f])
    # too long to be shown: its warning names it, newlines and all
    forged = "x\nruciofs: error: FORGED by the catalogue\r\n" + "y" * 300
    hlake.add_file(bad_file(scope, forged), parent=(scope, ds))
    m = mount_factory(hlake)
    assert os.listdir(m.path(scope, ds)) == [posix_name(f["name"])]
    lines = [l for l in m.logtext().splitlines() if "FORGED" in l]
    assert len(lines) == 1, lines
    assert lines[0].startswith("ruciofs: warning: "), lines
    assert "x\\nruciofs: error: FORGED by the catalogue\\r\\n" in lines[0]


def sha256_of(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


@pytest.mark.parametrize("bytes_", ["abc", -1, 1.5, {"n": 1}])
def test_bad_record_keeps_its_siblings(hlake, mount_factory, bytes_):
    files = [g for g in replicated(hlake) if 0 < g["size"] < 1 << 20][:2]
    scope = files[0]["scope"]
    ds = new_dataset(hlake, scope, files)
    bad = "bad-size-%s\nruciofs: error: FORGED" % ds
    hlake.add_file(bad_file(scope, bad, bytes=bytes_), parent=(scope, ds))
    m = mount_factory(hlake)
    names = sorted(os.listdir(m.path(scope, ds)))
    assert names == sorted(posix_name(f["name"]) for f in files)
    for f in files:
        assert sha256_of(m.path(scope, ds, posix_name(f["name"]))) == \
            f["sha256"]
    lines = [l for l in m.logtext().splitlines() if "bad-size" in l]
    assert len(lines) == 1, m.logtext()
    assert lines[0].startswith("ruciofs: warning: catalogue: GET "), lines
    assert "'%s:%s'" % (scope, bad.replace("\n", "\\n")) in lines[0]
    assert "'bytes'" in lines[0]
    assert m.alive()


def test_file_without_size_is_eio_and_said(hlake, mount_factory):
    f = [g for g in replicated(hlake) if 0 < g["size"] < 1 << 20][0]
    scope = f["scope"]
    ds = new_dataset(hlake, scope, [f])
    nosize = "no-size-" + ds
    entry = bad_file(scope, nosize, bytes=None)
    entry["replicas"] = {lakemod.RSE_NGINX: "AVAILABLE"}
    hlake.add_file(entry, parent=(scope, ds))
    m = mount_factory(hlake)
    assert sorted(os.listdir(m.path(scope, ds))) == \
        sorted([posix_name(f["name"]), nosize])
    with pytest.raises(OSError) as e:
        open(m.path(scope, ds, nosize), "rb").close()
    assert e.value.errno == errno.EIO
    lines = [l for l in m.logtext().splitlines() if nosize in l]
    assert len(lines) == 1, m.logtext()
    assert "the catalogue gives no size for this file" in lines[0]
    # its sibling reads as ever
    assert sha256_of(m.path(scope, ds, posix_name(f["name"]))) == \
        f["sha256"]
