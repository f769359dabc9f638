"""Where the daemon connects and what it asks the catalogue for: every
scheme it can read, Rucio's PFN fragments, which hosts it may reach
(storage_hosts, deny_nets, redirects it follows itself) and which of them
see the bearer token.

Every server here listens on 127.0.0.1: the lake's nginx (also its
plain-http listener) and a small redirecting HTTPS server of this module.
The link-local rules themselves are unit tests (tests/unit/test_net.c):
no test may make the daemon try such an address, even if the code were
wrong. Here the same refusal path runs on loopback addresses, which are
harmless to try: -o deny_nets=127.0.0.2/32 for a literal address, and
for a name, "localhost", which curl resolves to ::1 and 127.0.0.1 without
asking a resolver. Mounts that reach "localhost" deny ::1/128, so that
they connect to 127.0.0.1 only."""
import hashlib
import http.server
import json
import os
import ssl
import threading
import time

import pytest

from rucio_client import replicated, find_path


def sha256_of(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def pick_file(lake, index):
    """The @index-th largest file under 4 MiB with a plain name: each
    test reads its own, so no test sees another's requests."""
    files = sorted((f for f in replicated(lake)
                    if 0 < f["size"] < 4 << 20 and f["name"].isascii()
                    and " " not in f["name"] and "/" not in f["name"]),
                   key=lambda f: (-f["size"], f["scope"], f["name"]))
    return files[index]


def nginx_log(lake):
    return os.path.join(lake.workdir, "nginx", "access.log")


def nginx_mark(lake):
    """Where nginx's access log ends now: nginx_entries(since=) this."""
    return os.path.getsize(nginx_log(lake))


def nginx_entries(lake, port, pfn_path, since=0, wait=False):
    """nginx's access-log entries of @pfn_path on listener @port. nginx
    logs a request after its last byte is sent, so a client can have
    the bytes first: @wait polls (5 s at most) until there is one."""
    end = time.monotonic() + (5 if wait else 0)
    while True:
        out = []
        with open(nginx_log(lake)) as fh:
            fh.seek(since)
            for line in fh:
                try:
                    e = json.loads(line)
                except ValueError:
                    continue
                if e.get("port") == port and \
                        pfn_path in (e.get("uri") or ""):
                    out.append(e)
        if out or time.monotonic() >= end:
            return out
        time.sleep(0.05)


def oidc_mount(lake, mount_factory, tmp_path, *opts):
    """A mount whose catalogue token is a JWT, so storage may get it."""
    tmp_path.mkdir(exist_ok=True)
    tok = tmp_path / "token"
    tok.write_text(lake.issuer.mint("alice", lifetime=3600) + "\n")
    os.chmod(tok, 0o600)
    return mount_factory(lake, "token_file=" + str(tok), *opts,
                         cfg_kw={"auth_type": "oidc", "password": None})


def test_plain_http_rse_reads_by_default(lake, mount_factory, tmp_path):
    """Rucio returns no PFN of a scheme it was not asked for: an RSE
    that speaks only plain http must be asked for by default, and read
    without the bearer token."""
    rse = "HTTP_ONLY_DISK"
    port = lake.ports["nginx_http"]
    lake.add_rse(rse, [{"scheme": "http", "hostname": "127.0.0.1",
                        "port": port, "prefix": "/rucio"}], exist_ok=True)
    f = pick_file(lake, 0)
    lake.add_replica(f["scope"], f["name"], rse)
    try:
        m = oidc_mount(lake, mount_factory, tmp_path, "rse_expression=" + rse)
        assert sha256_of(find_path(m, f)) == f["sha256"], m.logtext()
        got = nginx_entries(lake, port, f["pfn_path"], wait=True)
        assert got and all(e["status"] == 206 for e in got), got
        # the mount holds a JWT; plain http never carries it ...
        assert not [e for e in got if e["authorization"]], got
        # ... while https to the replica's own host does
        g = pick_file(lake, 1)
        m2 = oidc_mount(lake, mount_factory, tmp_path / "b",
                        "rse_expression=NGINX_DISK")
        assert sha256_of(find_path(m2, g)) == g["sha256"]
        got = nginx_entries(lake, lake.ports["nginx"], g["pfn_path"], wait=True)
        assert got and all(e["authorization"] == "Bearer" for e in got), got
    finally:
        lake.remove_replica(f["scope"], f["name"], rse)


def test_simulate_multirange_fragment_is_cut(lake41, mount_factory):
    """Rucio appends "&#multirange=false&nconnections=N" to the PFNs of an
    RSE with simulate_multirange: the fragment is for the client, and
    sent encoded it names a file that does not exist."""
    rse = "MULTIRANGE_DISK"
    port = lake41.ports["nginx"]
    lake41.add_rse(rse, [{"scheme": "https", "hostname": "127.0.0.1",
                          "port": port, "prefix": "/rucio"}],
                   {"simulate_multirange": 2}, exist_ok=True)
    f = pick_file(lake41, 2)
    lake41.add_replica(f["scope"], f["name"], rse)
    try:
        m = mount_factory(lake41, "rse_expression=" + rse)
        assert sha256_of(find_path(m, f)) == f["sha256"], m.logtext()
        pfns = os.getxattr(find_path(m, f), "user.rucio.replicas").decode()
        assert pfns.endswith(f["pfn_path"]) and "multirange" not in pfns
        got = nginx_entries(lake41, port, f["pfn_path"], wait=True)
        assert got and all(e["status"] == 206 and
                           e["uri"].endswith(f["pfn_path"]) for e in got)
    finally:
        lake41.remove_replica(f["scope"], f["name"], rse)


NO_V6_LOOPBACK = "deny_nets=::1/128"   # "localhost" then means 127.0.0.1


def test_storage_hosts_refuses_a_host_not_listed(lake41, mount_factory):
    """storage_hosts=localhost: the replica at 127.0.0.1 is refused
    before any connection (one log line says why) and the read goes on
    from the next replica, at localhost, which is listed."""
    port = lake41.ports["nginx"]
    lake41.add_rse("LOCALHOST_DISK",
                   [{"scheme": "https", "hostname": "localhost",
                     "port": port, "prefix": "/rucio"}], exist_ok=True)
    f = pick_file(lake41, 3)
    lake41.add_replica(f["scope"], f["name"], "LOCALHOST_DISK")
    try:
        mark = nginx_mark(lake41)
        m = mount_factory(lake41, "storage_hosts=localhost", NO_V6_LOOPBACK,
                          "rse_expression=NGINX_DISK|LOCALHOST_DISK")
        assert sha256_of(find_path(m, f)) == f["sha256"], m.logtext()
        got = nginx_entries(lake41, port, f["pfn_path"], mark, wait=True)
        assert got and all(e["host"] == "localhost" for e in got), got
        log = m.logtext()
        want = ("NGINX_DISK (https://127.0.0.1:%d/rucio/%s): refused: "
                "address 127.0.0.1 is not in storage_hosts"
                % (port, f["pfn_path"]))
        assert want in log, log
        # names only: a name not listed is refused before it is resolved
        mark = nginx_mark(lake41)
        m = mount_factory(lake41, "storage_hosts=*.example.org",
                          "rse_expression=NGINX_DISK|LOCALHOST_DISK")
        with pytest.raises(OSError) as e:
            sha256_of(find_path(m, f))
        assert e.value.errno == 5
        log = m.logtext()
        assert ("LOCALHOST_DISK (https://localhost:%d/rucio/%s): refused: "
                "host localhost is not in storage_hosts"
                % (port, f["pfn_path"])) in log, log
        assert not nginx_entries(lake41, port, f["pfn_path"], mark)
    finally:
        lake41.remove_replica(f["scope"], f["name"], "LOCALHOST_DISK")


def test_a_name_is_refused_by_the_address_it_resolves_to(lake41,
                                                         mount_factory):
    """The address check runs on every address curl is about to connect
    to, here both of "localhost" (deny_nets standing in for the
    link-local ranges): nothing reaches the server, and the log says
    why."""
    port = lake41.ports["nginx"]
    lake41.add_rse("LOCALHOST_DISK",
                   [{"scheme": "https", "hostname": "localhost",
                     "port": port, "prefix": "/rucio"}], exist_ok=True)
    f = pick_file(lake41, 4)
    lake41.add_replica(f["scope"], f["name"], "LOCALHOST_DISK")
    try:
        mark = nginx_mark(lake41)
        m = mount_factory(lake41, "deny_nets=127.0.0.1/32;::1/128",
                          "rse_expression=LOCALHOST_DISK")
        with pytest.raises(OSError) as e:
            sha256_of(find_path(m, f))
        assert e.value.errno == 5
        assert not nginx_entries(lake41, port, f["pfn_path"], mark)
        log = m.logtext()
        assert ("LOCALHOST_DISK (https://localhost:%d/rucio/%s): refused: "
                "address" % (port, f["pfn_path"])) in log, log
        assert "is in deny_nets" in log
        assert m.alive()
    finally:
        lake41.remove_replica(f["scope"], f["name"], "LOCALHOST_DISK")


class Redirector:
    """An HTTPS server on 127.0.0.1 (the lake's certificate) that answers
    GET /<mode>/<rest> with a 302 to where <mode> says, and records for
    each request whether an Authorization header came (never its value)."""

    def __init__(self, lake):
        self.lake = lake
        self.seen = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                mode, _, rest = self.path.lstrip("/").partition("/")
                with outer.lock:
                    outer.seen.append((self.path,
                                       "Authorization" in self.headers))
                loc = outer.target(mode, rest)
                body = b"<html>moved</html>\n"
                self.send_response(302 if loc else 404)
                if loc:
                    self.send_header("Location", loc)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                     Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(lake.server_cert, lake.server_key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket,
                                            server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def target(self, mode, rest):
        n, h = self.lake.ports["nginx"], self.lake.ports["nginx_http"]
        return {
            # the replica's own host, another port: the token may follow
            "same": "https://127.0.0.1:%d/%s?authz=hop-secret" % (n, rest),
            # another host name of the same server
            "other": "https://localhost:%d/%s" % (n, rest),
            "plain": "http://127.0.0.1:%d/%s" % (h, rest),
            # refused by -o deny_nets=127.0.0.2/32: never connected to
            "deny": "https://127.0.0.2:%d/%s?sig=hop-secret" % (n, rest),
            "loop": "https://127.0.0.1:%d/loop/%s" % (self.port, rest),
        }.get(mode)

    def requests(self, pfn_path):
        with self.lock:
            return [a for p, a in self.seen if p.endswith(pfn_path)]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


REDIRECT_MODES = ("same", "other", "plain", "deny", "loop")


@pytest.fixture(scope="module")
def redirector(lake41):
    r = Redirector(lake41)
    try:
        for mode in REDIRECT_MODES:
            rse = "REDIR_" + mode.upper()
            lake41.add_rse(rse, [{"scheme": "https",
                                  "hostname": "127.0.0.1",
                                  "port": r.port,
                                  "prefix": "/%s/rucio" % mode}],
                           exist_ok=True)
            # registered by an earlier run of this module: follow the port
            lake41.admin("POST", "rse", {"rse": rse,
                                         "ports": {"https": r.port}})
        yield r
    finally:
        r.stop()


def redirected_read(lake, mount_factory, tmp_path, redirector, mode, index,
                    *opts, fallback=None):
    """Reads file @index through REDIR_<mode> (and @fallback, tried
    after it). Returns (mount, file, sha256 or errno, nginx mark)."""
    f = pick_file(lake, index)
    rses = ["REDIR_" + mode.upper()] + ([fallback] if fallback else [])
    for rse in rses:
        lake.add_replica(f["scope"], f["name"], rse)
    try:
        mark = nginx_mark(lake)
        m = oidc_mount(lake, mount_factory, tmp_path,
                       "rse_expression=" + "|".join(rses), *opts)
        try:
            got = sha256_of(find_path(m, f))
        except OSError as e:
            got = e.errno
        return m, f, got, mark
    finally:
        for rse in rses:
            lake.remove_replica(f["scope"], f["name"], rse)


@pytest.mark.parametrize("mode,opts,token", [
    ("same", (), True),
    ("other", (NO_V6_LOOPBACK,), False),
    ("other", ("storage_hosts=127.0.0.1;localhost", NO_V6_LOOPBACK), True),
    ("plain", ("storage_hosts=127.0.0.1",), False),
])
def test_token_follows_a_redirect_only_where_allowed(
        lake41, mount_factory, tmp_path, redirector, mode, opts, token):
    """The daemon follows redirects itself and decides for each hop: the
    token goes to the replica's own host over TLS, and to a redirect
    target only if that is the same host or storage_hosts names it;
    never over plain http."""
    index = {"same": 5, "other": 6 if token else 7, "plain": 8}[mode]
    m, f, got, mark = redirected_read(lake41, mount_factory, tmp_path,
                                      redirector, mode, index, *opts)
    assert got == f["sha256"], m.logtext()
    # the first hop, to the replica's own host over TLS, had it
    first = redirector.requests(f["pfn_path"])
    assert first and all(first), first
    port = lake41.ports["nginx_http" if mode == "plain" else "nginx"]
    hops = nginx_entries(lake41, port, f["pfn_path"], mark, wait=True)
    assert hops and all(e["status"] == 206 for e in hops), hops
    assert all(e["authorization"] == ("Bearer" if token else "")
               for e in hops), hops
    if mode == "other":
        assert all(e["host"] == "localhost" for e in hops), hops


def test_redirect_to_a_host_not_listed_is_refused_and_named(
        lake41, mount_factory, tmp_path, redirector):
    """storage_hosts lets the replica's host in, not where it redirects:
    the target is refused before any connection and named in the log."""
    m, f, got, mark = redirected_read(
        lake41, mount_factory, tmp_path, redirector, "deny", 9,
        "storage_hosts=127.0.0.1")
    assert got == 5, m.logtext()    # EIO: its only replica was refused
    assert not nginx_entries(lake41, lake41.ports["nginx"], f["pfn_path"],
                             mark)
    want = ("REDIR_DENY (https://127.0.0.1:%d/deny/rucio/%s -> "
            "https://127.0.0.2:%d/rucio/%s): refused: address 127.0.0.2 is "
            "not in storage_hosts"
            % (redirector.port, f["pfn_path"], lake41.ports["nginx"],
               f["pfn_path"]))
    assert want in m.logtext(), m.logtext()
    assert m.alive()


def test_redirect_to_a_denied_address_moves_to_the_next_replica(
        lake41, mount_factory, tmp_path, redirector):
    """A redirect to an address in deny_nets (127.0.0.2 here, as
    169.254.169.254 would be by default) is an error of that replica:
    the next one serves the read, and one log line names the target,
    without its query string."""
    port = lake41.ports["nginx"]
    lake41.add_rse("LOCALHOST_DISK",
                   [{"scheme": "https", "hostname": "localhost",
                     "port": port, "prefix": "/rucio"}], exist_ok=True)
    m, f, got, mark = redirected_read(
        lake41, mount_factory, tmp_path, redirector, "deny", 10,
        "deny_nets=127.0.0.2/32;::1/128", fallback="LOCALHOST_DISK")
    assert got == f["sha256"], m.logtext()
    hops = nginx_entries(lake41, port, f["pfn_path"], mark, wait=True)
    assert hops and all(e["host"] == "localhost" for e in hops), hops
    log = m.logtext()
    want = ("REDIR_DENY (https://127.0.0.1:%d/deny/rucio/%s -> "
            "https://127.0.0.2:%d/rucio/%s): refused: address 127.0.0.2 "
            "is in deny_nets" % (redirector.port, f["pfn_path"], port,
                                 f["pfn_path"]))
    assert want in log, log
    assert "hop-secret" not in log


def test_redirect_loop_is_bounded(lake41, mount_factory, tmp_path,
                                  redirector):
    m, f, got, mark = redirected_read(lake41, mount_factory, tmp_path,
                                      redirector, "loop", 11)
    assert got == 5, m.logtext()
    assert "more than 5 redirects" in m.logtext(), m.logtext()
    # the first request and five redirects, for each block tried
    n = len(redirector.requests(f["pfn_path"]))
    assert n and n % 6 == 0, n
