"""The daemon under a service manager and mount(8): readiness (sd_notify's
READY=1 only once the mount exists), SIGTERM (systemctl stop) unmounting
and exiting, and the argv mount.fuse3 passes for an fstab line. No systemd
here: the test owns the notify socket and plays the manager."""
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import RUCIOFS, TOP_BUILD, is_mounted


def notify_socket(tmp_path, abstract=False):
    """A manager's datagram socket; returns (socket, $NOTIFY_SOCKET)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if abstract:
        name = "rfs-test-%d-%d" % (os.getpid(), time.monotonic_ns())
        s.bind("\0" + name)
        env = "@" + name
    else:
        env = str(tmp_path / "notify")
        s.bind(env)
    return s, env


def messages(sock, until, timeout=20):
    """Datagrams until one contains @until (or the deadline)."""
    got = []
    end = time.time() + timeout
    while time.time() < end:
        sock.settimeout(max(0.05, end - time.time()))
        try:
            msg = sock.recv(4096).decode()
        except socket.timeout:
            break
        got.append((msg, time.time()))
        if until in msg.split("\n"):
            break
    return got


def pids_of(exe):
    """PIDs of processes running @exe (by /proc/PID/exe)."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            if os.readlink("/proc/%s/exe" % p) == os.path.realpath(exe):
                out.append(int(p))
        except OSError:
            pass
    return out


@pytest.mark.parametrize("abstract", [False, True],
                         ids=["path", "abstract"])
def test_ready_only_once_mounted(lake41, mount_factory, tmp_path, abstract):
    sock, name = notify_socket(tmp_path, abstract)
    with sock:
        m = mount_factory(lake41, env={"NOTIFY_SOCKET": name}, wait=False)
        assert not is_mounted(m.dir)
        got = []
        while True:
            batch = messages(sock, "READY=1")
            assert batch, "no READY=1 within 20 s:\n" + m.logtext()
            msg = batch[-1][0]
            got += batch
            if "READY=1" in msg.split("\n"):
                break
        # the manager reads READY=1 only once the mount is in the table
        assert is_mounted(m.dir), got
        assert [x for x, _ in got] == ["READY=1\nSTATUS=mounted"], got
        assert os.listdir(m.dir)

        # systemctl stop: SIGTERM; the daemon says so, unmounts and exits
        m.proc.send_signal(signal.SIGTERM)
        assert m.proc.wait(timeout=10) == 0, m.logtext()
        assert not is_mounted(m.dir)
        assert [x for x, _ in messages(sock, "STOPPING=1", 2)] == \
            ["STOPPING=1"]


def test_no_ready_when_the_mount_fails(lake41, mount_factory, tmp_path):
    sock, name = notify_socket(tmp_path)
    with sock:
        # a catalogue nobody answers at, and no cache to start offline from
        m = mount_factory(lake41, "connect_timeout=1",
                          env={"NOTIFY_SOCKET": name}, wait=False,
                          cfg_kw={"rucio_host": "https://127.0.0.1:1",
                                  "auth_host": "https://127.0.0.1:1"})
        assert m.proc.wait(timeout=30) != 0
        assert not is_mounted(m.dir)
        sock.settimeout(0.2)
        with pytest.raises(socket.timeout):
            sock.recv(4096)


def test_sigterm_with_a_request_waiting(lake41, mount_factory):
    """systemctl stop while a request waits on a hanging catalogue: the
    daemon goes once that request has timed out (io_timeout here; no
    transfer is cancelled early), cleanly, well within the unit's
    TimeoutStopSec."""
    m = mount_factory(lake41, "io_timeout=4", "connect_timeout=4")
    scopes = sorted(os.listdir(m.dir))
    lake41.set_fault("/dids/", "hang")
    errs = []

    def lister():
        try:
            os.listdir(m.path(scopes[0]))
        except OSError as e:
            errs.append(e.errno)

    try:
        t = threading.Thread(target=lister, daemon=True)
        t.start()
        time.sleep(0.5)   # let the listing reach the hanging catalogue
        t0 = time.time()
        m.proc.send_signal(signal.SIGTERM)
        rc = m.proc.wait(timeout=25)
        took = time.time() - t0
    finally:
        lake41.clear_faults()
    t.join(5)
    assert not is_mounted(m.dir)
    assert rc == 0, m.logtext()
    assert took < 4 + 5, "SIGTERM took %.1f s:\n%s" % (took, m.logtext())


def test_mount_fuse3_argv(lake41, tmp_path):
    """An fstab line through libfuse's mount.fuse3, as mount(8) runs it
    for type fuse.ruciofs: "ruciofs LABEL MOUNTPOINT -o OPTS" with the
    fstab-only options (_netdev, nofail) and the dev,suid it adds."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cfg = lake41.write_rucio_cfg(str(tmp_path / "rucio.cfg"))
    env = dict(os.environ, PATH=TOP_BUILD + ":" + os.environ["PATH"])
    assert os.path.basename(RUCIOFS) == "ruciofs"
    r = subprocess.run(
        ["/sbin/mount.fuse3", "mylake", str(mnt), "-t", "fuse.ruciofs",
         "-o", "ro,allow_other,identity=mount,_netdev,nofail,rucio_config=%s,"
         "cache_dir=%s" % (cfg, tmp_path / "cache")],
        env=env, capture_output=True, text=True, timeout=60)
    try:
        assert r.returncode == 0, r.stderr
        with open("/proc/self/mounts") as f:
            line = [x.split() for x in f if x.split()[1] == str(mnt)]
        # the label is the mount's source, so "mount -a" knows it mounted
        assert line and line[0][0] == "mylake", line
        assert line[0][2] == "fuse.ruciofs"
        opts = line[0][3].split(",")
        assert "ro" in opts and "nosuid" in opts and "nodev" in opts, opts
        assert "allow_other" in opts
        assert os.listdir(str(mnt))
    finally:
        pids = pids_of(RUCIOFS)
        subprocess.run(["umount", str(mnt)], stderr=subprocess.DEVNULL)
        end = time.time() + 10
        while time.time() < end and \
                any(os.path.exists("/proc/%d" % p) for p in pids):
            time.sleep(0.05)
        if is_mounted(str(mnt)):
            subprocess.run(["umount", "-l", str(mnt)])
    assert not is_mounted(str(mnt))
    assert pids and not [p for p in pids if os.path.exists("/proc/%d" % p)]
