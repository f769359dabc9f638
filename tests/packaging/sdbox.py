"""A systemd to test units against, booted in a sandbox of its own.

The machine's PID 1 is not systemd, so the units are tried under a systemd
started as PID 1 of new mount, pid and network namespaces, on an overlay of
the machine's root whose writes land in a tmpfs. Why each fence:
- overlay root: systemd's boot units clean /tmp and write /etc, /var; here
  they write a throw-away upper layer, never the machine's files;
- network namespace: nothing it starts can touch the machine's interfaces;
  its 127.0.0.1 is its own, and the test's servers are started inside it;
- pid namespace: killing its PID 1 ends every process it started;
- hardware and boot units are masked, and $container tells systemd it is in
  one, so it skips what a container must not do.
Paths listed in `binds` are the machine's own, bound in read-write (the
test's work directory), so the test and the sandbox see the same files.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time

MASKED = [
    "systemd-udevd.service", "systemd-udevd-control.socket",
    "systemd-udevd-kernel.socket", "systemd-udev-trigger.service",
    "systemd-udev-settle.service", "systemd-tmpfiles-setup.service",
    "systemd-tmpfiles-setup-dev.service", "systemd-tmpfiles-clean.timer",
    "systemd-tmpfiles-clean.service", "systemd-modules-load.service",
    "systemd-sysctl.service", "systemd-remount-fs.service",
    "systemd-random-seed.service", "systemd-timesyncd.service",
    "systemd-networkd.service", "systemd-resolved.service",
    "systemd-logind.service", "getty.target", "console-getty.service",
    "networking.service", "ifupdown-pre.service", "ifupdown-wait-online.service",
    "systemd-networkd-wait-online.service", "NetworkManager.service",
    "nginx.service", "cron.service", "ssh.service", "e2scrub_reap.service",
    "systemd-binfmt.service", "systemd-firstboot.service",
    "systemd-machine-id-commit.service", "systemd-journal-flush.service",
    "swap.target", "cryptsetup.target", "apt-daily.timer",
    "apt-daily-upgrade.timer", "dpkg-db-backup.timer", "fstrim.timer",
    "systemd-pstore.service", "systemd-hwdb-update.service",
]

TARGET = """[Unit]
Description=ruciofs test sandbox
DefaultDependencies=no
"""

INIT = r"""
set -eu
W=$1; shift
mount --make-rprivate /
mount -t tmpfs -o size=512m,mode=0700 rfs-sdbox "$W"
mkdir "$W/upper" "$W/work" "$W/root"
mount -t overlay rfs-sdbox -o "lowerdir=/,upperdir=$W/upper,workdir=$W/work" "$W/root"
R=$W/root
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
mount --rbind /dev "$R/dev"
mount -t tmpfs -o mode=0755 tmpfs "$R/run"
mount -t tmpfs -o mode=1777 tmpfs "$R/tmp"
for b in "$@"; do
	mkdir -p "$R$b"
	mount --bind "$b" "$R$b"
done
ip link set lo up
# the sandbox's own configuration, in the upper layer only
sd=$R/etc/systemd/system
mkdir -p "$sd"
printf '%s' "$RFS_SDBOX_TARGET" >"$sd/rfs-sandbox.target"
for u in $RFS_SDBOX_MASK; do ln -sf /dev/null "$sd/$u"; done
: >"$R/etc/fstab"
cd "$R"
mkdir -p oldroot
pivot_root . oldroot
umount -l /oldroot
rmdir /oldroot
exec env -i container=rfs-sdbox PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	/lib/systemd/systemd --system --unit=rfs-sandbox.target \
	--log-target=console --show-status=no
"""


class Sandbox:
    def __init__(self, binds=(), log=None):
        self.dir = tempfile.mkdtemp(prefix="rfs-sdbox-", dir="/var/tmp")
        self.log = log or os.path.join(self.dir + ".log")
        self.proc = None
        self.pid = None  # systemd's pid, seen from the machine
        self.binds = [os.path.abspath(b) for b in binds]

    def start(self, timeout=60):
        self.cgroups_before = cgroup_dirs()
        env = dict(os.environ, RFS_SDBOX_TARGET=TARGET,
                   RFS_SDBOX_MASK=" ".join(MASKED))
        self._logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--pid", "--net", "--fork", "--",
             "/bin/bash", "-c", INIT, "sdbox", self.dir, *self.binds],
            stdin=subprocess.DEVNULL, stdout=self._logf,
            stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pid = self._init_pid()
            if self.pid and self.run(["systemctl", "is-system-running"],
                                     check=False).stdout.strip() in (
                                         "running", "degraded"):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        text = self.log_text()
        self.stop()
        raise RuntimeError("systemd sandbox did not come up:\n" + text)

    def _init_pid(self):
        """systemd: the unshare child's child in the new pid namespace."""
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                kids = f.read().split()
        except OSError:
            return None
        for k in kids:
            try:
                with open(f"/proc/{k}/comm") as f:
                    if f.read().strip() == "systemd":
                        return int(k)
            except OSError:
                pass
        return None

    def nsenter(self, net_only=False):
        if net_only:
            return ["nsenter", "-t", str(self.pid), "-n"]
        return ["nsenter", "-t", str(self.pid), "-m", "-p", "-n", "-r", "-w"]

    def run(self, argv, check=True, timeout=60, **kw):
        return subprocess.run(self.nsenter() + list(argv), check=check,
                              timeout=timeout, capture_output=True,
                              text=True, **kw)

    def write(self, path, text, mode=0o644):
        """A file in the sandbox's own layer (the machine never sees it)."""
        self.run(["/bin/sh", "-c",
                  f'mkdir -p "$(dirname "$1")" && cat >"$1" && chmod {mode:o} "$1"',
                  "sh", path], input=text)

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-6000:]
        except OSError:
            return ""

    def stop(self):
        """SIGKILL to PID 1 of the namespace ends every process in it; the
        mounts go with the namespace."""
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
            self._logf.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        try:
            os.unlink(self.log)
        except OSError:
            pass
        self.pid = None
        # the sandbox's systemd took the hierarchies' roots for its own
        for d in sorted(cgroup_dirs() - getattr(self, "cgroups_before", set()),
                        key=len, reverse=True):
            try:
                os.rmdir(d)
            except OSError:
                pass


def cgroup_dirs():
    out = set()
    for top, dirs, _ in os.walk("/sys/fs/cgroup"):
        for d in dirs:
            out.add(os.path.join(top, d))
    return out
