#!/usr/bin/env python3
"""Peer tools for the ruciofs benchmark: mount the same files that ruciofs
reads through other Debian-packaged network filesystems, on 127.0.0.1 only.

Standard library only. Run as root (mounts, davfs2, page-cache drops).

API
---
PeerNginx(root_dir, workdir=None)  one private nginx serving root_dir at
                               "/" (its files in a temp dir, or under
                               workdir if given)
    .start() / .stop()         stop = SIGTERM by PID, then SIGKILL
    .url                       "http://127.0.0.1:PORT/"
    .dav                       True when PROPFIND works (dav_ext loaded)
    context manager            with PeerNginx(d) as ng: ...

PeerMount(kind, url, workdir, cache_dir=None, timeout=60,
          readahead_kb=1024, extra_args=(), davfs2_conf=None)
    kind in KINDS = ("rclone", "httpdirfs", "davfs2")
    .mount(reuse_cache=False)  waits until mounted and listable; raises
                               PeerError with the tool's log tail if not
    .dir                       the mountpoint
    .cache_dir                 the tool's on-disk cache (None before mount)
    .umount(timeout=30)        unmount, wait for / kill the process by PID,
                               remove the mountpoint; idempotent
    .pid, .log                 the serving process, the tool's output file
    .drop_cache()              delete the on-disk cache (unmounted only)
    context manager            with PeerMount(...) as m: m.dir ...

    cache_dir=None gives every mount() a fresh private cache directory
    under workdir. Passing a cache_dir (e.g. a previous mount's
    .cache_dir), or mount(reuse_cache=True) on the same object, reuses it:
    the "warm after remount" case. The mountpoint is derived from the
    cache directory's name, so a remount on a reused cache (in the same
    workdir) lands on the same path (davfs2 names its cache subdirectory after URL+mountpoint,
    so it could not find its cache on another path).

available(kind)                whether the tool (and what it needs) is here
drop_page_cache()              sync; echo 3 > /proc/sys/vm/drop_caches
leftovers()                    processes started here still alive, and
                               mounts made here still mounted

CLI: python3 bench/peers.py selftest [--kinds rclone,davfs2] [--big-mb 200]
     [--small 1000] [--workdir DIR] [--readahead-kb 1024] [--repeat N]
     [--keep]   (exit 0 only if every peer passed and nothing is left)

Options chosen, and why
-----------------------
All peers: read-only; stdin from /dev/null; proxies unset in their
environment; config and caches private to the workdir. After mounting,
the mount's bdi read_ahead_kb is raised to 1024 (readahead_kb, None to
leave the kernel's 128 KiB): ruciofs does the same for itself as root
(fuse/main.c raise_readahead), so every FUSE client gets the same kernel
readahead window for sequential reads.

nginx: one process (daemon off; master_process off), sendfile on,
tcp_nopush on, keepalive (65 s, 100000 requests a connection so no client
is forced to reconnect), autoindex on (rclone and httpdirfs parse its
HTML), access_log off, dav_ext_methods PROPFIND OPTIONS when
/usr/lib/nginx/modules/ngx_http_dav_ext_module.so exists (Debian package
libnginx-mod-http-dav-ext; davfs2 needs it). Temp paths, pid and error
log in its own prefix; nothing under /etc/nginx is read.

rclone (1.60) mount :http: --http-url URL --vfs-cache-mode full
    --cache-dir DIR --read-only --config EMPTYFILE
  --buffer-size 32M            in-memory read-ahead per open file (default
                               16M); a bit more keeps the HTTP stream ahead
                               of a sequential reader
  --vfs-read-ahead 256M        with cache mode full, read this far ahead on
                               disk beyond --buffer-size, so a sequential
                               reader finds the data already downloaded
  --vfs-read-chunk-size 64M    first ranged GET 64 MiB, doubling ...
  --vfs-read-chunk-size-limit 1G  ... up to 1 GiB: few HTTP requests on
                               big files, small first request on small ones
  --max-read-ahead 1M          FUSE max_readahead, matches the bdi window
  --vfs-cache-max-age 24h      keep cached data across long benchmark runs
                               (default 1h)
  --dir-cache-time 1h          listings stay cached for the whole run
  HEAD requests are kept (no --http-no-head): without them rclone has no
  file sizes. Listing a directory therefore costs one HEAD per file
  (in parallel, --checkers 8 by default); httpdirfs does the same, davfs2
  lists with one PROPFIND.

httpdirfs (1.2.5) -f --cache --cache-location DIR --no-range-check URL MNT
  --no-range-check             1.2.5 exits ("This web server does not
                               support HTTP range requests") unless the 206
                               reply itself carries "Accept-Ranges: bytes";
                               nginx sends that header only on 200 replies
                               (its 206 has Content-Range). nginx does serve
                               ranges; the check is what is wrong
  Defaults otherwise: 8 MiB download segments (--dl-seg-size),
  10 connections (--max-conns). Its cache fetches one 8 MiB segment at a
  time, on demand, without read-ahead, which bounds its cold rate (a
  larger --dl-seg-size, e.g. 64, roughly doubles it; not used, defaults
  asked for). It is a libfuse2 program, so the kernel sends it reads of at
  most 128 KiB whatever the readahead window.

davfs2 (1.6.1) mount.davfs -o ro,conf=PRIVATE_CONF URL MNT, conf:
  ask_auth 0, use_locks 0      anonymous, never prompts; nginx has no LOCK
  cache_dir DIR                private cache, group davfs2 and mode 0775
                               (mount.davfs refuses it otherwise; the daemon
                               runs as user davfs2, so the workdir gets
                               o+x and its parents must allow traversal)
  cache_size 16384             MiB. The default 50 MiB makes davfs2 evict
                               a closed 200 MB file at once, so a remount
                               could never find it: a warm run would be a
                               cold one
  buf_size 1024                KiB of FUSE message buffer, i.e. max_read
                               1 MiB like the readahead window. Needed, not
                               just faster: with the default 16 (and with
                               32) every readdir on this kernel (6.x) fails
                               with EINVAL, so the mount cannot even be
                               listed; 64 and up work
  Everything else default. davfs2 downloads a whole file into its cache on
  open() (one plain GET, whole file), then serves reads from that local
  file; after a remount on the same cache it revalidates by PROPFIND
  (size, date) and sends no GET at all. Its root shows a "lost+found"
  (its backup_dir) that the server does not have.
  mount.davfs daemonizes; its PID is found by its command line (the
  mountpoint) with /var/run/mount.davfs/*.pid as a fallback, so it can be
  waited for and killed. umount goes through umount.davfs, which waits
  for the daemon to write its cache index: that index is what makes the
  warm remount find its files.

Unmounting: fusermount3 -u / fusermount -u / umount (umount.davfs for
davfs2), retried while busy for up to umount(timeout=30) s, then a lazy
"umount -l -i"; then the process is waited for (it exits by itself after a
clean unmount), else SIGTERM, then SIGKILL, by PID. A module-level atexit
hook unmounts and stops whatever is still live if the caller forgot.
"""
import argparse
import atexit
import hashlib
import os
import pwd
import grp
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

KINDS = ("rclone", "httpdirfs", "davfs2")
TOOLS = {"rclone": "rclone", "httpdirfs": "httpdirfs",
         "davfs2": "mount.davfs"}
NGINX = "/usr/sbin/nginx"
NGINX_MODULES = "/usr/lib/nginx/modules"
DAV_EXT = os.path.join(NGINX_MODULES, "ngx_http_dav_ext_module.so")
DAVFS2_PIDDIR = "/var/run/mount.davfs"
DEFAULT_READAHEAD_KB = 1024

# what this module started, for leftovers() and the atexit safety net
_LIVE = []          # PeerNginx / PeerMount objects not yet stopped
_STARTED_PIDS = set()
_MOUNTED = set()


class PeerError(RuntimeError):
    pass


# ------------------------------------------------------------- helpers

def _which(name):
    p = shutil.which(name)
    if p:
        return p
    for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin"):
        c = os.path.join(d, name)
        if os.access(c, os.X_OK):
            return c
    return None


def available(kind):
    """Whether peer @kind can run here: its program, /dev/fuse, and for
    davfs2 root (mount.davfs mounts only as root outside fstab)."""
    if kind not in TOOLS:
        raise ValueError("unknown peer kind %r" % (kind,))
    if not _which(TOOLS[kind]) or not os.path.exists("/dev/fuse"):
        return False
    if kind == "davfs2":
        if os.geteuid() != 0:
            return False
        try:
            pwd.getpwnam("davfs2")
        except KeyError:
            return False
    return True


def nginx_available():
    return os.access(NGINX, os.X_OK)


def drop_page_cache():
    """Flush dirty pages and drop the page, dentry and inode caches."""
    subprocess.run(["sync"], check=False)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def _child_env(workdir):
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy",
                                "ftp_proxy", "no_proxy")}
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost"
    xdg = os.path.join(workdir, "xdg")
    for sub in ("config", "cache"):
        os.makedirs(os.path.join(xdg, sub), exist_ok=True)
    env["XDG_CONFIG_HOME"] = os.path.join(xdg, "config")
    env["XDG_CACHE_HOME"] = os.path.join(xdg, "cache")
    return env


def _tail(path, n=3000):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _pid_alive(pid):
    """True while @pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    # state is the field after the ")" that closes comm
    return st[st.rindex(")") + 2:][:1] not in ("Z", "X")


def _wait_pid(pid, popen, timeout):
    """Wait up to @timeout s for @pid to end. True if it did."""
    end = time.monotonic() + timeout
    if popen is not None:
        try:
            popen.wait(timeout=max(0.0, timeout))
            return True
        except subprocess.TimeoutExpired:
            return False
    while time.monotonic() < end:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return not _pid_alive(pid)


def _stop_pid(pid, popen=None, term_wait=10.0, sig=signal.SIGTERM):
    """SIGTERM @pid, then SIGKILL if it outlives @term_wait. Only a PID
    this module started is ever passed here."""
    if pid is None:
        return
    if popen is not None and popen.poll() is not None:
        _STARTED_PIDS.discard(pid)
        return
    if popen is None and not _pid_alive(pid):
        _STARTED_PIDS.discard(pid)
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
    if not _wait_pid(pid, popen, term_wait):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _wait_pid(pid, popen, 10.0)
    _STARTED_PIDS.discard(pid)


def _mountinfo():
    """[(major:minor, mountpoint, fstype, source)] from mountinfo."""
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                a, _, b = line.partition(" - ")
                fa, fb = a.split(), b.split()
                if len(fa) >= 5 and len(fb) >= 2:
                    mp = re.sub(r"\\([0-7]{3})",
                                lambda m: chr(int(m.group(1), 8)), fa[4])
                    out.append((fa[2], mp, fb[0], fb[1]))
    except OSError:
        pass
    return out


def _mount_entry(path):
    path = os.path.abspath(path)
    hit = None
    for e in _mountinfo():
        if e[1] == path:
            hit = e          # the last one is the top of the stack
    return hit


def _is_mounted(path):
    # mountinfo, not os.path.ismount(): a dead FUSE server makes stat()
    # fail (ENOTCONN) and ismount() then says False though it is mounted
    return _mount_entry(path) is not None


def _run_quiet(cmd, timeout=30):
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, check=False)
        return r.returncode, r.stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired) as e:
        return -1, str(e)


def _lazy_unmount(path):
    """Detach @path now even if busy; no umount.<type> helper (-i):
    umount.davfs refuses a busy mount."""
    rc, out = _run_quiet(["umount", "-l", "-i", path])
    if rc != 0 and _is_mounted(path) and _which("fusermount3"):
        rc, out = _run_quiet(["fusermount3", "-u", "-z", path])
    return rc, out


def _unmount_path(path, kind, timeout=30.0):
    """Unmount @path, politely for up to @timeout s (retrying while it
    is busy), then lazily. Returns (clean, messages of failed tries)."""
    msgs = []
    if kind == "davfs2":
        # umount.davfs (run by umount) waits until the daemon has written
        # back its cache index and exited
        cmds = [["umount", path]]
    else:
        cmds = [[c, "-u", path] for c in ("fusermount3", "fusermount")
                if _which(c)] + [["umount", path]]
    end = time.monotonic() + timeout
    while _is_mounted(path):
        for c in cmds:
            rc, out = _run_quiet(c, timeout=max(1.0, end - time.monotonic()))
            if not _is_mounted(path):
                return True, msgs
            msgs.append("%s: rc=%s %s" % (" ".join(c), rc, out.strip()))
        if time.monotonic() >= end:
            break
        time.sleep(0.5)       # busy: someone still has a file open
    if _is_mounted(path):
        rc, out = _lazy_unmount(path)
        msgs.append("lazy unmount: rc=%s %s" % (rc, out.strip()))
        return False, msgs
    return True, msgs


def _set_readahead(path, kb):
    """Set read_ahead_kb of the bdi behind mount @path (root only)."""
    e = _mount_entry(path)
    if not e or kb is None:
        return False
    p = "/sys/class/bdi/%s/read_ahead_kb" % e[0]
    try:
        with open(p, "w") as f:
            f.write("%d\n" % kb)
        return True
    except OSError:
        return False


def _free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


# --------------------------------------------------------------- nginx

class PeerNginx:
    """A private nginx on 127.0.0.1:<free port> serving @root_dir at /."""

    def __init__(self, root_dir, workdir=None, start_timeout=15.0):
        self.root_dir = os.path.abspath(root_dir)
        self._own_workdir = workdir is None
        self.workdir = os.path.abspath(workdir) if workdir else None
        self.start_timeout = start_timeout
        self.proc = None
        self.port = None
        self.dav = False
        self.prefix = None

    @property
    def url(self):
        if self.port is None:
            raise PeerError("nginx not started")
        return "http://127.0.0.1:%d/" % self.port

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def _conf(self, port):
        p = self.prefix
        lines = ["daemon off;", "master_process off;", "worker_processes 1;",
                 "pid %s/nginx.pid;" % p, "error_log %s/error.log warn;" % p]
        if self.dav:
            lines.append("load_module %s;" % DAV_EXT)
        lines += [
            "events { worker_connections 1024; }",
            "http {",
            "  access_log off;",
            "  sendfile on;",
            "  tcp_nopush on;",
            "  tcp_nodelay on;",
            "  keepalive_timeout 65s;",
            "  keepalive_requests 100000;",
            "  default_type application/octet-stream;",
            "  server_tokens off;",
        ]
        for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            lines.append("  %s_temp_path %s/tmp/%s;" % (t, p, t))
        lines += [
            "  server {",
            "    listen 127.0.0.1:%d;" % port,
            "    server_name localhost;",
            '    root "%s";' % self.root_dir.replace('"', '\\"'),
            "    location / {",
            "      autoindex on;",
            "      dav_methods off;",
        ]
        if self.dav:
            lines.append("      dav_ext_methods PROPFIND OPTIONS;")
        lines += ["    }", "  }", "}", ""]
        return "\n".join(lines)

    def start(self):
        if self.proc is not None:
            return self
        if not nginx_available():
            raise PeerError("%s not installed" % NGINX)
        if not os.path.isdir(self.root_dir):
            raise PeerError("no such directory: %s" % self.root_dir)
        if self.workdir is None:
            self.workdir = tempfile.mkdtemp(prefix="peer-nginx-")
        self.prefix = tempfile.mkdtemp(prefix="nginx-", dir=self.workdir)
        os.makedirs(os.path.join(self.prefix, "tmp"), exist_ok=True)
        self.dav = os.path.exists(DAV_EXT)
        conf = os.path.join(self.prefix, "nginx.conf")
        err = os.path.join(self.prefix, "error.log")
        _LIVE.append(self)
        last = ""
        for _attempt in range(5):
            port = _free_port()
            with open(conf, "w") as f:
                f.write(self._conf(port))
            logf = open(os.path.join(self.prefix, "stderr.log"), "ab")
            try:
                self.proc = subprocess.Popen(
                    [NGINX, "-c", conf, "-p", self.prefix + "/", "-e", err],
                    stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                    start_new_session=True)
            finally:
                logf.close()
            _STARTED_PIDS.add(self.proc.pid)
            self.port = port
            if self._wait_ready():
                return self
            last = _tail(err) + "\n" + _tail(os.path.join(self.prefix,
                                                          "stderr.log"))
            _stop_pid(self.proc.pid, self.proc)
            self.proc = None
            self.port = None
            if "in use" not in last:
                break
        self._forget()
        raise PeerError("nginx did not start:\n" + last)

    def _wait_ready(self):
        end = time.monotonic() + self.start_timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    if r.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def stop(self):
        if self.proc is not None:
            _stop_pid(self.proc.pid, self.proc)
            self.proc = None
        self._forget()
        if self._own_workdir and self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        elif self.prefix:
            shutil.rmtree(self.prefix, ignore_errors=True)
        self.prefix = None

    def _forget(self):
        if self in _LIVE:
            _LIVE.remove(self)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


# --------------------------------------------------------------- mounts

class PeerMount:
    """One peer filesystem mounted from @url (a directory URL, e.g.
    PeerNginx.url) under @workdir. See the module docstring."""

    def __init__(self, kind, url, workdir, cache_dir=None, timeout=60.0,
                 readahead_kb=DEFAULT_READAHEAD_KB, extra_args=(),
                 davfs2_conf=None):
        if kind not in KINDS:
            raise ValueError("kind must be one of %s" % (KINDS,))
        self.kind = kind
        self.url = url if url.endswith("/") else url + "/"
        self.workdir = os.path.abspath(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self._given_cache = os.path.abspath(cache_dir) if cache_dir else None
        self.cache_dir = None
        self.timeout = timeout
        self.readahead_kb = readahead_kb
        self.extra_args = list(extra_args)
        self.davfs2_conf = dict(davfs2_conf or {})
        self.proc = None       # our child (rclone, httpdirfs, mount.davfs)
        self.pid = None        # the process serving the mount
        self.log = None
        self._mnt = None
        self._conf = None      # davfs2's private config file
        self.readahead_set = False

    # -- public ---------------------------------------------------------

    @property
    def dir(self):
        if self._mnt is None:
            raise PeerError("%s not mounted" % self.kind)
        return self._mnt

    @property
    def mounted(self):
        return self._mnt is not None and _is_mounted(self._mnt)

    def mount(self, reuse_cache=False):
        if self._mnt is not None:
            raise PeerError("%s already mounted on %s" % (self.kind,
                                                          self._mnt))
        if not available(self.kind):
            raise PeerError("%s is not available here" % self.kind)
        if self._given_cache:
            self.cache_dir = self._given_cache
            os.makedirs(self.cache_dir, exist_ok=True)
        elif not (reuse_cache and self.cache_dir
                  and os.path.isdir(self.cache_dir)):
            self.cache_dir = tempfile.mkdtemp(prefix="cache-%s-" % self.kind,
                                              dir=self.workdir)
        base = os.path.basename(self.cache_dir.rstrip("/"))
        mnt = os.path.join(self.workdir, "mnt-%s-%s" % (self.kind, base))
        if _is_mounted(mnt):
            raise PeerError("%s is already a mountpoint" % mnt)
        os.makedirs(mnt, exist_ok=True)
        if os.listdir(mnt):
            raise PeerError("mountpoint %s is not empty" % mnt)
        self._mnt = mnt
        self.log = os.path.join(self.workdir, "log-%s-%s-%d.log"
                                % (self.kind, base, time.time_ns()))
        _LIVE.append(self)
        try:
            getattr(self, "_mount_" + self.kind)()
            self._wait_mounted()
            self.readahead_set = _set_readahead(mnt, self.readahead_kb)
        except BaseException as e:
            tail = _tail(self.log)
            try:
                self.umount()
            except Exception:
                pass
            if isinstance(e, (PeerError, OSError)):
                msg = "%s: %s" % (type(e).__name__, e)
                if tail:
                    msg += "\n--- %s log tail ---\n%s" % (self.kind, tail)
                raise PeerError(msg) from e
            raise
        return self._mnt

    def umount(self, timeout=30.0):
        """Unmount (retrying up to @timeout s while busy, then lazily),
        wait for the process to end (SIGTERM, then SIGKILL, by PID),
        remove the mountpoint. Idempotent. Raises PeerError only if
        something could not be cleaned up."""
        problems = []
        mnt = self._mnt
        clean = True
        if mnt is not None and _is_mounted(mnt):
            clean, msgs = _unmount_path(mnt, self.kind, timeout)
            if not clean:
                problems += msgs[-2:]
        if self.kind == "davfs2" and self.pid is None and mnt:
            self.pid = self._find_davfs2_pid(mnt)
        if self.pid is not None:
            popen = self.proc if (self.proc and
                                  self.proc.pid == self.pid) else None
            # after a clean unmount the tool exits by itself; after a lazy
            # one it may serve open files for ever
            if not _wait_pid(self.pid, popen, 30.0 if clean else 1.0):
                _stop_pid(self.pid, popen)
            _STARTED_PIDS.discard(self.pid)
        if self.proc is not None:
            _stop_pid(self.proc.pid, self.proc, term_wait=5.0)
            self.proc = None
        self.pid = None
        if mnt is not None:
            if _is_mounted(mnt):        # killed server, still mounted
                _lazy_unmount(mnt)
            if _is_mounted(mnt):
                problems.append("%s still mounted" % mnt)
            else:
                _MOUNTED.discard(mnt)
                try:
                    os.rmdir(mnt)
                except FileNotFoundError:
                    pass
                except OSError as e:
                    problems.append("rmdir %s: %s" % (mnt, e))
            self._mnt = None
        if self._conf and os.path.exists(self._conf):
            os.remove(self._conf)
        self._conf = None
        if self in _LIVE:
            _LIVE.remove(self)
        if problems:
            raise PeerError("%s umount: %s" % (self.kind,
                                               "; ".join(problems)))

    def drop_cache(self):
        """Delete the on-disk cache; the next mount() starts cold."""
        if self.mounted:
            raise PeerError("drop_cache() while mounted; umount() first")
        if self.cache_dir:
            shutil.rmtree(self.cache_dir, ignore_errors=True)
        if self._given_cache is None:
            self.cache_dir = None

    def __enter__(self):
        self.mount()
        return self

    def __exit__(self, *exc):
        self.umount()
        return False

    def __repr__(self):
        return "PeerMount(%s, %s, mnt=%s, pid=%s)" % (
            self.kind, self.url, self._mnt, self.pid)

    # -- per tool -------------------------------------------------------

    def _spawn(self, argv):
        env = _child_env(self.workdir)
        with open(self.log, "ab") as logf:
            logf.write(("$ %s\n" % " ".join(argv)).encode())
            logf.flush()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=logf, env=env,
                                         start_new_session=True)
        _STARTED_PIDS.add(self.proc.pid)
        _MOUNTED.add(self._mnt)

    def _mount_rclone(self):
        conf = os.path.join(self.workdir, "rclone-empty.conf")
        open(conf, "a").close()
        argv = [_which("rclone"), "mount", ":http:", self._mnt,
                "--http-url", self.url,
                "--config", conf,
                "--cache-dir", self.cache_dir,
                "--vfs-cache-mode", "full",
                "--read-only",
                "--buffer-size", "32M",
                "--vfs-read-ahead", "256M",
                "--vfs-read-chunk-size", "64M",
                "--vfs-read-chunk-size-limit", "1G",
                "--max-read-ahead", "1M",
                "--vfs-cache-max-age", "24h",
                "--dir-cache-time", "1h",
                "--log-level", "NOTICE"] + self.extra_args
        self._spawn(argv)
        self.pid = self.proc.pid

    def _mount_httpdirfs(self):
        argv = [_which("httpdirfs"), "-f", "--cache",
                "--cache-location", self.cache_dir,
                "--no-range-check"] + self.extra_args + \
               [self.url, self._mnt]
        self._spawn(argv)
        self.pid = self.proc.pid

    def _mount_davfs2(self):
        # the daemon drops root for the davfs2 user: it must reach and own
        # its cache, and traverse the workdir
        try:
            gid = grp.getgrnam("davfs2").gr_gid
        except KeyError as e:
            raise PeerError("davfs2 user/group missing: %s" % e)
        # like /var/cache/davfs2: group davfs2, group rwx (mount.davfs
        # refuses a cache dir without); the daemon makes its subdirectory
        os.chown(self.cache_dir, 0, gid)
        os.chmod(self.cache_dir, 0o775)
        d = self.workdir
        while d and d != "/":
            st = os.stat(d)
            if not (st.st_mode & 0o001 or
                    (st.st_gid == gid and st.st_mode & 0o010)):
                if d != self.workdir:
                    raise PeerError(
                        "davfs2's daemon runs as user davfs2 and cannot "
                        "traverse %s (mode %o): use a workdir it can "
                        "reach, or chmod o+x it" % (d, st.st_mode & 0o7777))
                os.chmod(d, (st.st_mode & 0o7777) | 0o001)
            d = os.path.dirname(d)
        opts = {"ask_auth": "0", "use_locks": "0",
                "cache_dir": self.cache_dir, "cache_size": "16384",
                "buf_size": "1024"}
        opts.update({k: str(v) for k, v in self.davfs2_conf.items()})
        conf = self._conf = os.path.join(
            self.workdir, "davfs2-%s.conf" % os.path.basename(self.cache_dir))
        with open(conf, "w") as f:
            for k, v in opts.items():
                v = v.replace("\\", "\\\\").replace(" ", "\\ ") \
                     .replace("#", "\\#").replace('"', '\\"')
                f.write("%s %s\n" % (k, v))
        os.chmod(conf, 0o644)
        argv = [_which("mount.davfs"), "-o", "ro,conf=" + conf] + \
            self.extra_args + [self.url, self._mnt]
        self._spawn(argv)
        # the foreground process exits once the daemon has mounted
        try:
            rc = self.proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise PeerError("mount.davfs did not return in %ss"
                            % self.timeout)
        _STARTED_PIDS.discard(self.proc.pid)
        self.proc = None
        self.pid = self._find_davfs2_pid(self._mnt)
        if self.pid is not None:
            _STARTED_PIDS.add(self.pid)
        if rc != 0:
            raise PeerError("mount.davfs exited with %d" % rc)
        if self.pid is None:
            raise PeerError("mount.davfs daemon not found")

    @staticmethod
    def _find_davfs2_pid(mnt):
        mnt = os.path.abspath(mnt)
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % p, "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if argv and os.path.basename(argv[0]) == b"mount.davfs" and \
                    mnt.encode() in argv[1:] and _pid_alive(int(p)):
                return int(p)
        # pid file named after the mountpoint, "/" -> "-"
        name = mnt.strip("/").replace("/", "-") + ".pid"
        try:
            with open(os.path.join(DAVFS2_PIDDIR, name)) as f:
                pid = int(f.read().split()[0])
            if _pid_alive(pid):
                return pid
        except (OSError, ValueError, IndexError):
            pass
        return None

    def _wait_mounted(self):
        end = time.monotonic() + self.timeout
        last = "not in /proc/self/mountinfo"
        while time.monotonic() < end:
            if self.proc is not None and self.proc.poll() is not None:
                raise PeerError("%s exited with %s before mounting"
                                % (self.kind, self.proc.returncode))
            if self.pid is not None and not _pid_alive(self.pid):
                raise PeerError("%s (pid %d) died" % (self.kind, self.pid))
            if _is_mounted(self._mnt):
                try:
                    os.listdir(self._mnt)
                    return
                except OSError as e:
                    last = "mounted, but listing fails: %s" % e
            time.sleep(0.05)
        raise PeerError("%s on %s not ready after %ss (%s)"
                        % (self.kind, self._mnt, self.timeout, last))


def leftovers():
    """(pids, mountpoints) started here and still alive / mounted."""
    pids = sorted(p for p in _STARTED_PIDS if _pid_alive(p))
    mnts = sorted(m for m in _MOUNTED if _is_mounted(m))
    return pids, mnts


def cleanup_all():
    """Stop everything this module started (mounts first, then nginx)."""
    errs = []
    for kind, stop in ((PeerMount, "umount"), (PeerNginx, "stop")):
        for obj in reversed(list(_LIVE)):
            try:
                if isinstance(obj, kind):
                    getattr(obj, stop)()
            except Exception as e:
                errs.append(str(e))
    for m in list(_MOUNTED):
        if _is_mounted(m):
            _unmount_path(m, "fuse", 5.0)
    for p in list(_STARTED_PIDS):
        _stop_pid(p, None, term_wait=5.0)
    return errs


atexit.register(cleanup_all)


# ------------------------------------------------------------- selftest

def _make_tree(root, big_mb, n_small, seed=1):
    os.makedirs(os.path.join(root, "small"), exist_ok=True)
    big = os.path.join(root, "big.bin")
    h = hashlib.md5()
    with open(big, "wb") as f:
        left = big_mb << 20
        while left:
            b = os.urandom(min(left, 4 << 20))
            h.update(b)
            f.write(b)
            left -= len(b)
    rnd = random.Random(seed)
    sizes = {}
    for i in range(n_small):
        name = "f%05d.dat" % i
        n = rnd.randrange(1, 16 << 10)
        with open(os.path.join(root, "small", name), "wb") as f:
            f.write(rnd.randbytes(n))
        sizes[name] = n
    return big, h.hexdigest(), sizes


def timed_read(path, bs=1 << 20):
    """Seconds to read @path whole with @bs reads, and the bytes read."""
    buf = bytearray(bs)
    mv = memoryview(buf)
    n = 0
    t = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while True:
            k = f.readinto(mv)
            if not k:
                break
            n += k
    return time.perf_counter() - t, n


def _read_checked(path, what, mb, want, notes):
    """MB/s of reading @path (@mb MB) with the page cache dropped, and its
    md5; a short read is noted."""
    drop_page_cache()
    dt, n = timed_read(path)
    if n != want:
        notes.append("%s read %d bytes" % (what, n))
    return mb / dt, _md5(path)


def _md5(path):
    h = hashlib.md5()
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def _ls_l(path, sizes):
    """Time `ls -l`; (seconds, entries, sizes all right)."""
    t = time.perf_counter()
    r = subprocess.run(["ls", "-l", "--color=never", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=600, check=False,
                       env=dict(os.environ, LC_ALL="C"))
    dt = time.perf_counter() - t
    if r.returncode != 0:
        raise PeerError("ls -l failed: %s" % r.stderr.decode()[-500:])
    got = {}
    for line in r.stdout.decode("utf-8", "replace").splitlines():
        f = line.split()
        if len(f) >= 9 and not line.startswith("total"):
            try:
                got[f[-1]] = int(f[4])
            except ValueError:
                got[f[-1]] = -1
    return dt, len(got), got == sizes


def _selftest_peer(kind, url, workdir, a, md5_ref, sizes, ra):
    """One peer: fresh mount -> ls -l, cold read, md5; remount on the same
    cache -> warm read, md5; drop the cache. Returns (row, ok)."""
    want = a.big_mb << 20
    mb = want / 1e6
    cold = warm = lst = None
    notes = []
    md5s = {}
    m = PeerMount(kind, url, workdir, readahead_kb=ra)
    try:
        t = time.perf_counter()
        with m:
            notes.append("mount %.2fs" % (time.perf_counter() - t))
            if ra and not m.readahead_set:
                notes.append("readahead not set")
            lst, cnt, sizes_ok = _ls_l(os.path.join(m.dir, "small"), sizes)
            if cnt != a.small:
                notes.append("ls -l: %d entries, want %d" % (cnt, a.small))
            elif not sizes_ok:
                notes.append("ls -l sizes differ")
            cold, md5s["cold"] = _read_checked(
                os.path.join(m.dir, "big.bin"), "cold", mb, want, notes)
        cache = m.cache_dir
        t = time.perf_counter()
        with PeerMount(kind, url, workdir, cache_dir=cache,
                       readahead_kb=ra) as w:
            notes.append("remount %.2fs" % (time.perf_counter() - t))
            warm, md5s["warm"] = _read_checked(
                os.path.join(w.dir, "big.bin"), "warm", mb, want, notes)
        m.drop_cache()
        if os.path.exists(cache):
            notes.append("drop_cache left %s" % cache)
    except Exception as e:
        notes.append("FAIL: " + str(e).replace("\n", " | ")[:600])
        try:
            m.umount()
        except Exception as e2:
            notes.append("umount: %s" % e2)
        return (kind, cold, warm, lst, "FAIL", "; ".join(notes)), False
    bad = [k for k, v in md5s.items() if v != md5_ref]
    ok = not bad and len(notes) == 2
    return (kind, cold, warm, lst, "MISMATCH " + ",".join(bad) if bad
            else "ok", "; ".join(notes)), ok


def selftest(argv=None):
    ap = argparse.ArgumentParser(prog="peers.py selftest")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--big-mb", type=int, default=200)
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--workdir", default=None,
                    help="parent of the temp dir (default $TMPDIR)")
    ap.add_argument("--readahead-kb", type=int, default=DEFAULT_READAHEAD_KB,
                    help="bdi read_ahead_kb for the mounts, 0 = leave")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per peer; the table shows medians")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temp dir")
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("selftest needs root (mounts, drop_caches)", file=sys.stderr)
        return 2
    ra = a.readahead_kb or None
    kinds = [k.strip() for k in a.kinds.split(",") if k.strip()]
    top = tempfile.mkdtemp(prefix="peers-selftest-", dir=a.workdir)
    os.chmod(top, 0o755)
    results = []
    failures = 0
    mb = (a.big_mb << 20) / 1e6
    try:
        data = os.path.join(top, "data")
        t0 = time.perf_counter()
        big, md5_ref, sizes = _make_tree(data, a.big_mb, a.small)
        print("tree: %d MiB file + %d small files in %.1fs (%s)"
              % (a.big_mb, a.small, time.perf_counter() - t0, data))
        drop_page_cache()
        dt, _ = timed_read(big)
        results.append(("local disk", mb / dt, None, None, "ok", ""))
        with PeerNginx(data, workdir=top) as ng:
            print("nginx pid %d at %s (dav_ext %s)"
                  % (ng.pid, ng.url, "yes" if ng.dav else "NO"))
            drop_page_cache()
            t = time.perf_counter()
            with urllib.request.urlopen(ng.url + "big.bin") as r:
                n = 0
                while True:
                    b = r.read(1 << 20)
                    if not b:
                        break
                    n += len(b)
            results.append(("http GET (urllib)",
                            mb / (time.perf_counter() - t), None, None,
                            "ok" if n == a.big_mb << 20 else "short", ""))
            pw = os.path.join(top, "peers")
            for kind in kinds:
                if not available(kind):
                    results.append((kind, None, None, None, "n/a",
                                    "not installed"))
                    continue
                if kind == "davfs2" and not ng.dav:
                    results.append((kind, None, None, None, "n/a",
                                    "nginx lacks dav_ext (PROPFIND)"))
                    continue
                runs = [_selftest_peer(kind, ng.url, pw, a, md5_ref, sizes,
                                       ra) for _ in range(max(1, a.repeat))]
                rows = [r for r, _ok in runs]
                bad = [r for r, ok in runs if not ok]
                failures += len(bad)

                def med(i):
                    v = [r[i] for r in rows if r[i] is not None]
                    return statistics.median(v) if v else None
                row = bad[0] if bad else rows[0]
                note = row[5]
                if len(rows) > 1:
                    note = "median of %d: cold %s; %s" % (
                        len(rows), "/".join("%.0f" % r[1] for r in rows
                                            if r[1] is not None), note)
                results.append((kind, med(1), med(2), med(3), row[4], note))
    finally:
        errs = cleanup_all()
        if not a.keep:
            shutil.rmtree(top, ignore_errors=True)

    def f(v, fmt):
        return fmt % v if v is not None else "-"
    print()
    print("| peer | cold MB/s | warm MB/s | ls -l %d files (s) | md5 | notes |"
          % a.small)
    print("|---|---:|---:|---:|---|---|")
    for r in results:
        print("| %s | %s | %s | %s | %s | %s |" % (
            r[0], f(r[1], "%.0f"), f(r[2], "%.0f"), f(r[3], "%.3f"),
            r[4], r[5]))
    print()
    print("MB = 10^6 bytes; %d MiB file; cold = fresh cache + page cache "
          "dropped; warm = remount on the same cache + page cache dropped;"
          " readahead_kb=%s" % (a.big_mb, ra))
    pids, mnts = leftovers()
    fuse = [l for l in subprocess.run(
        ["mount"], stdout=subprocess.PIPE, check=False).stdout.decode()
        .splitlines() if ("fuse" in l or "davfs" in l) and top in l]
    print("leftovers: pids=%s mounts=%s mount|grep=%s errors=%s"
          % (pids, mnts, fuse, errs))
    if pids or mnts or fuse or errs:
        return 1
    return 1 if failures else 0


def main(argv):
    if len(argv) >= 1 and argv[0] == "selftest":
        def _term(signum, frame):
            raise SystemExit(128 + signum)
        signal.signal(signal.SIGTERM, _term)
        signal.signal(signal.SIGHUP, _term)
        return selftest(argv[1:])
    print(__doc__)
    print("usage: %s selftest [options]   (--help for options)"
          % os.path.basename(sys.argv[0]))
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
