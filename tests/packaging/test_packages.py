"""The packages packaging/setup.sh built (packaging/out/): what they hold,
and the .deb installed on this machine: mounting the test lake from the
installed binaries through an fstab line and mount(8), the pages, the
unit, then removal. Root only; run after `packaging/setup.sh packages`.
Servers on 127.0.0.1 with random ports; everything started is stopped
by PID, every mount unmounted, the package removed even on failure."""
import glob
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.environ.get("top_srcdir") or os.path.dirname(os.path.dirname(HERE))
OUT = os.environ.get("RUCIOFS_PACKAGES") or os.path.join(TOP, "packaging",
                                                         "out")
WORK = os.path.join(os.environ.get("RUCIOFS_TEST_WORK") or
                    os.path.join(tempfile.gettempdir(), "ruciofs-it"),
                    "packages")
sys.path.insert(0, os.path.join(TOP, "tests", "servers"))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

import lake as lakemod  # noqa: E402
from rucio_client import replicated  # noqa: E402

if os.geteuid() != 0 or not os.path.exists("/dev/fuse"):
    pytest.skip("installing a package and mounting need root and FUSE",
                allow_module_level=True)

SBIN = "/usr/sbin/ruciofs"
# what a package must hold (both formats; man pages compressed or not)
FILES = ["/usr/sbin/ruciofs", "/usr/bin/ruciofs-ctl",
         "/usr/share/man/man8/ruciofs.8", "/usr/share/man/man1/ruciofs-ctl.1",
         "/usr/share/man/man8/mount.fuse.ruciofs.8",
         "/etc/ruciofs/rucio.cfg.example"]
DEB_UNIT = "/lib/systemd/system/ruciofs@.service"
DEB_HELPER = "/sbin/mount.fuse.ruciofs"


def run(*argv, check=True, **kw):
    r = subprocess.run(list(argv), capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError("%s: exit %d\n%s%s" % (
            " ".join(argv), r.returncode, r.stdout, r.stderr))
    return r


def one(pattern):
    found = sorted(glob.glob(os.path.join(OUT, pattern)))
    assert len(found) == 1, "want one %s in %s, have %s" % (
        pattern, OUT, found)
    return found[0]


def has(listing, path):
    return any(p == path or p.startswith(path + ".") for p in listing)


def deb_paths(deb):
    out = []
    for line in run("dpkg-deb", "-c", deb).stdout.splitlines():
        # "lrwxrwxrwx root/root 0 date time ./sbin/x -> y"
        name = line.split(None, 5)[5].split(" -> ")[0]
        out.append(name[1:].rstrip("/") if name.startswith("./") else name)
    return out


def installed():
    r = run("dpkg-query", "-W", "-f=${Status}", "ruciofs", check=False)
    return "installed" in r.stdout and "not-installed" not in r.stdout


def remove_package():
    if installed() or run("dpkg-query", "-W", "ruciofs",
                          check=False).returncode == 0:
        run("dpkg", "--purge", "ruciofs", check=False)


def daemons():
    """PIDs running the installed daemon (by /proc/PID/exe)."""
    pids = []
    for p in os.listdir("/proc"):
        try:
            exe = os.readlink("/proc/%s/exe" % p)
        except OSError:
            continue
        if exe in (SBIN, SBIN + " (deleted)"):
            pids.append(int(p))
    return pids


def mounted(path):
    with open("/proc/self/mounts") as f:
        return [x.split() for x in f if x.split()[1] == path]


def unmount_all(path):
    for _ in range(4):
        if not mounted(path):
            return
        run("umount", path, check=False)
        if mounted(path):
            run("umount", "-l", path, check=False)


def wait_gone(pids, timeout=15):
    end = time.time() + timeout
    while time.time() < end:
        left = [p for p in pids if os.path.exists("/proc/%d" % p)]
        if not left:
            return []
        time.sleep(0.05)
    return left


# ---- the package files ----

def test_deb_lists_the_files():
    paths = deb_paths(one("ruciofs_*.deb"))
    for f in FILES + [DEB_UNIT, DEB_HELPER]:
        assert has(paths, f), (f, paths)
    assert has(paths, "/usr/share/doc/ruciofs/copyright")


def test_deb_depends():
    deb = one("ruciofs_*.deb")
    dep = run("dpkg-deb", "-f", deb, "Depends").stdout.strip()
    names = {d.strip().split()[0] for d in dep.split(",")}
    # from the shared libraries (dpkg-shlibdeps), and fuse3 for
    # fusermount3 and mount.fuse3
    for want in ("fuse3", "libc6", "libfuse3-3", "libcurl4", "liblmdb0",
                 "libjansson4", "libssl3"):
        assert want in names, dep


def test_rpm_lists_the_files():
    rpm = one("ruciofs-[0-9]*.rpm")
    paths = run("rpm", "-qlp", rpm).stdout.split()
    for f in FILES + ["/usr/lib/systemd/system/ruciofs@.service",
                      "/usr/sbin/mount.fuse.ruciofs"]:
        assert has(paths, f), (f, paths)
    req = run("rpm", "-qp", "--requires", rpm).stdout.split("\n")
    req = {r.split()[0] for r in req if r.strip()}
    for want in ("fuse3", "libfuse3.so.3()(64bit)", "libcurl.so.4()(64bit)",
                 "liblmdb.so.0()(64bit)", "libjansson.so.4()(64bit)",
                 "libssl.so.3()(64bit)"):
        assert want in req, sorted(req)
    cfg = run("rpm", "-qp", "--configfiles", rpm).stdout.split()
    assert cfg == ["/etc/ruciofs/rucio.cfg.example"], cfg


# ---- the .deb installed ----

@pytest.fixture(scope="module")
def pkg():
    """The .deb installed (a leftover of an earlier run purged first);
    purged afterwards whatever happened."""
    deb = one("ruciofs_*.deb")
    remove_package()
    r = run("apt-get", "install", "-y", "-q", "--no-install-recommends",
            os.path.abspath(deb), check=False,
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    assert r.returncode == 0, r.stdout + r.stderr
    yield deb
    remove_package()


@pytest.fixture(scope="module")
def lake():
    os.makedirs(WORK, exist_ok=True)
    # the demo lake: what `packaging/setup.sh demo` serves
    with lakemod.Lake(os.path.join(WORK, "lake"), profile="demo") as lk:
        yield lk


def test_installed_files(pkg):
    for f in FILES + [DEB_UNIT]:
        assert has(glob.glob(f + "*"), f), f
    assert os.readlink(DEB_HELPER) == "mount.fuse3"
    assert os.path.exists(os.path.join("/sbin", "mount.fuse3"))
    assert run(SBIN, "--version").stdout.startswith("ruciofs ")
    # the installed daemon reads the system's config from /etc/ruciofs
    assert "/etc/ruciofs/rucio.cfg" in run(SBIN, "--help").stdout
    conf = run("dpkg-query", "-W", "-f=${Conffiles}", "ruciofs").stdout
    assert "/etc/ruciofs/rucio.cfg.example" in conf


def test_unit_verifies(pkg, tmp_path):
    """systemd-analyze verify (no running systemd needed) on an instance
    of the installed template: no complaint about our unit."""
    r = run("systemd-analyze", "verify", "--man=no",
            "ruciofs@lake.service", check=False)
    ours = [x for x in (r.stdout + r.stderr).splitlines()
            if "ruciofs" in x]
    assert r.returncode == 0 and not ours, r.stdout + r.stderr
    unit = open(DEB_UNIT).read()
    assert "ExecStart=/usr/sbin/ruciofs -f " in unit
    assert "rucio_config=/etc/ruciofs/rucio.cfg" in unit
    assert "Type=notify" in unit


def test_man_pages(pkg):
    for page in (glob.glob("/usr/share/man/man8/ruciofs.8*") +
                 glob.glob("/usr/share/man/man8/mount.fuse.ruciofs.8*") +
                 glob.glob("/usr/share/man/man1/ruciofs-ctl.1*")):
        r = run("man", "--warnings", "-l", page, check=False,
                env=dict(os.environ, MANWIDTH="80", MAN_KEEP_STDERR="1"))
        assert r.returncode == 0 and r.stdout, page
        assert r.stderr == "", (page, r.stderr)
        r = run("mandoc", "-T", "lint", "-W", "warning", page, check=False)
        assert r.returncode == 0 and r.stdout == "", (page, r.stdout)
        r = run("lexgrog", page, check=False)
        assert r.returncode == 0 and "parse failed" not in r.stdout, \
            r.stdout


def pick_file(lake):
    """A small file with a replica on both RSEs, and its mount path."""
    files = sorted((f for f in replicated(lake) if 0 < f["size"] < 4 << 20),
                   key=lambda f: f["size"])
    return files[-1]


def md5_of(path):
    h = hashlib.md5()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


@pytest.mark.parametrize("how", ["fstab", "mount-t"])
def test_mount_from_the_installed_package(pkg, lake, tmp_path, how):
    """`mount MOUNTPOINT` with an fstab line (mount -T: a fstab of the
    test's own, /etc/fstab untouched), or `mount -t fuse.ruciofs`: the
    installed /usr/sbin/ruciofs, through mount.fuse3, reads the lake."""
    mnt = str(tmp_path / "lake")
    os.mkdir(mnt)
    cfg = lake.write_rucio_cfg(str(tmp_path / "rucio.cfg"))
    opts = ("ro,allow_other,identity=mount,_netdev,nofail,"
            "rucio_config=%s,cache_dir=%s" % (cfg, tmp_path / "cache"))
    fstab = tmp_path / "fstab"
    fstab.write_text(
        "# a test's fstab\n"
        "mylake %s fuse.ruciofs %s,x-systemd.automount,"
        "x-systemd.mount-timeout=30,comment=test 0 0\n" % (mnt, opts))
    before = set(daemons())
    f = pick_file(lake)
    try:
        if how == "fstab":
            run("mount", "-T", str(fstab), mnt, timeout=60)
        else:
            run("mount", "-t", "fuse.ruciofs", "mylake", mnt, "-o", opts,
                timeout=60)
        m = mounted(mnt)
        assert len(m) == 1, m
        assert m[0][0] == "mylake" and m[0][2] == "fuse.ruciofs", m
        assert "nosuid" in m[0][3].split(",") and \
            "nodev" in m[0][3].split(","), m
        new = set(daemons()) - before
        assert len(new) == 1, new
        assert md5_of(os.path.join(mnt, f["paths"][0])) == f["md5"]
        # the installed ruciofs-ctl talks to the installed daemon
        text = run("/usr/bin/ruciofs-ctl", "-m", mnt, "metrics").stdout
        assert re.search(r'^ruciofs_read_bytes_total\{source="endpoint"'
                         r'.*\} [1-9]', text, re.M), text[:2000]
        if how == "fstab":
            # the source is fstab's label: mount -a knows it is mounted
            run("mount", "-a", "-T", str(fstab), timeout=60)
            assert len(mounted(mnt)) == 1, mounted(mnt)
        run("umount", mnt)
        assert not mounted(mnt)
        assert wait_gone(new) == [], "daemon left after umount"
    finally:
        unmount_all(mnt)
        wait_gone(set(daemons()) - before, 5)


def test_check_from_the_installed_package(pkg, lake, tmp_path):
    """The installed `ruciofs --check` walks every step against the
    demo lake and passes."""
    cfg = lake.write_rucio_cfg(str(tmp_path / "rucio.cfg"))
    r = run(SBIN, "--check", "-o", "rucio_config=%s,cache_dir=%s" %
            (cfg, tmp_path / "cache"), check=False, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    steps = [x.split("]")[1].split(":")[0].strip()
             for x in r.stdout.splitlines() if x.startswith("[ ok ]")]
    for step in ("configuration", "catalogue", "authentication",
                 "replicas"):
        assert step in steps, r.stdout
    assert sum(x.startswith("endpoint") for x in steps) >= 2, r.stdout
    assert "[FAIL]" not in r.stdout


def test_remove(pkg):
    run("dpkg", "-r", "ruciofs")
    assert not os.path.exists(SBIN)
    assert not os.path.lexists(DEB_HELPER)
    assert not os.path.exists(DEB_UNIT)
    assert not glob.glob("/usr/share/man/man8/ruciofs.8*")
    assert not glob.glob("/usr/share/man/man8/mount.fuse.ruciofs.8*")
    run("dpkg", "--purge", "ruciofs")
    assert not os.path.exists("/etc/ruciofs/rucio.cfg.example")
    assert not installed()
