#!/usr/bin/env python3
"""root:// baselines and peers for the benchmark's "xrootd" section, on
127.0.0.1 only. Standard library only; as root.

xrdcp(url)                 seconds of `xrdcp -f URL /dev/null` (Debian's
                           xrootd-client 5.5.3: XrdCl, 8 MiB chunks, 4
                           in flight by default)
XrdReader(port)            a minimal root:// reader (handshake, login,
                           open, kXR_read) on one connection: .open(path),
                           .read(off, n) one request and its answer, one
                           round trip; .close(). The baseline of a random
                           read, as bench.range_gets is for HTTP
Xrootdfs(rdr, workdir)     Debian's xrootd-fuse (libfuse2): `xrootdfs MNT
                           -f -o rdr=URL,...`, its defaults otherwise
                           (4 workers, 10 s attribute timeouts); .mount(),
                           .dir, .umount() (fusermount -u, then SIGTERM /
                           SIGKILL by pid)
available(tool)            "xrdcp" or "xrootdfs" installed
"""
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time


def available(tool):
    return shutil.which(tool) is not None


def xrdcp(url, timeout=600):
    """Seconds of one copy to /dev/null; raises on failure."""
    t = time.perf_counter()
    r = subprocess.run(["xrdcp", "-s", "-f", url, "/dev/null"], capture_output=True, text=True, timeout=timeout)
    took = time.perf_counter() - t
    if r.returncode:
        raise RuntimeError("xrdcp failed: %s" % r.stderr.strip()[-300:])
    return took


class XrdReader:
    """One root:// connection, one request at a time."""

    def __init__(self, port, host="127.0.0.1", timeout=60):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.fh = None
        self.sock.sendall(struct.pack(">5i", 0, 0, 0, 4, 2012))
        self._recv(16)
        self._call(3006, struct.pack(">i", 0x511))
        self._call(3007, struct.pack(">i8s", os.getpid(), b"bench"))

    def _recv(self, n):
        buf = bytearray()
        while len(buf) < n:
            b = self.sock.recv(n - len(buf))
            if not b:
                raise ConnectionError("server closed the connection")
            buf += b
        return bytes(buf)

    def _call(self, code, body, payload=b""):
        self.sock.sendall(b"\0\1" + struct.pack(">H", code) + body.ljust(16, b"\0") +
                          struct.pack(">i", len(payload)) + payload)
        out = []
        while True:
            status, dlen = struct.unpack(">Hi", self._recv(8)[2:])
            data = self._recv(dlen) if dlen else b""
            if status == 4000:          # oksofar
                out.append(data)
                continue
            if status != 0:
                raise RuntimeError("kXR request %d: status %d %r" % (code, status, data[:80]))
            out.append(data)
            return b"".join(out)

    def open(self, path):
        self.fh = self._call(3010, struct.pack(">HH", 0, 0x0010), path.encode())[:4]

    def read(self, off, n):
        return self._call(3013, self.fh + struct.pack(">qi", off, n))

    def close(self):
        try:
            if self.fh:
                self._call(3003, self.fh)
        finally:
            self.sock.close()


class Xrootdfs:
    def __init__(self, rdr, workdir):
        self.rdr = rdr
        os.makedirs(workdir, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix="xrootdfs-", dir=workdir)
        self.log = os.path.join(workdir, "xrootdfs.log")
        self.proc = None

    def mount(self, timeout=30):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(["xrootdfs", self.dir, "-f", "-o", "rdr=" + self.rdr],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.time() + timeout
        while not os.path.ismount(self.dir):
            if self.proc.poll() is not None or time.time() > deadline:
                self.umount()
                raise RuntimeError("xrootdfs did not mount (log %s)" % self.log)
            time.sleep(0.05)
        return self

    def umount(self):
        if os.path.ismount(self.dir):
            subprocess.run(["fusermount", "-u", self.dir], stderr=subprocess.DEVNULL)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        if os.path.ismount(self.dir):
            subprocess.run(["fusermount", "-u", "-z", self.dir], stderr=subprocess.DEVNULL)
        try:
            os.rmdir(self.dir)
        except OSError:
            pass
