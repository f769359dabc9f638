#!/usr/bin/python3
"""Fault-injecting fake xrootd server: the lake's files over root://, with
faults on the wire.

    python3 fakexrd.py --lake-dir LAKE_DIR [--port 0] [--port-file F]
                       [--log REQLOG] [--chunk BYTES] [--manager]

Standard library only, 127.0.0.1 only, one thread per connection (plus a
timer thread per delayed answer). It speaks the read-only subset of the
XRootD protocol a client needs (storage-and-tokens.md section 1): the
handshake, kXR_protocol (a plain data server: no TLS, no pgread), kXR_login
(no authentication asked), kXR_ping, kXR_stat (by path or handle),
kXR_open (read; kXR_retstat adds the stat), kXR_read (answered in
kXR_oksofar chunks of --chunk bytes, 256 KiB by default, the last one
kXR_ok), kXR_readv, kXR_close, kXR_query checksum (adler32) and config
(readv_iov_max 1024, readv_ior_max 2097136), kXR_endsess. Anything else
is kXR_error kXR_Unsupported. With --manager it says it is a manager
(handshake msgval 0, kXR_isManager), so that clients treat it as a
redirector (XrdCl then goes back to it with tried= after a data server's
error). Files: like faultstore.py, the longest tail
of the path that is a lake file's hash path names it, so PFNs
root://127.0.0.1:P//rucio/<hash path> (XRD_DISK's layout) work, with any
prefix. CGI after '?' is recorded and otherwise ignored.

The file port-file gets {"port": P, "admin": A}: P speaks root://, A is an
HTTP admin port (127.0.0.1, JSON):
    POST   /_admin/fault  {"match": REGEX, "mode": MODE, "ops": [OP...]?,
             "count": N?, ...} -> 201 {"id": N}. REGEX is re.search()ed
             on the request's path (reads: the path the handle was opened
             with); the first fault matching path and op applies; each use
             consumes one count (no count: forever).
    DELETE /_admin/fault               clear all faults
    GET    /_admin/faults              active faults (with "hits")
    GET    /_admin/requests            [{"op", "path", "cgi", "offset",
             "rlen", "segs" ([[offset, rlen]] of a readv), "sid" (stream id
             as int), "conn" (connection number), "user" (login name),
             "time", "fault" (mode or null), "answer" (what was sent:
             "ok", "oksofar", "error", "wait", ..., null: nothing yet)}]
    POST   /_admin/reset               clear the request log (faults stay)
    POST   /_admin/map    {"path": HASH_PATH, "file": LOCAL_PATH}
    GET    /_admin/health              {"ok": true, "pid", "port"}

Ops: "open", "read", "readv", "stat", "query", "close", "login", "any".
Fault modes (default ops in brackets) and parameters:
    truncated {keep=0.5}   [read, readv] a frame whose header announces
                           the full answer, `keep` (fraction) of its body,
                           then the connection closes
    oversized {extra=1}    [read, readv] more bytes than asked: a read
                           answers rlen+extra bytes (the file's own where
                           there are), a readv's last segment header says
                           and carries rlen+extra
    lying {at=0, len=1}    [read, readv] right lengths, but bytes [at,
                           at+len) of the file (where answered) XOR 0x5a
    wrong_sid              [read, readv] the answer goes out under a stream
                           id the client did not use (the real one never
                           gets an answer)
    reorder {hold=2}       [read, readv] legal: this answer waits until the
                           connection's next request is answered (or `hold`
                           seconds); bytes correct
    readv_badhdr {shift=4096}  [readv] segment headers that do not match
                           the request: each offset moved by `shift`
                           (data of the moved range)
    wait {seconds=1}       [open] kXR_wait seconds; the resent request is
                           answered normally (unless count says otherwise)
    waitresp_never {seconds=30}  [open] kXR_waitresp, then nothing ever
    waitresp {seconds=5, delay=0.3}  [open] kXR_waitresp, then after
                           `delay` s a kXR_attn/kXR_asynresp carrying the
                           normal answer
    error {errnum=3012, message}  [open] kXR_error errnum (3011 NotFound,
                           3010 NotAuthorized, 3005 FSError, 3007 IOError,
                           3012 ServerError, 3024 Overloaded ...)
    redirect {port, host="127.0.0.1", opaque=""}  [open] kXR_redirect to
                           host:port (this server's own port by default)
                           with "?opaque" appended to the host field
    stall                  [open] no answer at all (the connection stays)
    close {after=0}        [read] `after` data bytes in a kXR_oksofar
                           frame (none if 0), then the connection closes
    none                   normal answer (counts hits)

SIGTERM/SIGINT stop the server at once (stalled connections included).

Also importable: FakeXrd (the handle lake.Lake.start_fakexrd returns).
"""

import argparse
import http.client
import json
import os
import re
import socket
import socketserver
import struct
import sys
import threading
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import httpbase  # noqa: E402
from faultstore import Index  # noqa: E402
import lake as lakemod  # noqa: E402

# request codes
kXR_auth, kXR_query, kXR_close, kXR_dirlist = 3000, 3001, 3003, 3004
kXR_protocol, kXR_login, kXR_open, kXR_ping = 3006, 3007, 3010, 3011
kXR_read, kXR_stat, kXR_endsess, kXR_readv = 3013, 3017, 3023, 3025
# status codes
kXR_ok, kXR_oksofar, kXR_attn, kXR_error = 0, 4000, 4001, 4003
kXR_redirect, kXR_wait, kXR_waitresp = 4004, 4005, 4006
kXR_asynresp = 5008
kXR_NotFound, kXR_Unsupported, kXR_FileNotOpen, kXR_ArgInvalid = 3011, 3013, 3004, 3000
kXR_retstat = 0x0400
kXR_Qcksum, kXR_Qconfig = 3, 7
PROTOCOL_VERSION = 0x511
READV_IOV_MAX, READV_IOR_MAX = 1024, 2097136

OPS = {kXR_query: "query", kXR_close: "close", kXR_open: "open", kXR_read: "read", kXR_stat: "stat",
       kXR_readv: "readv", kXR_login: "login", kXR_protocol: "protocol", kXR_ping: "ping",
       kXR_endsess: "endsess", kXR_auth: "auth", kXR_dirlist: "dirlist"}
DEFAULT_OPS = {"truncated": ["read", "readv"], "oversized": ["read", "readv"], "lying": ["read", "readv"],
               "wrong_sid": ["read", "readv"], "reorder": ["read", "readv"], "readv_badhdr": ["readv"],
               "wait": ["open"], "waitresp_never": ["open"], "waitresp": ["open"], "error": ["open"],
               "redirect": ["open"], "stall": ["open"], "close": ["read"], "none": ["any"]}
MODES = tuple(DEFAULT_OPS)
MAX_LOG = 200000
MAX_PAYLOAD = 16 << 20       # a request's payload (readv lists are 16 KiB)
STOP = httpbase.STOP


# --------------------------------------------------------------------------
# faults and the request log
# --------------------------------------------------------------------------
def check_fault(spec):
    if not isinstance(spec, dict):
        raise TypeError("body must be a JSON object")
    mode = spec.get("mode")
    if mode not in MODES:
        raise ValueError("mode must be one of %s" % ", ".join(MODES))
    out = dict(spec)
    out["match"] = str(spec.get("match", ""))
    re.compile(out["match"])
    ops = spec.get("ops", spec.get("op")) or DEFAULT_OPS[mode]
    out["ops"] = [ops] if isinstance(ops, str) else list(ops)
    for o in out["ops"]:
        if o not in set(OPS.values()) | {"any"}:
            raise ValueError("unknown op %r" % o)
    if spec.get("count") is not None and int(spec["count"]) < 1:
        raise ValueError("count must be >= 1")
    if mode == "redirect" and spec.get("port") is not None:
        out["port"] = int(spec["port"])
    if mode == "error":
        out["errnum"] = int(spec.get("errnum", 3012))
    return out


class Faults(httpbase.FaultTable):
    def add(self, spec):
        f = check_fault(spec)
        return self._append(f, _rx=re.compile(f["match"]))

    def take_op(self, path, op):
        with self.lock:
            for f in self.items:
                if ("any" in f["ops"] or op in f["ops"]) and f["_rx"].search(path or ""):
                    f["hits"] += 1
                    if f.get("count") is not None:
                        f["count"] -= 1
                        if f["count"] <= 0:
                            self.items.remove(f)
                    return dict(f)
        return None


# --------------------------------------------------------------------------
# the xrootd side
# --------------------------------------------------------------------------
class Gone(Exception):
    """The connection is finished (client left, or a fault closed it)."""


def xor_range(data, pos, lo, hi):
    i, j = max(lo, pos) - pos, min(hi, pos + len(data)) - pos
    if i >= j:
        return data
    return data[:i] + bytes(b ^ 0x5A for b in data[i:j]) + data[j:]


class Conn(socketserver.BaseRequestHandler):
    """One client connection: a reader loop; answers are written under a
    lock so that delayed ones (timers) do not interleave frames."""

    def setup(self):
        srv = self.server
        with srv.lock:
            srv.nconn += 1
            self.num = srv.nconn
        self.wlock = threading.Lock()
        self.handles = {}        # fhandle (4 bytes) -> (path, local)
        self.next_fh = 1
        self.user = None
        self.held = []           # reorder: answers waiting for the next one
        self.closed = False
        self.capture = threading.local()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- io ---------------------------------------------------------------------
    def recv(self, n):
        buf = b""
        while len(buf) < n:
            try:
                b = self.request.recv(n - len(buf))
            except OSError:
                raise Gone()
            if not b:
                raise Gone()
            buf += b
        return buf

    def send(self, data):
        cap = getattr(self.capture, "frames", None)
        if cap is not None:         # async_answer collects this thread's frames
            cap.append(data)
            return
        with self.wlock:
            if self.closed:
                return
            try:
                self.request.sendall(data)
            except OSError:
                self.closed = True

    def frame(self, sid, status, body=b""):
        return sid + struct.pack(">Hi", status, len(body)) + body

    def hangup(self):
        with self.wlock:
            self.closed = True
            try:
                self.request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- main loop -------------------------------------------------------------------
    def handle(self):
        try:
            hs = self.recv(20)
            if struct.unpack(">5i", hs) != (0, 0, 0, 4, 2012):
                return
            # msgval 1: a data server, 0: a manager (redirector)
            self.send(self.frame(b"\0\0", kXR_ok, struct.pack(">ii", PROTOCOL_VERSION, 0 if self.server.manager else 1)))
            while not STOP.is_set() and not self.closed:
                hdr = self.recv(24)
                sid, code = hdr[:2], struct.unpack(">H", hdr[2:4])[0]
                body = hdr[4:20]
                dlen = struct.unpack(">i", hdr[20:24])[0]
                if dlen < 0 or dlen > MAX_PAYLOAD:
                    return
                payload = self.recv(dlen) if dlen else b""
                self.dispatch(sid, code, body, payload)
        except Gone:
            pass
        finally:
            with self.wlock:
                self.closed = True

    def record(self, op, sid, path=None, cgi=None, **kw):
        rec = {"op": op, "path": path, "cgi": cgi, "offset": None, "rlen": None, "segs": None,
               "sid": struct.unpack(">H", sid)[0], "conn": self.num, "user": self.user,
               "time": round(time.time(), 6), "fault": None, "answer": None}
        rec.update(kw)
        self.server.log.add(rec)
        return rec

    def dispatch(self, sid, code, body, payload):
        op = OPS.get(code, str(code))
        if code == kXR_protocol:
            # kXR_isServer (or kXR_isManager): no TLS, no pgread (so
            # clients use kXR_read)
            flags = 0x00000002 if self.server.manager else 0x00000001
            self.send(self.frame(sid, kXR_ok, struct.pack(">iI", PROTOCOL_VERSION, flags)))
            return
        if code == kXR_login:
            self.user = body[4:12].rstrip(b"\0").decode("latin-1")
            rec = self.record("login", sid, cgi=payload.rstrip(b"\0").decode("latin-1"))
            fault = self.server.faults.take_op(None, "login")
            if fault and self.control(sid, rec, fault, lambda: self.plain(sid, rec, kXR_ok, os.urandom(16))):
                return
            self.plain(sid, rec, kXR_ok, os.urandom(16))
            return
        if code in (kXR_ping, kXR_endsess):
            self.send(self.frame(sid, kXR_ok))
            return
        path, cgi = None, None
        if code in (kXR_open, kXR_stat, kXR_query) and payload:
            text = payload.rstrip(b"\0").decode("utf-8", "replace")
            path, _, cgi = text.partition("?")
        fh = None
        if code in (kXR_read, kXR_close):
            fh = body[0:4]
        elif code == kXR_stat and not payload:
            fh = body[12:16]
        elif code == kXR_query and not payload:
            fh = body[4:8]
        if fh is not None and path is None:
            path = self.handles.get(fh, (None, None))[0]
        kw = {}
        if code == kXR_read:
            off, rlen = struct.unpack(">qi", body[4:16])
            kw = {"offset": off, "rlen": rlen}
        elif code == kXR_readv:
            segs = [struct.unpack(">4siq", payload[i:i + 16]) for i in range(0, len(payload) - 15, 16)]
            kw = {"segs": [[s[2], s[1]] for s in segs]}
            if segs:
                path = self.handles.get(segs[0][0], (None, None))[0]
        rec = self.record(op, sid, path, cgi, **kw)
        fault = self.server.faults.take_op(path, op)
        if fault and fault["mode"] != "none":
            rec["fault"] = fault["mode"]
        else:
            fault = None
        answer = {kXR_open: self.do_open, kXR_stat: self.do_stat, kXR_read: self.do_read,
                  kXR_readv: self.do_readv, kXR_close: self.do_close, kXR_query: self.do_query}.get(code)
        if answer is None:
            self.error(sid, rec, kXR_Unsupported, "fakexrd: request %d not supported" % code)
            return

        def normal():
            answer(sid, rec, body, payload, path, fault)
        if fault and self.control(sid, rec, fault, normal):
            return
        with self.wlock:
            before = list(self.held)
        normal()
        self.flush_held(before)

    # -- answers -------------------------------------------------------------------------
    def plain(self, sid, rec, status, data=b""):
        rec["answer"] = {kXR_ok: "ok", kXR_error: "error"}.get(status, str(status))
        self.send(self.frame(sid, status, data))

    def error(self, sid, rec, errnum, msg):
        rec["answer"] = "error"
        self.send(self.frame(sid, kXR_error, struct.pack(">i", errnum) + msg.encode() + b"\0"))

    def control(self, sid, rec, fault, normal):
        """Faults that replace the whole answer: True if one did."""
        mode = fault["mode"]
        if mode == "wait":
            rec["answer"] = "wait"
            secs = int(fault.get("seconds", 1))
            self.send(self.frame(sid, kXR_wait, struct.pack(">i", secs) + b"fakexrd: wait\0"))
        elif mode == "waitresp_never":
            rec["answer"] = "waitresp"
            self.send(self.frame(sid, kXR_waitresp, struct.pack(">i", int(fault.get("seconds", 30)))))
        elif mode == "waitresp":
            rec["answer"] = "waitresp"
            self.send(self.frame(sid, kXR_waitresp, struct.pack(">i", int(fault.get("seconds", 5)))))
            t = threading.Timer(float(fault.get("delay", 0.3)), self.async_answer, (sid, rec, normal))
            t.daemon = True
            t.start()
        elif mode == "error":
            self.error(sid, rec, fault["errnum"], fault.get("message") or "fakexrd: injected error")
        elif mode == "redirect":
            rec["answer"] = "redirect"
            host = fault.get("host") or "127.0.0.1"
            if fault.get("opaque"):
                host += "?" + fault["opaque"]
            port = fault.get("port") or self.server.server_address[1]
            self.send(self.frame(sid, kXR_redirect, struct.pack(">i", port) + host.encode()))
        elif mode == "stall":
            rec["answer"] = "stall"
        else:
            return False
        return True

    def async_answer(self, sid, rec, normal):
        """kXR_attn + kXR_asynresp around the answer `normal` would send."""
        self.capture.frames = frames = []
        try:
            normal()
        finally:
            self.capture.frames = None
        for inner in frames:
            self.send(self.frame(b"\0\0", kXR_attn, struct.pack(">ii", kXR_asynresp, 0) + inner))
        rec["answer"] = "asynresp"

    def stat_text(self, local, st):
        ino = st.st_ino & 0x7FFFFFFFFFFFFFFF
        return ("%d %d %d %d %d %d 0444 xrootd xrootd" % (ino, st.st_size, 16, int(st.st_mtime), int(st.st_ctime),
                                                          int(st.st_atime))).encode() + b"\0"

    def lookup(self, path):
        local = self.server.index.lookup(path) if path else None
        if not local:
            return None, None
        try:
            return local, os.stat(local)
        except OSError:
            return None, None

    def do_open(self, sid, rec, body, payload, path, fault):
        local, st = self.lookup(path)
        if st is None:
            return self.error(sid, rec, kXR_NotFound, "fakexrd: no such file %s" % path)
        fh = struct.pack(">I", self.next_fh)
        self.next_fh += 1
        self.handles[fh] = (path, local)
        options = struct.unpack(">H", body[2:4])[0]
        data = fh
        if options & kXR_retstat:
            data += struct.pack(">i4s", 0, b"\0\0\0\0") + self.stat_text(local, st)
        self.plain(sid, rec, kXR_ok, data)

    def do_stat(self, sid, rec, body, payload, path, fault):
        local, st = self.lookup(path)
        if st is None:
            return self.error(sid, rec, kXR_NotFound, "fakexrd: no such file %s" % path)
        self.plain(sid, rec, kXR_ok, self.stat_text(local, st))

    def do_close(self, sid, rec, body, payload, path, fault):
        if self.handles.pop(body[0:4], None) is None:
            return self.error(sid, rec, kXR_FileNotOpen, "fakexrd: handle not open")
        self.plain(sid, rec, kXR_ok)

    def do_query(self, sid, rec, body, payload, path, fault):
        infotype = struct.unpack(">H", body[0:2])[0]
        if infotype == kXR_Qconfig:
            names = payload.rstrip(b"\0").decode("latin-1").split()
            vals = {"readv_iov_max": str(READV_IOV_MAX), "readv_ior_max": str(READV_IOR_MAX),
                    "version": "v5.5.3-fakexrd"}
            return self.plain(sid, rec, kXR_ok, "\n".join(vals.get(n, n) for n in names).encode() + b"\n")
        if infotype != kXR_Qcksum:
            return self.error(sid, rec, kXR_Unsupported, "fakexrd: query %d not supported" % infotype)
        local, st = self.lookup(path)
        if st is None:
            return self.error(sid, rec, kXR_NotFound, "fakexrd: no such file %s" % path)
        self.plain(sid, rec, kXR_ok, ("adler32 %s" % self.server.adler32(local)).encode() + b"\0")

    def file_bytes(self, local, off, n):
        with open(local, "rb") as f:
            f.seek(off)
            return f.read(max(0, n))

    def do_read(self, sid, rec, body, payload, path, fault):
        fh = body[0:4]
        off, rlen = struct.unpack(">qi", body[4:16])
        if fh not in self.handles:
            return self.error(sid, rec, kXR_FileNotOpen, "fakexrd: handle not open")
        if off < 0 or rlen < 0:
            return self.error(sid, rec, kXR_ArgInvalid, "fakexrd: bad offset or length")
        local = self.handles[fh][1]
        mode = fault["mode"] if fault else None
        want = rlen + int(fault.get("extra", 1)) if mode == "oversized" else rlen
        data = self.file_bytes(local, off, want)
        if mode == "oversized" and len(data) < want:
            data += b"X" * (want - len(data))
        if mode == "lying":
            lo = int(fault.get("at", 0))
            data = xor_range(data, off, lo, lo + int(fault.get("len", 1)))
        if mode == "close":
            after = min(int(fault.get("after", 0)), len(data))
            if after:
                self.send(self.frame(sid, kXR_oksofar, data[:after]))
            rec["answer"] = "closed"
            self.hangup()
            return
        self.send_data(sid, rec, data, fault)

    def send_data(self, sid, rec, data, fault):
        """`data` as oksofar chunks + a final ok (ok alone if small)."""
        mode = fault["mode"] if fault else None
        if mode == "truncated":
            keep = int(len(data) * float(fault.get("keep", 0.5)))
            with self.wlock:
                try:
                    self.request.sendall(self.frame(sid, kXR_ok, data)[:8 + keep])
                except OSError:
                    pass
            rec["answer"] = "truncated"
            self.hangup()
            return
        if mode == "wrong_sid":
            sid = bytes([sid[0] ^ 0xFF, sid[1] ^ 0xA5])
        chunk = self.server.chunk
        frames = []
        for i in range(0, len(data), chunk):
            last = i + chunk >= len(data)
            frames.append(self.frame(sid, kXR_ok if last else kXR_oksofar, data[i:i + chunk]))
        if not frames:
            frames.append(self.frame(sid, kXR_ok))
        rec["answer"] = "oksofar" if len(frames) > 1 else "ok"
        if mode == "reorder":
            held = b"".join(frames)
            self.held.append(held)
            t = threading.Timer(float(fault.get("hold", 2)), self.release, (held,))
            t.daemon = True
            t.start()
            rec["answer"] = "held"
            return
        for f in frames:
            self.send(f)

    def release(self, held):
        with self.wlock:
            if held not in self.held:
                return
            self.held.remove(held)
        self.send(held)

    def flush_held(self, before):
        """reorder: answers held back (`before` this request) go out after
        this request's answer."""
        with self.wlock:
            held = [h for h in before if h in self.held]
            self.held = [h for h in self.held if h not in held]
        for h in held:
            self.send(h)

    def do_readv(self, sid, rec, body, payload, path, fault):
        if len(payload) % 16 or not payload:
            return self.error(sid, rec, kXR_ArgInvalid, "fakexrd: bad readv list")
        segs = [struct.unpack(">4siq", payload[i:i + 16]) for i in range(0, len(payload), 16)]
        if len(segs) > READV_IOV_MAX:
            return self.error(sid, rec, kXR_ArgInvalid, "fakexrd: too many readv segments")
        mode = fault["mode"] if fault else None
        out = []
        for k, (fh, rlen, off) in enumerate(segs):
            if fh not in self.handles:
                return self.error(sid, rec, kXR_FileNotOpen, "fakexrd: handle not open")
            if rlen < 0 or rlen > READV_IOR_MAX or off < 0:
                return self.error(sid, rec, kXR_ArgInvalid, "fakexrd: bad readv segment")
            local = self.handles[fh][1]
            if mode == "readv_badhdr":
                off += int(fault.get("shift", 4096))
            if mode == "oversized" and k == len(segs) - 1:
                rlen += int(fault.get("extra", 1))
            data = self.file_bytes(local, off, rlen)
            if mode == "oversized" and k == len(segs) - 1 and len(data) < rlen:
                data += b"X" * (rlen - len(data))
            if mode == "lying":
                lo = int(fault.get("at", 0))
                data = xor_range(data, off, lo, lo + int(fault.get("len", 1)))
            out.append(struct.pack(">4siq", fh, len(data), off) + data)
        self.send_data(sid, rec, b"".join(out), fault)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, port, index, log, chunk, manager=False):
        self.index, self.log, self.chunk, self.manager = index, log, chunk, manager
        self.faults = Faults()
        self.lock = threading.Lock()
        self.nconn = 0
        self._adler = {}
        super().__init__(("127.0.0.1", port), Conn)

    def adler32(self, local):
        with self.lock:
            if local in self._adler:
                return self._adler[local]
        a = 1
        with open(local, "rb") as f:
            for b in iter(lambda: f.read(1 << 20), b""):
                a = zlib.adler32(b, a)
        with self.lock:
            self._adler[local] = "%08x" % a
        return self._adler[local]


# --------------------------------------------------------------------------
# the admin side (HTTP)
# --------------------------------------------------------------------------
class AdminHandler(httpbase.Handler):
    server_version = "ruciofs-fakexrd-admin"
    reasons = {200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found"}

    def _reply(self, status, obj):
        body = (json.dumps(obj) + "\n").encode()
        self._write_head(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        self.wfile.write(body)

    def _serve(self):
        xs, m, path = self.server.xrd, self.command, self.path.split("?")[0]
        try:
            n = int(self.headers.get("Content-Length") or 0)
            spec = json.loads(self.rfile.read(n)) if n else {}
            if path == "/_admin/fault" and m == "POST":
                return self._reply(201, {"id": xs.faults.add(spec)})
            if path in ("/_admin/fault", "/_admin/faults") and m == "DELETE":
                xs.faults.clear()
                return self._reply(200, {"ok": True})
            if path == "/_admin/faults" and m == "GET":
                return self._reply(200, xs.faults.listing())
            if path == "/_admin/requests" and m == "GET":
                return self._reply(200, xs.log.snapshot())
            if path == "/_admin/reset" and m == "POST":
                xs.log.reset()
                return self._reply(200, {"ok": True})
            if path == "/_admin/map" and m == "POST":
                xs.index.add(str(spec["path"]), str(spec["file"]))
                return self._reply(201, {"ok": True})
            if path == "/_admin/health" and m == "GET":
                return self._reply(200, {"ok": True, "pid": os.getpid(), "port": xs.server_address[1]})
            return self._reply(404, {"error": "no such admin route"})
        except (KeyError, TypeError, ValueError, re.error) as e:
            self._reply(400, {"error": "%s: %s" % (type(e).__name__, e)})


def main(argv=None):
    ap = argparse.ArgumentParser(description="fault-injecting fake xrootd server for the ruciofs tests")
    ap.add_argument("--lake-dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--admin-port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log", help="append one JSON line per request")
    ap.add_argument("--chunk", type=int, default=256 * 1024, help="bytes per kXR_oksofar frame")
    ap.add_argument("--manager", action="store_true", help="say it is a manager (redirector), not a data server")
    a = ap.parse_args(argv)
    xs = Server(a.port, Index(a.lake_dir), httpbase.RequestLog(a.log, MAX_LOG), max(1, a.chunk), a.manager)
    admin = httpbase.Server(("127.0.0.1", a.admin_port), AdminHandler)
    admin.xrd = xs
    threading.Thread(target=xs.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()

    def on_signal(signum, frame):
        STOP.set()
        threading.Thread(target=admin.shutdown, daemon=True).start()

    import signal
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"port": xs.server_address[1], "admin": admin.server_address[1]}, f)
        os.replace(tmp, a.port_file)
    sys.stderr.write("fakexrd listening on root://127.0.0.1:%d (admin http://127.0.0.1:%d)\n"
                     % (xs.server_address[1], admin.server_address[1]))
    sys.stderr.flush()
    try:
        admin.serve_forever(poll_interval=0.2)
    finally:
        STOP.set()
        os._exit(0)   # connection threads may stall: leave now


# --------------------------------------------------------------------------
# the handle (a process of a Lake)
# --------------------------------------------------------------------------
class FakeXrd(lakemod.LakeProcess):
    """Handle on a running fakexrd.py, a process of `lake` (stopped with
    it): lake.start_fakexrd(rse="FAKE_XRD", priority=1, prefix="//rucio")
    starts it and registers the RSE with a root protocol at it."""

    def __init__(self, lake, rse, workdir, chunk=256 * 1024, manager=False):
        self.lake, self.rse, self.workdir, self.chunk, self.manager = lake, rse, workdir, chunk, manager
        self.key = "fakexrd:" + rse
        self.port = self.admin_port = None
        self.rses = [rse]

    def _cmd(self):
        d = self.workdir
        return [lakemod.PYTHON, os.path.join(HERE, "fakexrd.py"), "--lake-dir", self.lake.lake_dir,
                "--port", str(self.port or 0), "--admin-port", str(self.admin_port or 0),
                "--port-file", os.path.join(d, "ports.json"), "--log", os.path.join(d, "requests.log"),
                "--chunk", str(self.chunk)] + (["--manager"] if self.manager else [])

    def start(self, timeout=20):
        """Start (or restart on the same ports) and wait until it answers."""
        proc = self.lake.procs.get(self.key)
        if proc is not None and proc.alive():
            return self
        os.makedirs(self.workdir, exist_ok=True)
        pf = os.path.join(self.workdir, "ports.json")
        if os.path.exists(pf):
            os.unlink(pf)
        proc = lakemod.ServerProcess(self.key, self._cmd(), os.path.join(self.workdir, "fakexrd.log"),
                                     cwd=self.workdir, detach=self.lake.detached).start()
        self.lake.procs[self.key] = proc
        deadline = time.time() + timeout
        while not os.path.exists(pf):
            self.lake._check_alive(proc, proc.log_path)
            if time.time() > deadline:
                raise RuntimeError("fakexrd did not write its ports in %ds\n%s" % (timeout, lakemod.tail(proc.log_path)))
            time.sleep(0.02)
        with open(pf) as f:
            ports = json.load(f)
        self.port, self.admin_port = ports["port"], ports["admin"]
        return self._await_health(proc, deadline, "fakexrd")

    def _admin(self, method, path, body=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=timeout)
        return lakemod.admin_call(conn, "fakexrd", method, path, body)

    def set_fault(self, match, mode, **kw):
        """See the module docstring; returns the fault id."""
        return self._admin("POST", "fault", dict(kw, match=match, mode=mode))["id"]

    def clear_faults(self):
        self._admin("DELETE", "fault")

    def faults(self):
        return self._admin("GET", "faults")

    def requests(self, op=None, path_contains=None):
        """The request log, oldest first (see the module docstring)."""
        return [r for r in self._admin("GET", "requests")
                if (op is None or r["op"] == op)
                and (path_contains is None or path_contains in (r["path"] or ""))]

    def reset(self):
        self._admin("POST", "reset")

    def serve_file(self, scope, name, local_path):
        import lakegen
        self._admin("POST", "map", {"path": lakegen.lfn2path(scope, name), "file": os.path.abspath(local_path)})

    def protocol(self, prefix="//rucio", priority=1):
        return {"scheme": "root", "hostname": "127.0.0.1", "port": self.port, "prefix": prefix,
                "priority": priority}

    def add_rse(self, name, prefix, priority=1, attributes=None):
        """Another RSE at this server with its own prefix."""
        self.lake.add_rse(name, [self.protocol(prefix, priority)], attributes)
        self.rses.append(name)
        return name

    def url(self, scope, name):
        """root://127.0.0.1:P//rucio/<hash path> (what xrdcp takes)."""
        import lakegen
        from urllib.parse import quote
        return "root://127.0.0.1:%d//rucio/%s" % (self.port, quote(lakegen.lfn2path(scope, name), safe="/"))


if __name__ == "__main__":
    main()
