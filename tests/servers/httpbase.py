"""What the test servers (rucio_emulator.py, faultstore.py, fakexrd.py,
issuer_server.py) share: the HTTP plumbing of a keep-alive HTTP/1.1
server over TLS or plain TCP on http.server, the fault table, the
request log and the process life cycle.

Standard library only. Each server runs as a process of its own, so STOP is
per server: set on SIGTERM/SIGINT, it makes waiting and streaming handlers
give up within one poll.
"""

import email.utils
import json
import os
import select
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STOP = threading.Event()


class RequestLog:
    """What a test server was asked, newest @max_items kept, each record
    also appended to the JSON-lines file @path if given."""

    def __init__(self, path=None, max_items=100000):
        self.lock = threading.Lock()
        self.items = []
        self.max_items = max_items
        self.file = open(path, "a", encoding="utf-8") if path else None

    def add(self, rec):
        self.keep(rec)
        self.write(rec)

    def keep(self, rec):
        """In memory only (the record may still change)."""
        with self.lock:
            self.items.append(rec)
            if len(self.items) > self.max_items:
                del self.items[:len(self.items) - self.max_items]

    def write(self, rec):
        """To the file, once the record is final."""
        if self.file is None:
            return
        with self.lock:
            self.file.write(json.dumps(rec) + "\n")
            self.file.flush()

    def snapshot(self):
        with self.lock:
            return [dict(r) for r in self.items]

    def reset(self):
        with self.lock:
            self.items = []


class ClientGone(Exception):
    """The client left, or must be cut off: close without an answer."""


# A client that hangs up, times out or speaks bad TLS is not a server error
# (ConnectionError, TimeoutError and ssl.SSLError are all OSErrors).
CLIENT_ERRORS = (OSError, ClientGone)


class Handler(BaseHTTPRequestHandler):
    """Subclasses answer every request in _serve()."""

    protocol_version = "HTTP/1.1"
    sys_version = ""
    timeout = 120            # idle keep-alive connections (and blocked writes)
    # Rucio runs behind Apache httpd and storage behind nginx, both set
    # TCP_NODELAY: without it the last short segment of each answer waits
    # for the client's delayed ACK (40 ms) and every request looks slow.
    disable_nagle_algorithm = True
    reasons = {}             # status -> reason phrase of the status line
    unknown_reason = "Status"
    poll = 0.05              # seconds between checks for client hang-up / stop

    def setup(self):
        # TLS handshake here, in the worker thread: a slow client must not
        # block accept()
        self._broken = False
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.settimeout(15)
                self.request.do_handshake()
            except (OSError, ssl.SSLError, ValueError):
                self._broken = True
        super().setup()

    def handle(self):
        if self._broken:
            return
        try:
            super().handle()
        except CLIENT_ERRORS:
            self.close_connection = True

    def log_message(self, fmt, *args):   # the servers keep their own logs
        pass

    def do_GET(self):
        self._serve()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = do_PATCH = do_GET

    def _serve(self):
        raise NotImplementedError

    def _write_head(self, status, *header_lists):
        """Status line, Date, Server, the (name, value) pairs of each list,
        and Connection: close when this answer ends the connection."""
        lines = ["HTTP/1.1 %d %s" % (status, self.reasons.get(status, self.unknown_reason)),
                 "Date: " + email.utils.formatdate(usegmt=True), "Server: " + self.server_version]
        for headers in header_lists:
            lines += ["%s: %s" % (k, v) for k, v in headers]
        if self.close_connection:
            lines.append("Connection: close")
        # header values may carry UTF-8 (e.g. a DID name in ExceptionMessage)
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "replace"))

    def _abort(self):
        """Close the TCP connection now (no TLS close_notify, no last chunk)."""
        self.close_connection = True
        try:
            self.wfile.flush()
        except (OSError, ValueError):
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except (OSError, ValueError):
            pass

    def _client_closed(self):
        """True if the peer closed the connection (readable with EOF)."""
        sock = self.connection
        try:
            r, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return True
        if not r:
            return False
        try:
            if not isinstance(sock, ssl.SSLSocket):
                return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
            old = sock.gettimeout()
            sock.setblocking(False)
            try:
                return sock.recv(1) == b""    # a byte read here is lost: callers close after
            finally:
                sock.settimeout(old)   # setblocking(True) would drop the idle timeout
        except (ssl.SSLWantReadError, BlockingIOError):
            return False
        except (OSError, ValueError):
            return True

    def _wait(self, seconds):
        """Wait `seconds` (None: forever). False if the client left or the
        server stops first."""
        deadline = None if seconds is None else time.monotonic() + float(seconds)
        while not STOP.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return True
            if self._client_closed():
                return False
            STOP.wait(self.poll if left is None else min(self.poll, left))
        return False


class Server(ThreadingHTTPServer):
    daemon_threads = True        # waiting handlers must not block exit
    block_on_close = False
    allow_reuse_address = True   # restart on the same port right after a stop

    def __init__(self, addr, handler, ssl_ctx=None):
        self.ssl_ctx = ssl_ctx
        super().__init__(addr, handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ssl_ctx is not None:
            # handshake later, in the worker thread (Handler.setup)
            sock = self.ssl_ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], CLIENT_ERRORS):
            return
        traceback.print_exc()


def tls_context(cert, key):
    """A server TLS context, or None (plain HTTP) without a certificate."""
    if not cert:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def serve(server, banner, port_file=None, on_exit=None):
    """Announce the port in `port_file` and `banner` on stderr, serve until
    SIGTERM/SIGINT, then leave the process (never returns)."""

    def on_signal(signum, frame):
        STOP.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if port_file:
        tmp = port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % server.server_address[1])
        os.replace(tmp, port_file)   # readers never see a half-written file
    sys.stderr.write(banner + "\n")
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        STOP.set()
        server.server_close()
        if on_exit:
            on_exit()
    # daemon handler threads may still wait in a hang or a stall: leave now
    os._exit(0)


class FaultTable:
    """Active faults: the first whose regex matches a request applies, and
    each match consumes one of its count (no count: forever)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []
        self.next_id = 1

    def _append(self, fault, **fields):
        """Activate a checked `fault` (its "_rx" among `fields`); its id."""
        with self.lock:
            fault.update(id=self.next_id, hits=0, **fields)
            self.next_id += 1
            self.items.append(fault)
            return fault["id"]

    def clear(self):
        with self.lock:
            self.items = []

    def listing(self):
        with self.lock:
            return [{k: v for k, v in f.items() if not k.startswith("_")} for f in self.items]

    def take(self, path):
        """First fault whose regex matches the decoded path; consumes one count."""
        with self.lock:
            for f in self.items:
                if f["_rx"].search(path):
                    f["hits"] += 1
                    if f.get("count") is not None:
                        f["count"] -= 1
                        if f["count"] <= 0:
                            self.items.remove(f)
                    return dict(f)
        return None
