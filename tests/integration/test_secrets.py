"""Secrets stay secret: credentials in replica URLs, core dumps, token
files, plain-HTTP catalogues."""
import errno
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import uuid

import pytest

import lake as lakemod
from conftest import RUCIOFS, new_lake
from rucio_client import find_path, replicated


def nginx_log_size(lake):
    try:
        return os.path.getsize(os.path.join(lake.workdir, "nginx",
                                            "access.log"))
    except OSError:
        return 0


def nginx_entries(lake, since):
    """Access log entries written after byte @since."""
    with open(os.path.join(lake.workdir, "nginx", "access.log"), "rb") as fh:
        fh.seek(since)
        out = []
        for line in fh.read().decode(errors="replace").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out


def test_userinfo_in_replica_urls_is_dropped(lake41, mount_factory):
    lake = lake41
    # in a dataset: a top-level file stops being one when another test
    # attaches it somewhere
    f = [g for g in replicated(lake) if 0 < g["size"] < 1 << 20 and
         g["paths"][0].count("/") >= 2][0]
    web = lake.rse_protocols[lakemod.RSE_NGINX]["https"]
    tag = uuid.uuid4().hex[:8].upper()
    bad, good = "CREDBAD_" + tag, "CREDOK_" + tag
    # the first refuses connections (so its URL reaches a log line), the
    # second is nginx itself: both PFNs carry credentials
    lake.add_rse(bad, [{"scheme": "https", "port": lakemod.free_port(),
                        "hostname": "user:s3cr3t-pw@127.0.0.1",
                        "prefix": web["prefix"], "priority": 1}])
    lake.add_rse(good, [{"scheme": "https", "port": web["port"],
                         "hostname": "user:s3cr3t-pw@127.0.0.1",
                         "prefix": web["prefix"], "priority": 2}])
    lake.add_replica(f["scope"], f["name"], bad)
    lake.add_replica(f["scope"], f["name"], good)
    since = nginx_log_size(lake)
    try:
        m = mount_factory(lake, "rse_expression=%s|%s" % (bad, good))
        p = find_path(m, f)
        with open(p, "rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == f["sha256"]
        reps = os.getxattr(p, "user.rucio.replicas").decode()
        assert reps.count("https://127.0.0.1:") == 2, reps
        log = m.logtext()
        assert "moved to the next replica" in log, log
        assert "credentials in the URL ignored" in log, log
        m.unmount()
        with open(m.log_path, errors="replace") as fh:
            text = fh.read() + reps
        assert "s3cr3t" not in text and "user:" not in text, text
        # never sent: nginx saw the reads, with no Authorization at all
        got = [e for e in nginx_entries(lake, since)
               if f["pfn_path"] in (e.get("uri") or "")]
        assert got and not any(e.get("authorization") for e in got), got
        # never kept: not in the cache's index (its offline replica list)
        for path in glob.glob(os.path.join(m.cache, "*.mdb")):
            with open(path, "rb") as fh:
                assert b"s3cr3t" not in fh.read(), path
    finally:
        lake.remove_replica(f["scope"], f["name"], bad)
        lake.remove_replica(f["scope"], f["name"], good)


# A process without CAP_SYS_PTRACE, like the daemon started below: it may
# open the memory of a process of its own user with no more capabilities
# only if that process is dumpable (ptrace access mode rules).
NO_PTRACE = ["setpriv", "--bounding-set=-sys_ptrace"]
PROBE = """
import sys
try:
    open("/proc/%s/mem" % sys.argv[1], "rb").close()
except PermissionError:
    sys.exit(3)
"""


def can_open_mem(pid):
    r = subprocess.run(NO_PTRACE + [sys.executable, "-c", PROBE, str(pid)])
    assert r.returncode in (0, 3), r
    return r.returncode == 0


def test_daemon_is_not_dumpable(lake41, mount_factory):
    # the probe tells the two apart: a dumpable peer's memory opens
    peer = subprocess.Popen(NO_PTRACE + ["sleep", "60"])
    try:
        assert can_open_mem(peer.pid)
    finally:
        peer.kill()
        peer.wait()
    m = mount_factory(lake41, "password=alice-secret",
                      cfg_kw={"password": None}, prefix=NO_PTRACE)
    assert os.listdir(m.dir)
    with open("/proc/%d/comm" % m.proc.pid) as fh:
        assert fh.read().strip() == "ruciofs"
    assert not can_open_mem(m.proc.pid)
    with open("/proc/%d/cmdline" % m.proc.pid, "rb") as fh:
        assert b"alice-secret" not in fh.read()


def write_token(lake, path):
    path.write_text(lake.issuer.mint("alice", lifetime=3600) + "\n")
    os.chmod(path, 0o600)


def wait_exit(proc, timeout):
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


@pytest.mark.parametrize("spelling", ["//", "/./", "..", "symlink"])
def test_token_file_inside_the_mount_however_spelled(lake41, mount_factory,
                                                     tmp_path, spelling):
    # the first mount of this test lives in tmp_path/m0/mnt
    top = tmp_path / "m0"
    mnt = top / "mnt"
    (top / "x").mkdir(parents=True)
    mnt.mkdir()
    write_token(lake41, mnt / "bt")
    os.symlink(str(mnt), str(tmp_path / "ln"))
    path = {"//": str(top) + "//mnt/bt", "/./": str(top) + "/./mnt/bt",
            "..": str(top) + "/x/../mnt/bt",
            "symlink": str(tmp_path / "ln" / "bt")}[spelling]
    t = time.time()
    m = mount_factory(lake41, "token_file=" + path,
                      cfg_kw={"auth_type": "oidc"}, wait=False)
    assert m.dir == str(mnt)
    # refused at start, on the terminal, at once; never mounted
    rc = wait_exit(m.proc, 10)
    assert rc not in (None, 0), m.logtext()
    assert time.time() - t < 10
    assert "inside the mount" in m.logtext()


LISTDIR = """
import os, sys
try:
    os.listdir(sys.argv[1])
except OSError as e:
    sys.exit(e.errno)
"""


def test_token_file_moved_into_the_mount(lake41, mount_factory, tmp_path):
    d = tmp_path / "tokdir"
    d.mkdir()
    write_token(lake41, d / "bt")
    m = mount_factory(lake41, "token_file=" + str(d / "bt"),
                      cfg_kw={"auth_type": "oidc"})
    scopes = sorted(os.listdir(m.dir))
    assert len(scopes) >= 2
    # the token's directory becomes a link to a scope of the mount:
    # reading the file would need the listing that needs the token
    d.rename(tmp_path / "tokdir.real")
    os.symlink(m.path(scopes[0]), str(d))
    # the token in memory is served for a second after the file was
    # last looked at: the next look is the one that must not hang
    time.sleep(1.1)
    t = time.time()
    child = subprocess.Popen([sys.executable, "-c", LISTDIR,
                              m.path(scopes[1])])
    rc = wait_exit(child, 15)
    if rc is None:
        # a deadlocked daemon holds its own threads and this child for
        # good: abort the connection (FUSE's umount -f) to clean up
        subprocess.run(["umount", "-f", m.dir])
        child.wait(10)
        pytest.fail("the mount hangs: it reads its token from itself")
    assert rc in (errno.EACCES, errno.EIO), rc
    assert time.time() - t < 10
    assert "inside the mount" in m.logtext()
    # the mount still answers what it knows
    assert sorted(os.listdir(m.dir)) == scopes
    # and once the file is back, the catalogue is used again
    os.unlink(str(d))
    (tmp_path / "tokdir.real").rename(d)
    deadline = time.time() + 10
    while True:
        try:
            os.listdir(m.path(scopes[1]))
            break
        except OSError:
            assert time.time() < deadline, "token not used again"
            time.sleep(0.2)
    assert m.alive()


@pytest.fixture(scope="module")
def plain_lake():
    """A lake without TLS: catalogue and storage on plain http://."""
    with new_lake("lake-41-plain", tls=False) as lk:
        yield lk


INSECURE = "ruciofs: warning: insecure catalogue: plain http sends "


@pytest.mark.parametrize("auth", ["userpass", "oidc"])
def test_plain_http_catalogue_warns(plain_lake, mount_factory, tmp_path,
                                    auth):
    opts, kw, what = [], {}, "the password to "
    if auth == "oidc":
        tok = tmp_path / "tk"
        write_token(plain_lake, tok)
        opts, kw, what = ["token_file=" + str(tok)], \
            {"auth_type": "oidc"}, "the bearer token to "
    assert plain_lake.rucio_host.startswith("http://")
    # in the foreground the log is the terminal: one line
    m = mount_factory(plain_lake, *opts, cfg_kw=kw)
    assert os.listdir(m.dir)
    lines = [l for l in m.logtext().splitlines() if l.startswith(INSECURE)]
    assert len(lines) == 1, m.logtext()
    assert what + plain_lake.rucio_host in lines[0]
    # detached: on the terminal before the daemon leaves it
    mp = tmp_path / "mp"
    mp.mkdir()
    cfg = tmp_path / "rucio.cfg"
    plain_lake.write_rucio_cfg(str(cfg), **kw)
    args = [RUCIOFS, "-o", "rucio_config=" + str(cfg),
            "-o", "cache_dir=" + str(tmp_path / "cache")]
    for o in opts:
        args += ["-o", o]
    r = subprocess.run(args + [str(mp)], capture_output=True, text=True,
                       timeout=30)
    try:
        assert r.returncode == 0, r.stderr
        assert r.stderr.count(INSECURE) == 1, r.stderr
    finally:
        subprocess.run(["fusermount3", "-u", str(mp)])


def test_https_catalogue_does_not_warn(lake41, mount_factory):
    m = mount_factory(lake41)
    assert os.listdir(m.dir)
    assert "insecure" not in m.logtext()


def test_no_credentials_follow_a_redirect(lake41, mount_factory):
    """A storage server's redirect to a URL with userinfo: followed, but
    the userinfo is neither sent (as Basic auth) nor logged."""
    rse = "SECRETS_FS"
    store = lake41.faultstores.get(rse) or lake41.start_faultstore(rse)
    f = [g for g in replicated(lake41) if 0 < g["size"] < 1 << 20 and
         g["paths"][0].count("/") >= 2][1]
    lake41.add_replica(f["scope"], f["name"], rse)
    store.reset()
    store.set_fault(re.escape(f["pfn_path"]), "redirect", count=1,
                    location="https://user:s3cr3t@127.0.0.1:%d{path}"
                    % store.port)
    try:
        m = mount_factory(lake41, "rse_expression=" + rse)
        with open(find_path(m, f), "rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == f["sha256"]
        got = store.requests(path_contains=f["pfn_path"])
        assert [r["status"] for r in got] == [302, 206], got
        assert not any(r["auth"] for r in got), got
        assert "s3cr3t" not in m.logtext()
    finally:
        store.clear_faults()
        lake41.remove_replica(f["scope"], f["name"], rse)
