#!/usr/bin/python3
"""Fault-injecting storage server: the lake's files over HTTP(S), with faults.

    python3 faultstore.py --lake-dir LAKE_DIR [--root DIR ...] [--port 0]
                          [--port-file F] [--tls-cert C --tls-key K] [--log REQLOG]

Standard library only (http.server.ThreadingHTTPServer, one thread per
connection, HTTP/1.1 keep-alive), listening on 127.0.0.1 only. Without
faults it answers like a correct read-only WebDAV server (nginx): GET and
HEAD, a single `Range: bytes=a-b` (also `a-` and `-n`) answered 206 with
Content-Range and Content-Length, 200 without Range, 416 with
`Content-Range: bytes */SIZE` when the range starts at or past the end (or
a > b). A Range that is not `bytes=` or holds several ranges is ignored
(200, the whole file; RFC 9110 allows that). Other methods: 405.

URL layout: ANY prefix followed by the Rucio deterministic hash path
(`<scope path>/<h[0:2]>/<h[2:4]>/<name>`, lakegen.lfn2path). The path is
percent-decoded (not '+'), then its longest tail (starting after a '/')
that is the hash path of a lake file names the file. So RSEs with different
prefixes (/rucio, /r0001/rucio, ...) can all point at one faultstore, and
their PFNs still differ. Files come from LAKE_DIR/manifest.json (the file
registered without any replica included), then from each --root DIR
(DIR/<tail>, never outside DIR), then from POST /_admin/map.

Admin routes (same server; never counted, never faulted):
    POST   /_admin/fault  {"match": REGEX, "mode": MODE, "count": N?, ...}
             -> 201 {"id": N}. REGEX is re.search()ed on the DECODED path;
             the first matching fault applies; each matching request
             consumes one count (no count: forever).
    DELETE /_admin/fault               clear all faults (also /_admin/faults)
    GET    /_admin/faults              active faults (with "hits")
    GET    /_admin/requests            [{"method", "path" (decoded), "range"
             (header or null), "status" (null while in progress, 0 = no
             answer), "bytes_sent" (body bytes), "auth" (bool: an
             Authorization header came; its value is NEVER recorded),
             "host" (Host header), "time" (epoch s), "ms", "fault" (mode or
             null), "fault_at" (adler_keep: offset used)}], oldest first
    POST   /_admin/reset               clear the request log (faults stay)
    POST   /_admin/map    {"path": HASH_PATH, "file": LOCAL_PATH}
             serve LOCAL_PATH under that hash path (a file a test made)
    GET    /_admin/health

Fault modes (parameters in the same JSON object):
    wrongbytes {at, len=1}  right status, headers and length, but the file's
                            bytes [at, at+len) are XORed with 0x5a where the
                            answered range covers them
    adler_keep {at}         four bytes at file offsets o..o+3 changed by
                            +1, -1, -1, +1 (or -1, +1, +1, -1): the sum of
                            the bytes and the position-weighted sum both stay
                            the same, so zlib.adler32 of the whole file is
                            unchanged while md5 changes. o is the first
                            offset >= at (within 64 KiB) where one of the two
                            patterns changes no byte across 0/255; it is in
                            the request log ("fault_at"). A run of 0x00 or
                            0xff bytes has none: the answer is then unchanged
                            and fault_at is null. Only bytes inside the
                            answered range change.
    trickle {rate}          the body at `rate` bytes/s
    stall {after=0, seconds?}  headers and `after` body bytes, then nothing
                            until the client goes away (or `seconds` pass,
                            or the server stops); then the connection closes
    short {missing=1}       body shorter by `missing` bytes, then close
    long {extra=1}          `extra` bytes more than Content-Length, then close
    bad_range {shift=1}     206 whose Content-Range (and body) is the asked
                            range moved by `shift` bytes (the other way if
                            that leaves the file; one byte shorter if the
                            range is the whole file); without Range: 206 for
                            bytes 0..size-2
    status {status=503, body?}  that status with a small body
    redirect {location, status=302}  Location with "{path}" replaced by the
                            original (still encoded) path and "{query}" by the
                            query string (without '?')
    multipart {lie=none}    a Range of several closed ranges is answered 206
                            multipart/byteranges (nginx's layout; without this
                            fault such a Range is ignored: 200). lie: none
                            (right), shift (the first part's range and bytes
                            one byte on), drop (the last part left out), dup
                            (the first part again instead of the last), extra
                            (junk after the closing delimiter), short (the body
                            cut 10 bytes before its end, then close), single
                            (only the first range, as a plain 206). A single
                            range is answered as without faults
    drop                    close the connection without answering
    delay {seconds=5}       wait (stops early if the client leaves), then the
                            normal answer
    none                    normal answer (counts hits)
Faults apply to any method and even to paths that name no file (status,
redirect, drop and delay act before the file is looked up).

SIGTERM/SIGINT stop the server at once: stalled, trickling and delayed
handlers give up within 0.1 s, and they also give up when their client hangs
up, so no thread outlives its client.
"""

import argparse
import email.utils
import json
import os
import re
import ssl
import sys
import threading
import time
from urllib.parse import unquote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import httpbase  # noqa: E402
from httpbase import STOP, ClientGone  # noqa: E402

MODES = ("wrongbytes", "adler_keep", "trickle", "stall", "short", "long", "bad_range", "status",
         "redirect", "drop", "delay", "none", "multipart")
LIES = ("none", "shift", "drop", "dup", "extra", "short", "single")
MULTIPART_MAX = 64 * 1024 * 1024  # bytes of a multipart body built in memory
CHUNK = 256 * 1024
MAX_BODY = 1024 * 1024          # admin request bodies
MAX_LOG = 200000                # request log entries kept
ADLER_SEARCH = 64 * 1024
XOR_5A = bytes(b ^ 0x5A for b in range(256))

REASONS = {200: "OK", 206: "Partial Content", 301: "Moved Permanently", 302: "Found",
           303: "See Other", 307: "Temporary Redirect", 308: "Permanent Redirect",
           400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 416: "Range Not Satisfiable", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}


# --------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------
class Index:
    """Hash path -> local file."""

    def __init__(self, lake_dir=None, roots=()):
        self.lock = threading.Lock()
        self.paths = {}
        self.roots = [os.path.realpath(r) for r in roots]
        if lake_dir:
            self._load_manifest(os.path.abspath(lake_dir))

    def _load_manifest(self, lake_dir):
        with open(os.path.join(lake_dir, "manifest.json"), encoding="utf-8") as f:
            manifest = json.load(f)
        for e in manifest:
            rel = e["pfn_path"]
            # derive from the lake dir (not local_path) so a moved cache still works
            if e.get("rses"):
                local = os.path.join(lake_dir, "rse", e["rses"][0], "rucio", rel)
            else:
                local = os.path.join(lake_dir, "norse", rel)
            self.paths[rel] = local

    def add(self, hash_path, local):
        with self.lock:
            self.paths[hash_path.lstrip("/")] = os.path.abspath(local)

    def lookup(self, path):
        """The local file for a decoded URL path, or None."""
        tails = [path[i + 1:] for i, c in enumerate(path) if c == "/" and i + 1 < len(path)]
        with self.lock:
            for t in tails:
                local = self.paths.get(t)
                if local is not None:
                    return local
        for t in tails:
            if ".." in t.split("/"):
                continue
            for root in self.roots:
                cand = os.path.realpath(os.path.join(root, t))
                if cand.startswith(root + os.sep) and os.path.isfile(cand):
                    return cand
        return None


# --------------------------------------------------------------------------
# faults and the request log
# --------------------------------------------------------------------------
def _num(spec, key, default, kind=int, minimum=0):
    v = spec.get(key, default)
    if v is None:
        raise ValueError("%s is required for mode %s" % (key, spec.get("mode")))
    v = kind(v)
    if v < minimum:
        raise ValueError("%s must be >= %s" % (key, minimum))
    return v


def check_fault(spec):
    """Validate and normalise a fault spec (raises ValueError/TypeError)."""
    if not isinstance(spec, dict):
        raise TypeError("body must be a JSON object")
    mode = spec.get("mode")
    if mode not in MODES:
        raise ValueError("mode must be one of %s" % ", ".join(MODES))
    out = dict(spec)
    out["match"] = str(spec.get("match", ""))
    try:
        re.compile(out["match"])
    except re.error as e:
        raise ValueError("bad match regex: %s" % e)
    if spec.get("count") is not None:
        out["count"] = _num(spec, "count", None, minimum=1)
    if mode == "wrongbytes":
        out["at"], out["len"] = _num(spec, "at", None), _num(spec, "len", 1, minimum=1)
    elif mode == "adler_keep":
        out["at"] = _num(spec, "at", None)
    elif mode == "trickle":
        out["rate"] = _num(spec, "rate", None, float, 1)
    elif mode == "stall":
        out["after"] = _num(spec, "after", 0)
        if spec.get("seconds") is not None:
            out["seconds"] = _num(spec, "seconds", None, float)
    elif mode == "short":
        out["missing"] = _num(spec, "missing", 1, minimum=1)
    elif mode == "long":
        out["extra"] = _num(spec, "extra", 1, minimum=1)
    elif mode == "bad_range":
        out["shift"] = _num(spec, "shift", 1, minimum=1)
    elif mode == "status":
        out["status"] = _num(spec, "status", 503, minimum=100)
        if out["status"] > 599:
            raise ValueError("status must be < 600")
    elif mode == "redirect":
        if not isinstance(spec.get("location"), str) or not spec["location"]:
            raise ValueError("redirect needs a location")
        out["status"] = _num(spec, "status", 302, minimum=300)
    elif mode == "delay":
        out["seconds"] = _num(spec, "seconds", 5, float)
    elif mode == "multipart":
        out["lie"] = spec.get("lie", "none")
        if out["lie"] not in LIES:
            raise ValueError("lie must be one of %s" % ", ".join(LIES))
    return out


class Faults(httpbase.FaultTable):
    def add(self, spec):
        f = check_fault(spec)
        return self._append(f, _rx=re.compile(f["match"]))


class RequestLog(httpbase.RequestLog):
    """Kept when a request starts, written to the file once its answer
    is known."""

    def __init__(self, path=None):
        super().__init__(path, MAX_LOG)

    start = httpbase.RequestLog.keep
    finish = httpbase.RequestLog.write


# --------------------------------------------------------------------------
# ranges and body transforms
# --------------------------------------------------------------------------
def parse_range(header, size):
    """(start, end) inclusive for a single satisfiable range, None to ignore
    the header (answer 200), or "416"."""
    if header is None:
        return None
    h = header.strip()
    if not h.lower().startswith("bytes="):
        return None
    spec = h[6:].strip()
    if "," in spec:
        return None
    m = re.fullmatch(r"(\d*)\s*-\s*(\d*)", spec)
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None
    a, b = m.group(1), m.group(2)
    if a == "":
        n = int(b)
        if n == 0 or size == 0:
            return "416"
        return (max(0, size - n), size - 1)
    start = int(a)
    end = size - 1 if b == "" else int(b)
    if start >= size or start > end:
        return "416"
    return (start, min(end, size - 1))


def parse_ranges(header, size):
    """[(start, end), ...] for a Range of two or more closed ranges within
    the file, else None."""
    if header is None or not header.strip().lower().startswith("bytes="):
        return None
    out = []
    for one in header.strip()[6:].split(","):
        m = re.fullmatch(r"\s*(\d+)-(\d+)\s*", one)
        if not m:
            return None
        a, b = int(m.group(1)), int(m.group(2))
        if a > b or b >= size:
            return None
        out.append((a, b))
    return out if len(out) > 1 else None


def multipart_body(local, size, ranges, lie, boundary="00000000000000000042"):
    """The multipart/byteranges body for @ranges, lying as @lie says."""
    parts = list(ranges)
    if lie == "shift":
        a, b = parts[0]
        parts[0] = (a + 1, b + 1) if b + 1 < size else (a - 1, b - 1)
    elif lie == "drop":
        parts = parts[:-1]
    elif lie == "dup":
        parts = parts[:-1] + [parts[0]]
    out = []
    with open(local, "rb") as f:
        for a, b in parts:
            f.seek(a)
            out.append(b"\r\n--%s\r\nContent-Type: application/octet-stream\r\n"
                       b"Content-Range: bytes %d-%d/%d\r\n\r\n" % (boundary.encode(), a, b, size))
            out.append(f.read(b - a + 1))
    out.append(b"\r\n--%s--\r\n" % boundary.encode())
    if lie == "extra":
        out.append(b"junk")
    body = b"".join(out)
    if len(body) > MULTIPART_MAX:
        raise ClientGone()
    return body


def adler_patch(path, at, size):
    """{offset: new byte} for adler_keep at the first fitting offset >= at."""
    if at + 4 > size:
        return None, None
    with open(path, "rb") as f:
        f.seek(at)
        data = f.read(min(ADLER_SEARCH + 3, size - at))
    for i in range(0, len(data) - 3):
        b = data[i:i + 4]
        for d in ((1, -1, -1, 1), (-1, 1, 1, -1)):
            if all(0 <= b[k] + d[k] <= 255 for k in range(4)):
                return at + i, {at + i + k: b[k] + d[k] for k in range(4)}
    return None, None


def transform(fault, patch):
    """A function (offset, bytes) -> bytes changing the body as the fault says."""
    if fault and fault["mode"] == "wrongbytes":
        lo, hi = fault["at"], fault["at"] + fault["len"]

        def xor(pos, data):
            i, j = max(lo, pos) - pos, min(hi, pos + len(data)) - pos
            if i >= j:
                return data
            return data[:i] + data[i:j].translate(XOR_5A) + data[j:]
        return xor
    if patch:
        def add(pos, data):
            hit = [(o - pos, v) for o, v in patch.items() if pos <= o < pos + len(data)]
            if not hit:
                return data
            ba = bytearray(data)
            for i, v in hit:
                ba[i] = v
            return bytes(ba)
        return add
    return None


def file_chunks(path, start, end, change=None, chunk=CHUNK):
    """Bytes start..end (inclusive) of the file, in chunks."""
    with open(path, "rb") as f:
        f.seek(start)
        pos = start
        while pos <= end:
            data = f.read(min(chunk, end - pos + 1))
            if not data:
                raise ClientGone()      # the file shrank under us: cut the answer
            yield change(pos, data) if change else data
            pos += len(data)


def bad_range(start, end, size, shift):
    """The (wrong) range a bad_range answer claims."""
    n = end - start + 1
    if start + shift + n <= size:
        return start + shift, end + shift
    if start - shift >= 0:
        return start - shift, end - shift
    return start, max(start, end - 1)


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------
class Handler(httpbase.Handler):
    server_version = "ruciofs-faultstore"
    reasons = REASONS

    do_PROPFIND = do_MKCOL = do_MOVE = do_COPY = httpbase.Handler.do_GET

    # -- plumbing -----------------------------------------------------------------
    def _read_body(self):
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ClientGone()
        if n < 0 or n > MAX_BODY:
            raise ClientGone()      # nothing sane to answer: close
        data = self.rfile.read(n) if n else b""
        if len(data) != n:
            raise ClientGone()
        return data

    def _head(self, status, headers, length):
        self._write_head(status, headers, [] if length is None else [("Content-Length", "%d" % length)])

    def _simple(self, status, body, headers=(), ctype="text/html"):
        body = body.encode() if isinstance(body, str) else body
        self._head(status, [("Content-Type", ctype)] + list(headers), len(body))
        if self.command != "HEAD":
            self.wfile.write(body)

    def _write(self, rec, data):
        if STOP.is_set():
            raise ClientGone()
        self.wfile.write(data)
        rec["bytes_sent"] += len(data)

    # -- requests -----------------------------------------------------------------
    def _serve(self):
        target = self.path
        if "://" in target.split("?", 1)[0]:
            rest = target.split("://", 1)[1]
            target = "/" + rest.split("/", 1)[1] if "/" in rest else "/"
        raw_path, _, query = target.partition("?")
        path = unquote(raw_path, errors="replace")
        srv = self.server
        if path.startswith("/_admin/"):
            self._admin(path)
            return
        t0 = time.time()
        rec = {"method": self.command, "path": path, "range": self.headers.get("Range"), "status": None,
               "bytes_sent": 0, "auth": "Authorization" in self.headers, "host": self.headers.get("Host"),
               "time": round(t0, 6), "ms": None, "fault": None, "fault_at": None}
        srv.log.start(rec)
        try:
            self._read_body()
            fault = srv.faults.take(path)
            if fault and fault["mode"] != "none":
                rec["fault"] = fault["mode"]
            self._answer(rec, fault, path, raw_path, query)
        except (OSError, ClientGone, ssl.SSLError):
            self.close_connection = True
            raise ClientGone()
        finally:
            if rec["status"] is None:
                rec["status"] = 0
            rec["ms"] = round((time.time() - t0) * 1000, 1)
            srv.log.finish(rec)

    def _answer(self, rec, fault, path, raw_path, query):
        mode = fault["mode"] if fault else None
        if mode == "delay":
            if not self._wait(fault["seconds"]):
                self._abort()
                return
        elif mode == "drop":
            self._abort()
            return
        elif mode == "status":
            st = fault["status"]
            rec["status"] = st
            self._simple(st, fault.get("body", "<html><body>%d</body></html>\n" % st))
            return
        elif mode == "redirect":
            loc = fault["location"].replace("{path}", raw_path).replace("{query}", query)
            rec["status"] = fault["status"]
            self._simple(fault["status"], "<html><body>moved</body></html>\n", [("Location", loc)])
            return
        if self.command not in ("GET", "HEAD"):
            rec["status"] = 405
            self._simple(405, "<html><body>405</body></html>\n", [("Allow", "GET, HEAD")])
            return
        local = self.server.index.lookup(path)
        st = None
        try:
            st = os.stat(local) if local else None
        except OSError:
            pass
        if st is None or not os.path.isfile(local):
            rec["status"] = 404
            self._simple(404, "<html><body>404 Not Found</body></html>\n")
            return
        self._file(rec, fault, local, st)

    def _file(self, rec, fault, local, st):
        size = st.st_size
        mode = fault["mode"] if fault else None
        rng = parse_range(self.headers.get("Range"), size)
        common = [("Content-Type", "application/octet-stream"), ("Accept-Ranges", "bytes"),
                  ("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True)),
                  ("ETag", '"%x-%x"' % (int(st.st_mtime), size))]
        if rng == "416":
            rec["status"] = 416
            self._simple(416, "<html><body>416</body></html>\n", [("Content-Range", "bytes */%d" % size)])
            return
        if mode == "multipart" and rng is None:
            ranges = parse_ranges(self.headers.get("Range"), size)
            if ranges:
                self._multipart(rec, fault, local, size, ranges, common)
                return
        status, start, end = (200, 0, size - 1) if rng is None else (206, rng[0], rng[1])
        if mode == "bad_range":
            if status == 206:
                start, end = bad_range(start, end, size, fault["shift"])
            else:
                end = max(0, size - 2)
            status = 206
        hdrs = list(common)
        if status == 206:
            hdrs.append(("Content-Range", "bytes %d-%d/%d" % (start, end, size)))
        length = end - start + 1 if size else 0
        patch = None
        if mode == "adler_keep":
            rec["fault_at"], patch = adler_patch(local, fault["at"], size)
        change = transform(fault, patch)
        rec["status"] = status
        if mode in ("short", "long", "stall"):
            self.close_connection = True
        self._head(status, hdrs, length)
        if self.command == "HEAD" or length == 0:
            if mode == "stall":
                self._wait(fault.get("seconds"))
                self._abort()
            return
        body = file_chunks(local, start, end, change)
        if mode == "trickle":
            self._trickle(rec, body, fault["rate"])
        elif mode == "stall":
            self._send_upto(rec, body, min(fault["after"], length))
            self._wait(fault.get("seconds"))
            self._abort()
        elif mode == "short":
            self._send_upto(rec, body, max(0, length - fault["missing"]))
            self._abort()
        elif mode == "long":
            for data in body:
                self._write(rec, data)
            extra = b""
            if end + 1 < size:
                with open(local, "rb") as f:
                    f.seek(end + 1)
                    extra = f.read(fault["extra"])
            self._write(rec, extra + b"X" * (fault["extra"] - len(extra)))
            self._abort()
        else:
            for data in body:
                self._write(rec, data)

    def _multipart(self, rec, fault, local, size, ranges, common):
        lie = fault["lie"]
        rec["status"] = 206
        if lie == "single":
            a, b = ranges[0]
            self._head(206, common + [("Content-Range", "bytes %d-%d/%d" % (a, b, size))], b - a + 1)
            if self.command != "HEAD":
                self._write(rec, b"".join(file_chunks(local, a, b)))
            return
        body = multipart_body(local, size, ranges, lie)
        hdrs = [(k, v) for k, v in common if k != "Content-Type"]
        hdrs.append(("Content-Type", "multipart/byteranges; boundary=00000000000000000042"))
        self._head(206, hdrs, len(body))
        if self.command == "HEAD":
            return
        if lie == "short":
            self.close_connection = True
            self._write(rec, body[:-10])
            self._abort()
            return
        self._write(rec, body)

    def _send_upto(self, rec, body, limit):
        for data in body:
            if rec["bytes_sent"] >= limit:
                break
            self._write(rec, data[:limit - rec["bytes_sent"]])
        body.close()

    def _trickle(self, rec, body, rate):
        piece = max(1, int(rate // 20))
        t0 = time.monotonic()
        for data in body:
            for i in range(0, len(data), piece):
                self._write(rec, data[i:i + piece])
                due = t0 + rec["bytes_sent"] / rate - time.monotonic()
                if due > 0 and not self._wait(due):
                    raise ClientGone()

    # -- admin --------------------------------------------------------------------
    def _admin(self, path):
        srv, m = self.server, self.command

        def ok(obj=None, status=200):
            self._simple(status, json.dumps(obj if obj is not None else {"ok": True}) + "\n",
                         ctype="application/json")

        try:
            body = self._read_body()
            spec = json.loads(body) if body else {}
            if path == "/_admin/fault" and m == "POST":
                return ok({"id": srv.faults.add(spec)}, 201)
            if path in ("/_admin/fault", "/_admin/faults") and m == "DELETE":
                srv.faults.clear()
                return ok()
            if path == "/_admin/faults" and m == "GET":
                return ok(srv.faults.listing())
            if path == "/_admin/requests" and m == "GET":
                return ok(srv.log.snapshot())
            if path == "/_admin/reset" and m == "POST":
                srv.log.reset()
                return ok()
            if path == "/_admin/map" and m == "POST":
                srv.index.add(str(spec["path"]), str(spec["file"]))
                return ok(status=201)
            if path == "/_admin/health" and m == "GET":
                return ok({"ok": True, "pid": os.getpid()})
            return self._simple(404, '{"error": "no such admin route"}\n', ctype="application/json")
        except (KeyError, TypeError, ValueError) as e:
            self._simple(400, json.dumps({"error": "%s: %s" % (type(e).__name__, e)}) + "\n",
                         ctype="application/json")


class Server(httpbase.Server):
    request_queue_size = 1024

    def __init__(self, port, index, log, ssl_ctx=None):
        self.index, self.log = index, log
        self.faults = Faults()
        super().__init__(("127.0.0.1", port), Handler, ssl_ctx)


def main(argv=None):
    ap = argparse.ArgumentParser(description="fault-injecting storage server for the ruciofs tests")
    ap.add_argument("--lake-dir", help="a generated lake (manifest.json, rse/, norse/)")
    ap.add_argument("--root", action="append", default=[], help="serve DIR/<hash path> too")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--log", help="append one JSON line per finished request")
    a = ap.parse_args(argv)
    ctx = httpbase.tls_context(a.tls_cert, a.tls_key)
    server = Server(a.port, Index(a.lake_dir, a.root), RequestLog(a.log), ctx)
    httpbase.serve(server, "faultstore listening on %s://127.0.0.1:%d"
                   % ("https" if ctx else "http", server.server_address[1]), a.port_file)


if __name__ == "__main__":
    main()
