"""The installed package under a real systemd: the templated service and an
fstab automount. systemd runs in a sandbox (sdbox.py) because this machine's
PID 1 is not systemd; the package is installed inside the sandbox's own
layer, and the lake's servers run in the sandbox's network namespace."""
import glob
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import sdbox  # noqa: E402

LAKE_PY = os.path.join(TOP, "tests", "servers", "lake.py")
WORK = os.environ.get("RUCIOFS_PKG_TEST_WORK") or os.path.join(
    tempfile.gettempdir(), "ruciofs-pkg-it")
UNIT = "ruciofs@mnt-lake.service"  # systemd-escape --path /mnt/lake


def the_deb():
    debs = sorted(glob.glob(os.path.join(TOP, "packaging", "out",
                                         "ruciofs_*.deb")))
    if not debs:
        pytest.fail("no packaging/out/ruciofs_*.deb: run "
                    "packaging/setup.sh packages first")
    return debs[-1]


def wait_for(pred, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    pytest.fail("timed out waiting for " + what)


@pytest.fixture(scope="module")
def box():
    workdir = os.path.join(WORK, "sd")
    subprocess.run(["rm", "-rf", workdir], check=True)
    os.makedirs(workdir)
    deb = the_deb()
    b = sdbox.Sandbox(binds=[workdir, os.path.dirname(deb)])
    b.start()
    started = False
    try:
        # the lake listens on the sandbox's 127.0.0.1
        subprocess.run(b.nsenter(net_only=True) + [
            "/usr/bin/python3", LAKE_PY, "start", "--workdir", workdir,
            "--profile", "demo"], check=True, capture_output=True,
            timeout=300)
        started = True
        r = b.run(["dpkg", "-i", deb], check=False, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        with open(os.path.join(workdir, "rucio.cfg")) as f:
            b.write("/etc/ruciofs/rucio.cfg", f.read(), 0o600)
        b.workdir = workdir
        yield b
    finally:
        if started:
            subprocess.run(["/usr/bin/python3", LAKE_PY, "stop",
                            "--workdir", workdir], timeout=60)
        b.stop()


def manifest_file(name):
    with open(os.path.join(os.environ.get("RUCIOFS_LAKE_CACHE") or
                           os.path.join(WORK, "sd"),
                           "lake-demo", "manifest.json")) as f:
        for e in json.load(f):
            if e["scope"] == "cta" and e["name"] == name:
                return e
    raise KeyError(name)


def md5_in_box(b, path):
    return b.run(["md5sum", path], timeout=120).stdout.split()[0]


def mounted(b, path):
    return any(line.split()[1] == path and line.split()[2] == "fuse.ruciofs"
               for line in b.run(["cat", "/proc/mounts"]).stdout.splitlines())


def ruciofs_pids(b):
    r = b.run(["pgrep", "-x", "ruciofs"], check=False)
    return r.stdout.split()


def start(b, unit):
    r = b.run(["systemctl", "start", unit], check=False, timeout=120)
    assert r.returncode == 0, r.stderr + b.run(
        ["journalctl", "-u", unit, "--no-pager"], check=False).stdout


def status(b, mnt):
    return json.loads(b.run(["ruciofs-ctl", "-m", mnt, "status",
                             "--json"]).stdout)


def unit_state(b, unit):
    return b.run(["systemctl", "show", "-P", "ActiveState", unit],
                 check=False).stdout.strip()


def test_service_is_ready_only_once_mounted(box):
    start(box, UNIT)
    # Type=notify: start returns only after READY=1, sent once mounted
    assert mounted(box, "/mnt/lake")
    assert unit_state(box, UNIT) == "active"
    f = manifest_file("calib.dat")
    assert md5_in_box(box, "/mnt/lake/cta/calib.dat") == f["md5"]


def test_stop_unmounts_and_leaves_no_process(box):
    if unit_state(box, UNIT) != "active":
        start(box, UNIT)
    box.run(["systemctl", "stop", UNIT], timeout=120)
    assert unit_state(box, UNIT) == "inactive"
    assert not mounted(box, "/mnt/lake")
    assert ruciofs_pids(box) == []


def test_restart_keeps_the_cache(box):
    start(box, UNIT)
    md5_in_box(box, "/mnt/lake/cta/calib.dat")
    box.run(["systemctl", "restart", UNIT], timeout=120)
    assert mounted(box, "/mnt/lake")
    st = status(box, "/mnt/lake")
    assert st["files"] >= 1 and st["used"] >= 2048, st
    hits = st["hits"]
    f = manifest_file("calib.dat")
    assert md5_in_box(box, "/mnt/lake/cta/calib.dat") == f["md5"]
    st = status(box, "/mnt/lake")
    assert st["hits"] > hits and st["net_bytes"] == 0, st
    box.run(["systemctl", "stop", UNIT], timeout=120)
    assert ruciofs_pids(box) == []


FSTAB_OPTS = ("ro,allow_other,identity=mount,_netdev,nofail,"
              "rucio_config=/etc/ruciofs/rucio.cfg")


def test_fstab_line_becomes_a_network_mount(box):
    box.write("/etc/fstab",
              "ruciofs /mnt/fs fuse.ruciofs %s 0 0\n" % FSTAB_OPTS)
    box.run(["mkdir", "-p", "/mnt/fs"])
    box.run(["systemctl", "daemon-reload"])
    # _netdev: a remote mount, after the network; nofail: wanted, not
    # required, by remote-fs.target (systemd.mount(5))
    show = box.run(["systemctl", "show", "-P", "After", "mnt-fs.mount"]).stdout
    assert "network-online.target" in show and "remote-fs-pre.target" in show
    assert "remote-fs.target" in box.run(
        ["systemctl", "show", "-P", "WantedBy", "mnt-fs.mount"]).stdout
    assert "remote-fs.target" not in box.run(
        ["systemctl", "show", "-P", "RequiredBy", "mnt-fs.mount"]).stdout
    start(box, "mnt-fs.mount")
    assert mounted(box, "/mnt/fs")
    f = manifest_file("README.txt")
    assert md5_in_box(box, "/mnt/fs/cta/README.txt") == f["md5"]
    box.run(["systemctl", "stop", "mnt-fs.mount"], timeout=120)
    wait_for(lambda: ruciofs_pids(box) == [], "the daemon to exit")
    assert not mounted(box, "/mnt/fs")


def autofs_in_kernel():
    with open("/proc/filesystems") as f:
        return any(line.split()[-1] == "autofs" for line in f)


@pytest.mark.skipif(not autofs_in_kernel(),
                    reason="this kernel has no autofs: x-systemd.automount "
                    "cannot be tried here")
def test_fstab_automount(box):
    line = ("ruciofs /mnt/auto fuse.ruciofs %s,x-systemd.automount 0 0\n" %
            FSTAB_OPTS)
    box.write("/etc/fstab", line)
    box.run(["mkdir", "-p", "/mnt/auto"])
    box.run(["systemctl", "daemon-reload"])
    box.run(["systemctl", "start", "mnt-auto.automount"], timeout=60)
    assert ruciofs_pids(box) == []  # nothing mounted until first use
    f = manifest_file("README.txt")
    assert md5_in_box(box, "/mnt/auto/cta/README.txt") == f["md5"]
    assert unit_state(box, "mnt-auto.mount") == "active"
    box.run(["systemctl", "stop", "mnt-auto.automount", "mnt-auto.mount"],
            timeout=120)
    wait_for(lambda: ruciofs_pids(box) == [], "the daemon to exit")
    assert not mounted(box, "/mnt/auto")
