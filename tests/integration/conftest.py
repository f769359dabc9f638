"""Integration fixtures: a real lake (emulator + nginx + xrootd) and real
ruciofs mounts. Every process is started on 127.0.0.1 with random ports and
killed by PID afterwards; every mount is unmounted."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRC = os.environ.get("top_srcdir") or os.path.dirname(os.path.dirname(HERE))
TOP_BUILD = os.environ.get("top_builddir") or os.path.join(TOP_SRC, "build")
sys.path.insert(0, os.path.join(TOP_SRC, "tests", "servers"))

import lake as lakemod  # noqa: E402
import tokinfra  # noqa: E402
from localusers import LocalUsers  # noqa: E402

RUCIOFS = os.environ.get("RUCIOFS_BIN") or os.path.join(TOP_BUILD, "ruciofs")
WORK = os.environ.get("RUCIOFS_TEST_WORK") or os.path.join(
    tempfile.gettempdir(), "ruciofs-it")


def catalogue_requests(lake, route_part):
    """Requests the catalogue answered on routes containing
    @route_part since the last reset_counts()."""
    c = lake.catalogue_counts()["by_route"]
    return sum(v for k, v in c.items() if route_part in k)


def nginx_bytes(lake, f):
    """Bytes of file @f nginx has sent, from its access log. With a mount
    limited to NGINX_DISK (rse_expression), that is every byte the daemon
    fetched, however it grouped blocks into requests."""
    total = 0
    with open(os.path.join(lake.workdir, "nginx", "access.log")) as fh:
        for line in fh:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if f["pfn_path"] in (e.get("uri") or "") and \
                    e.get("status") in (200, 206):
                total += int(e.get("bytes") or 0)
    return total


def pytest_configure(config):
    if not os.path.exists("/dev/fuse"):
        pytest.exit("no /dev/fuse: integration tests need FUSE", 77)
    if not os.path.exists(RUCIOFS):
        pytest.exit("ruciofs binary not found at %s" % RUCIOFS, 2)


def new_lake(name, flavour="41", **kw):
    """A test-profile lake working in WORK/@name, for `with` (which starts
    and stops it); @kw as for lake.Lake (tls=False)."""
    return lakemod.Lake(os.path.join(WORK, name), profile="test",
                        flavour=flavour, **kw)


@pytest.fixture(scope="session", params=["41", "1.31"])
def lake(request):
    """One lake per Rucio flavour, shared by the tests of a session."""
    with new_lake("lake-" + request.param, request.param) as lk:
        yield lk


@pytest.fixture(scope="session")
def lake41():
    """A 41-flavour lake for tests that do not depend on the flavour."""
    with new_lake("lake-41-solo") as lk:
        yield lk


@pytest.fixture(scope="module")
def store(lake41):
    """lake41's fault store (FAULT_DISK), started once for the lake; a
    module's faults are cleared when it ends."""
    s = lake41.faultstores.get(lakemod.FAULT_RSE) or \
        lake41.start_faultstore(lakemod.FAULT_RSE)
    yield s
    s.clear_faults()


@pytest.fixture(scope="session")
def toklake():
    """A 41-flavour lake for per-caller tests (tokinfra.TokenLake): .lake,
    .issuer (HTTPS discovery + JWKS, RS256 and ES256), .store (xrootd +
    scitokens, RSE XRD_TOKEN, the only replica of every XRD_DISK file),
    .token(sub, read=[scope paths], groups=[...]); the emulator accepts
    the issuer's tokens for SUB=alice and SUB=bob."""
    with new_lake("lake-tok") as lk:
        yield tokinfra.TokenLake(lk)


@pytest.fixture
def local_users():
    """localusers.LocalUsers: .add(groups=()) -> LocalUser (write_token,
    run, popen), .add_group(); all removed after the test, even on
    failure."""
    with LocalUsers() as users:
        yield users


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == path for line in f)


class Mount:
    """A running ruciofs -f process and its mountpoint."""

    def __init__(self, lake, tmp, opts=(), cfg_kw=None, env=None,
                 wait=True, args=(), prefix=()):
        """@opts: each one "-o" argument; @args: raw arguments put before
        the mountpoint; @prefix: a command that execs ruciofs (setpriv)."""
        self.lake = lake
        self.dir = os.path.join(tmp, "mnt")
        os.makedirs(self.dir, exist_ok=True)
        self.cfg = os.path.join(tmp, "rucio.cfg")
        lake.write_rucio_cfg(self.cfg, **(cfg_kw or {}))
        self.log_path = os.path.join(tmp, "ruciofs.log")
        self.log = open(self.log_path, "w")
        # a cache of its own: tests must not see each other's blocks
        self.cache = os.path.join(tmp, "cache")
        argv = list(prefix) + [RUCIOFS, "-f", "-o", "rucio_config=" +
                               self.cfg, "-o", "cache_dir=" + self.cache]
        for o in opts:
            argv += ["-o", o]
        argv += list(args) + [self.dir]
        e = dict(os.environ)
        e.pop("BEARER_TOKEN", None)
        e.pop("BEARER_TOKEN_FILE", None)
        e["XDG_RUNTIME_DIR"] = tmp
        e.update(env or {})
        self.proc = subprocess.Popen(argv, stdout=self.log,
                                     stderr=subprocess.STDOUT, env=e)
        if wait:
            self.wait_mounted()

    def wait_mounted(self, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            if is_mounted(self.dir):
                return
            if self.proc.poll() is not None:
                raise AssertionError("ruciofs exited with %s:\n%s" %
                                     (self.proc.returncode, self.logtext()))
            time.sleep(0.05)
        raise AssertionError("mount did not appear:\n" + self.logtext())

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def logtext(self):
        self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None and is_mounted(self.dir)

    def unmount(self):
        if is_mounted(self.dir):
            subprocess.run(["fusermount3", "-u", self.dir],
                           stderr=subprocess.DEVNULL)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if is_mounted(self.dir):
            subprocess.run(["fusermount3", "-u", "-z", self.dir],
                           stderr=subprocess.DEVNULL)
        self.log.close()


@pytest.fixture
def mount_factory(tmp_path):
    mounts = []

    def make(lake, *opts, **kw):
        sub = tmp_path / ("m%d" % len(mounts))
        sub.mkdir(exist_ok=True)   # a test may prepare it
        m = Mount(lake, str(sub), opts, **kw)
        mounts.append(m)
        return m

    yield make
    # every mount goes, even when an earlier one's checks fail
    for m in mounts:
        m.unmount()
    for m in mounts:
        with open(m.log_path, errors="replace") as f:
            text = f.read()
        print("---- ruciofs log of %s ----\n%s" % (m.dir, text))
        # the daemon must not have crashed under any test
        assert "Sanitizer" not in text, text
        assert "runtime error" not in text, text


@pytest.fixture
def mnt(lake, mount_factory):
    """A default mount of the flavour-parametrized lake."""
    return mount_factory(lake)


@pytest.fixture(params=["https", "root"])
def tmnt(request, lake, mount_factory):
    """A mount of the flavour-parametrized lake reading over one transport:
    "https" (the default schemes) or "root" (-o schemes=root: only
    XRD_DISK's root:// PFNs, through the xrootd client)."""
    if request.param == "https":
        return mount_factory(lake)
    return mount_factory(lake, "schemes=root")
