"""Secrets stay secret: credentials in replica URLs, core dumps, token
files, plain-HTTP catalogues."""
import glob
import hashlib
import json
import os
import subprocess
import sys
import uuid

import lake as lakemod
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
