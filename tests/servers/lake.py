#!/usr/bin/python3
"""Test/demo fixture: a Rucio catalogue emulator plus two storage servers.

    from lake import Lake
    with Lake("/tmp/work", profile="test", flavour="41") as lake:
        lake.write_rucio_cfg("/tmp/work/rucio.cfg")
        ...  # lake.rucio_host, lake.ca_cert, lake.manifest, lake.issuer

    python3 lake.py start  --workdir DIR [--profile test|demo|bench] [--flavour 41|1.31] [--no-tls]
                           [--slow SECONDS [--slow-match REGEX]] [--tokens]
    python3 lake.py status --workdir DIR
    python3 lake.py stop   --workdir DIR

What runs (everything on 127.0.0.1, random free ports; xrootd 5.5.3 has no
bind directive and listens on all interfaces, clients only use 127.0.0.1):
  * rucio_emulator.py (HTTPS with a throw-away CA) = the Rucio server,
  * nginx            = RSE NGINX_DISK: https://127.0.0.1:P/rucio/<hash path>
                       and the same tree over plain http on ports["nginx_http"]
                       (no RSE names it: tests add one with add_rse)
  * xrootd + XrdHttp = RSE XRD_DISK:   https://127.0.0.1:H/rucio/<hash path>
                                       root://127.0.0.1:R//rucio/<hash path>
    run as user `xrootd` (it refuses root).

On demand (tests of hostile storage and a slow catalogue; README.md):
  * lake.start_faultstore(rse="FAULT_DISK", tls=True, priority=1,
    prefix="/rucio", scheme=None, attributes=None) -> FaultStore: starts
    faultstore.py (the lake's files under any prefix + hash path, with faults
    set at run time: .set_fault(match, mode, **kw), .clear_faults(),
    .requests(path_contains=None, method=None), .reset(), .add_rse(name,
    prefix, priority=1, scheme=None), .pfn()/.url(), .stop()/.start()) and
    registers the RSE (127.0.0.1, https, or http with tls=False). No
    replica is added: lake.add_replica(scope, name, fs.rse).
  * lake.many_replicas(scope, name, n, store=None, rse_format="FAULT_R%04d",
    prefix_format="/r%04d/rucio", priority=1, first=1): the file on n RSEs
    of one faultstore (bulk admin routes; 1000 take well under a second).
  * lake.set_rse_priority(rse, scheme, priority): the emulator orders a
    file's PFNs by (domain, read priority, PFN string); NGINX_DISK https is
    1, XRD_DISK https 2, root 3. A faultstore RSE is last with a priority
    above those; first only if the others are bumped (a tie with NGINX_DISK
    is decided by the PFN string, i.e. the random ports) or the mount is
    limited with rse_expression. Same-store RSEs tie-break on the prefix.
  * lake.start_issuer(name="issuer", path="/") -> tokinfra.TokenIssuer:
    OIDC discovery + JWKS over HTTPS (the lake's CA), RS256 and ES256
    keys; it mints and forges tokens. lake.start_token_store(issuers,
    rse="XRD_TOKEN", ...) -> tokinfra.TokenStore: xrootd + XrdHttp + the
    scitokens plugin enforcing those issuers' tokens on the XRD_DISK tree.
    lake.trust_issuer(issuer), lake.register_oidc_user(sub, issuer,
    account=None), lake.add_account(...), lake.add_identity(...): the
    emulator accepts the issuer's tokens. tokinfra.TokenLake(lake) does
    all of it (the `toklake` fixture; `start --tokens` on the CLI).
  * lake.start_fakexrd(rse="FAKE_XRD", priority=1, prefix="//rucio",
    chunk=256 KiB, manager=False) -> fakexrd.FakeXrd: a fault-injecting
    fake xrootd (root://) serving the lake's files, RSE registered, no
    replica; lake.start_redirector(rse="XRD_REDIR") -> xrdredir.Redirector:
    xrootd + cmsd manager with a data server on XRD_DISK's tree, RSE
    registered (root://, the manager).
  * lake.slow_catalogue(seconds, match=None): matching catalogue requests
    are answered after `seconds`, each in its own thread (concurrent);
    slow_catalogue(0) turns it off.

Every process is started in its own session (process group) and killed by
process group on stop(), at interpreter exit and on SIGTERM; in library
(non-detached) mode the children also get PR_SET_PDEATHSIG=SIGKILL, so they
die with the thread that started them even if the test runner is SIGKILLed.
(Start and restart a Lake from a long-lived thread, normally the main one.)

Caching: the generated data lives in <cache_dir>/lake-<profile>/ (cache_dir:
argument, else $RUCIOFS_LAKE_CACHE, else the workdir)
and is reused when its stamp matches the profile and generator version; a
file lock makes concurrent first uses safe.

Profile "bench" (benchmarks) is "demo" plus the scope `bench` and a flat
tree of plain directories under NGINX_DISK for peer filesystems that read
HTTP directory listings; its layout is in <lake_dir>/flat.json (Lake.flat,
and LAKE_FLAT_DIR / NGINX_FLAT_URL in env()). See lakegen.py.
"""

import argparse
import atexit
import configparser
import fcntl
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lakegen  # noqa: E402
from jwt_issuer import JwtIssuer  # noqa: E402

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
NGINX_BIN = shutil.which("nginx") or "/usr/sbin/nginx"
XROOTD_BIN = shutil.which("xrootd") or "/usr/bin/xrootd"
XROOTD_USER = "xrootd"
RSE_NGINX, RSE_XRD = lakegen.RSE_NGINX, lakegen.RSE_XRD

# Re-exec shim run in the child: die with the parent (PR_SET_PDEATHSIG = 1),
# and give up if the parent is already gone (race between fork and prctl).
_PDEATH_SHIM = ("import ctypes,os,signal,sys\n"
                "ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)\n"
                "if os.getppid() != int(sys.argv[1]): sys.exit(1)\n"
                "os.execvp(sys.argv[2], sys.argv[2:])\n")

_LIVE = set()               # started, non-detached Lakes: stopped at exit/SIGTERM
_SIGTERM_INSTALLED = False


def _stop_all_live():
    for lake in list(_LIVE):
        try:
            lake.stop()
        except Exception:   # best effort at exit
            pass


atexit.register(_stop_all_live)


def _install_sigterm_handler():
    """Turn SIGTERM into a clean stop of our servers, then die as before.
    Only if nobody else handles SIGTERM and we run in the main thread."""
    global _SIGTERM_INSTALLED
    if _SIGTERM_INSTALLED:
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return

        def handler(signum, frame):
            _stop_all_live()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

        signal.signal(signal.SIGTERM, handler)
        _SIGTERM_INSTALLED = True
    except ValueError:      # not the main thread
        pass


def free_port():
    """A currently free TCP port on 127.0.0.1 (the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, n=30):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 16384))
            lines = f.read().decode("utf-8", errors="replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError as e:
        return "(no log: %s)" % e


def _ensure_traversable(path, log=None):
    """xrootd runs as user `xrootd`: every ancestor of its data tree must be
    searchable (o+x). pytest's tmp dirs are 0700, so add the x bit only (no
    read/list permission) where it is missing."""
    path = os.path.abspath(path)
    parts = path.split(os.sep)
    cur = os.sep
    for p in parts[1:]:
        cur = os.path.join(cur, p)
        try:
            st = os.stat(cur)
        except OSError:
            return
        if stat.S_ISDIR(st.st_mode) and not st.st_mode & stat.S_IXOTH:
            os.chmod(cur, st.st_mode | stat.S_IXOTH)
            if log:
                log("chmod o+x %s (so user %s can reach the data)" % (cur, XROOTD_USER))


class ServerProcess:
    """One server process, started in its own process group."""

    def __init__(self, name, cmd, log_path, cwd=None, user=None, detach=False, env=None):
        self.name, self.cmd, self.log_path, self.cwd = name, cmd, log_path, cwd
        self.user, self.detach, self.env = user, detach, env
        self.proc = None
        self.pid = None

    def start(self):
        cmd = list(self.cmd)
        if not self.detach:
            cmd = [PYTHON, "-c", _PDEATH_SHIM, str(os.getpid())] + cmd
        kw = {}
        if self.user:
            pw = pwd.getpwnam(self.user)
            kw.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.cwd, start_new_session=True, env=self.env,
                                         close_fds=True, **kw)
        self.pid = self.proc.pid   # == its process group id (new session)
        self.starttime = _starttime(self.pid)
        return self

    def alive(self):
        # /proc state, not Popen.poll(): the zombie must not be reaped before
        # the final killpg, or its pid (= our process group id) could be reused
        return self.pid is not None and _pid_alive(self.pid)

    def signal_group(self, sig):
        if self.pid is None:
            return
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, grace=3.0, sig=signal.SIGTERM):
        """SIGTERM (or `sig`) the group, wait up to `grace`, then SIGKILL it."""
        if self.pid is None:
            return
        self.signal_group(sig)
        deadline = time.time() + grace
        while time.time() < deadline and self.alive():
            time.sleep(0.05)
        self.signal_group(signal.SIGKILL)   # also catches forked leftovers of the group
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.proc = None
        self.pid = None

    def kill(self):
        self.stop(grace=0, sig=signal.SIGKILL)


def admin_call(conn, what, method, path, body=None):
    """One JSON request to a test server's /_admin/<path> on @conn (closed
    after); its decoded answer, RuntimeError naming @what on an error."""
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, "/_admin/" + path, body=data,
                     headers={"Content-Type": "application/json"} if data else {})
        r = conn.getresponse()
        payload = r.read()
    finally:
        conn.close()
    if r.status >= 300:
        raise RuntimeError("%s %s %s -> %d %s" % (what, method, path, r.status, payload[:300]))
    return json.loads(payload) if payload else None


def _starttime(pid):
    """Start time of a process (field 22 of /proc/pid/stat): with the pid it
    identifies the process even if the pid is reused later."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(") ", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


FAULT_RSE = "FAULT_DISK"


class LakeProcess:
    """What a handle on a test server the lake keeps in lake.procs[key]
    shares: stop (SIGTERM, SIGKILL after `grace`), kill, alive, and the
    wait for its /_admin/health at start (it needs _admin)."""

    def stop(self, grace=3.0):
        proc = self.lake.procs.get(self.key)
        if proc is not None:
            proc.stop(grace=grace)

    def kill(self):
        self.stop(grace=0)

    def alive(self):
        proc = self.lake.procs.get(self.key)
        return proc is not None and proc.alive()

    def _await_health(self, proc, deadline, what):
        while True:
            try:
                self._admin("GET", "health", timeout=3)
                return self
            except (OSError, http.client.HTTPException, ssl.SSLError, RuntimeError) as e:
                self.lake._check_alive(proc, proc.log_path)
                if time.time() > deadline:
                    raise RuntimeError("%s did not answer: %r\n%s" % (what, e, tail(proc.log_path)))
                time.sleep(0.05)


class FaultStore(LakeProcess):
    """Handle on a running faultstore.py (see Lake.start_faultstore and the
    faultstore.py docstring for the fault modes)."""

    def __init__(self, lake, rse, tls, scheme, workdir):
        self.lake, self.rse, self.tls, self.scheme, self.workdir = lake, rse, tls, scheme, workdir
        self.key = "faultstore:" + rse
        self.port = None
        self.rses = [rse]      # every RSE registered at this server

    # -- process ------------------------------------------------------------
    def _cmd(self, port):
        d = self.workdir
        cmd = [PYTHON, os.path.join(HERE, "faultstore.py"), "--lake-dir", self.lake.lake_dir,
               "--port", str(port), "--port-file", os.path.join(d, "port"),
               "--log", os.path.join(d, "requests.log")]
        if self.tls:
            cmd += ["--tls-cert", self.lake.server_cert, "--tls-key", self.lake.server_key]
        return cmd

    def start(self, timeout=20):
        """Start (or restart on the same port) and wait until it answers."""
        proc = self.lake.procs.get(self.key)
        if proc is not None and proc.alive():
            return self
        os.makedirs(self.workdir, exist_ok=True)
        port_file = os.path.join(self.workdir, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        proc = ServerProcess(self.key, self._cmd(self.port or 0), os.path.join(self.workdir, "faultstore.log"),
                             cwd=self.workdir, detach=self.lake.detached).start()
        self.lake.procs[self.key] = proc
        deadline = time.time() + timeout
        while not os.path.exists(port_file):
            self.lake._check_alive(proc, proc.log_path)
            if time.time() > deadline:
                raise RuntimeError("faultstore did not write its port file in %ds\n%s"
                                   % (timeout, tail(proc.log_path)))
            time.sleep(0.02)
        with open(port_file) as f:
            self.port = int(f.read().strip())
        # stop() leaves its RSEs in the catalogue: their PFNs then refuse
        # connections
        return self._await_health(proc, deadline, "faultstore on port %d" % self.port)

    # -- admin routes ---------------------------------------------------------
    def conn(self, timeout=10):
        """A new http.client connection to the server (127.0.0.1)."""
        if self.tls:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                               context=self.lake._ssl_context())
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def _admin(self, method, path, body=None, timeout=10):
        return admin_call(self.conn(timeout), "faultstore", method, path, body)

    def set_fault(self, match, mode, **kw):
        """Add a fault (faultstore.py docstring): `match` is a regex searched
        in the decoded request path; count=N makes it apply N times. Returns
        its id."""
        return self._admin("POST", "fault", dict(kw, match=match, mode=mode))["id"]

    def clear_faults(self):
        self._admin("DELETE", "fault")

    def faults(self):
        return self._admin("GET", "faults")

    def requests(self, path_contains=None, method=None):
        """The request log (oldest first), optionally filtered: dicts with
        method, path (decoded), range, status, bytes_sent, auth (bool), host,
        time, ms, fault."""
        return [r for r in self._admin("GET", "requests")
                if (path_contains is None or path_contains in r["path"]) and
                (method is None or r["method"] == method)]

    def reset(self):
        """Empty the request log (faults stay: clear_faults())."""
        self._admin("POST", "reset")

    def serve_file(self, scope, name, local_path):
        """Serve local_path as the data of scope:name (for a file a test adds
        with Lake.add_file); the lake's own files need no call."""
        self._admin("POST", "map", {"path": lakegen.lfn2path(scope, name), "file": os.path.abspath(local_path)})

    # -- catalogue ------------------------------------------------------------
    def protocol(self, prefix, priority=1, scheme=None):
        return {"scheme": scheme or self.scheme, "hostname": "127.0.0.1", "port": self.port,
                "prefix": prefix, "priority": priority}

    def add_rse(self, name, prefix, priority=1, scheme=None, attributes=None):
        """Another RSE at this server with its own prefix (so its PFNs differ)."""
        self.lake.add_rse(name, [self.protocol(prefix, priority, scheme)], attributes)
        self.rses.append(name)
        return name

    def pfn(self, scope, name, rse=None):
        """The PFN the emulator hands out for the file on `rse` (default: this
        store's first RSE); the name is not encoded, like Rucio."""
        rse = rse or self.rse
        return self.lake.pfn(scope, name, rse, scheme=next(iter(self.lake.rse_protocols[rse])))

    def url(self, scope, name, rse=None):
        """pfn() with the path percent-encoded: what goes on the wire."""
        pfn = self.pfn(scope, name, rse)
        head, _, path = pfn.partition("://")[2].partition("/")
        return "%s://%s/%s" % (pfn.split("://")[0], head, urllib.parse.quote(path, safe="/"))


class Lake:
    """The whole fixture. See the module docstring.

    Lake(workdir, profile="test", flavour="41", tls=True, cache_dir=None,
         token_lifetime=None, detach=False)
    """

    def __init__(self, workdir, profile="test", flavour="41", tls=True, cache_dir=None,
                 token_lifetime=None, detach=False):
        if flavour not in ("41", "1.31"):
            raise ValueError("flavour must be '41' or '1.31'")
        self.workdir = os.path.abspath(workdir)
        self.profile = profile
        self.flavour = flavour
        self.tls = tls
        self.detached = detach
        self.token_lifetime = token_lifetime
        # generated data: <cache_dir>/lake-<profile>; cache_dir defaults to
        # $RUCIOFS_LAKE_CACHE, else the workdir
        base = cache_dir or os.environ.get("RUCIOFS_LAKE_CACHE") or self.workdir
        self.lake_dir = os.path.join(os.path.abspath(base), "lake-" + profile)
        self.procs = {}       # "rucio" | NGINX_DISK | XRD_DISK -> ServerProcess
        self.ports = {}
        self.started = False
        self.rucio_host = self.auth_host = None
        self.ca_cert = None
        self.manifest = None
        self.issuer = None
        self.lake_json = None
        self.flat = None      # content of flat.json (profile "bench"), else None
        self.timings = {}
        self.rse_protocols = {}
        self.runtime_rses = {}  # rse -> add_rses() row, again after a restart
        self.faultstores = {}   # rse -> FaultStore (start_faultstore)
        self.faultstore = None  # the last started one
        self.issuers = {}       # name -> tokinfra.TokenIssuer (start_issuer)
        self.token_stores = {}  # rse -> tokinfra.TokenStore (start_token_store)
        self.fakexrds = {}      # rse -> fakexrd.FakeXrd (start_fakexrd)
        self.redirectors = {}   # rse -> xrdredir.Redirector (start_redirector)
        self._runtime_accounts = set()
        os.makedirs(self.workdir, exist_ok=True)

    # ------------------------------------------------------------------
    # lifecycle
    # ------------------------------------------------------------------
    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def _log(self, msg):
        with open(os.path.join(self.workdir, "lake.log"), "a") as f:
            f.write("%s %s\n" % (time.strftime("%H:%M:%S"), msg))

    def start(self):
        if self.started:
            return self
        t0 = time.time()
        if not self.detached:
            _LIVE.add(self)
            _install_sigterm_handler()
        try:
            self._prepare_data()
            self.timings["data"] = round(time.time() - t0, 2)
            self._prepare_tls()
            self._load_catalogue_template()
            # nginx_http: a plain-http listener on NGINX_DISK's tree that no
            # RSE names; tests register one with add_rse when they need it
            self.ports = {"nginx": free_port(), "nginx_http": free_port(), "xrd_http": free_port(),
                          "xrd_root": free_port()}
            self._write_runtime_lake()
            self._start_rucio()
            self._start_nginx()
            self._start_xrootd()
            self._wait_rucio()
            self._wait_nginx()
            self._wait_xrootd()
            self.started = True
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = round(time.time() - t0, 2)
        self._log("started in %.2fs (data %.2fs): rucio %s nginx %d xrd http %d root %d"
                  % (self.timings["total"], self.timings["data"], self.rucio_host, self.ports["nginx"],
                     self.ports["xrd_http"], self.ports["xrd_root"]))
        return self

    def stop(self):
        """Kill every server we started (SIGTERM to all groups, then SIGKILL)."""
        procs = [p for p in self.procs.values() if p.pid is not None]
        for p in procs:
            p.signal_group(signal.SIGTERM)
        deadline = time.time() + 3
        while time.time() < deadline and any(p.alive() for p in procs):
            time.sleep(0.05)
        for p in procs:
            p.stop(grace=0, sig=signal.SIGKILL)
        self.started = False
        _LIVE.discard(self)

    # ------------------------------------------------------------------
    # data, certificates, catalogue
    # ------------------------------------------------------------------
    def _prepare_data(self):
        os.makedirs(os.path.dirname(self.lake_dir), exist_ok=True)
        lock_path = self.lake_dir.rstrip("/") + ".lock"
        with open(lock_path, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)   # two sessions generating at once would collide
            if not lakegen.is_complete(self.lake_dir, self.profile):
                if os.path.exists(self.lake_dir):
                    shutil.rmtree(self.lake_dir)
                t = time.time()
                lakegen.make_lake(self.lake_dir, self.profile)
                self._log("generated lake %s (%s) in %.1fs" % (self.lake_dir, self.profile, time.time() - t))
        with open(os.path.join(self.lake_dir, "manifest.json"), encoding="utf-8") as f:
            self.manifest = json.load(f)
        self.files = {(e["scope"], e["name"]): e for e in self.manifest}
        flat_json = os.path.join(self.lake_dir, "flat.json")
        if os.path.exists(flat_json):
            with open(flat_json, encoding="utf-8") as f:
                self.flat = json.load(f)
        self.issuer = JwtIssuer(os.path.join(self.lake_dir, "issuer"))
        _ensure_traversable(os.path.join(self.lake_dir, "rse", RSE_XRD, "rucio"), self._log)

    def _prepare_tls(self):
        """Throw-away CA + server certificate for 127.0.0.1 / localhost."""
        d = os.path.join(self.workdir, "tls")
        self.ca_cert = os.path.join(d, "ca.pem")
        self.server_cert = os.path.join(d, "server.pem")
        self.server_key = os.path.join(d, "server.key")
        if all(os.path.exists(p) for p in (self.ca_cert, self.server_cert, self.server_key)):
            return
        os.makedirs(d, exist_ok=True)

        def run(*args):
            subprocess.run(args, check=True, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem.tmp",
            "-days", "3650", "-subj", "/CN=ruciofs test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost")
        with open(os.path.join(d, "ext.cnf"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
        run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem.tmp", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "3650", "-extfile", "ext.cnf")
        cadir = os.path.join(d, "cadir")
        os.makedirs(cadir, exist_ok=True)
        shutil.copy(os.path.join(d, "ca.pem.tmp"), os.path.join(cadir, "ca.pem"))
        run("openssl", "rehash", cadir)
        os.replace(os.path.join(d, "ca.pem.tmp"), self.ca_cert)   # last: marks the set complete

    def _load_catalogue_template(self):
        with open(os.path.join(self.lake_dir, "lake.json"), encoding="utf-8") as f:
            self._lake_template = json.load(f)

    def _write_runtime_lake(self):
        """Fill the RSE protocol ports (and scheme without TLS) into a copy of
        lake.json for the emulator."""
        lake = json.loads(json.dumps(self._lake_template))
        web = "https" if self.tls else "http"
        for rse, info in lake["rses"].items():
            for p in info["protocols"]:
                if rse == RSE_NGINX and p["scheme"] in ("https", "http", "davs"):
                    p["port"], p["scheme"] = self.ports["nginx"], web
                elif rse == RSE_XRD and p["scheme"] in ("https", "http", "davs"):
                    p["port"], p["scheme"] = self.ports["xrd_http"], web
                elif rse == RSE_XRD and p["scheme"] == "root":
                    p["port"] = self.ports["xrd_root"]
        if self.token_lifetime is not None:
            lake["token_lifetime"] = int(self.token_lifetime)
        self.rse_protocols = {rse: {p["scheme"]: p for p in info["protocols"]} for rse, info in lake["rses"].items()}
        d = os.path.join(self.workdir, "rucio")
        os.makedirs(d, exist_ok=True)
        self.lake_json = os.path.join(d, "lake.runtime.json")
        with open(self.lake_json, "w", encoding="utf-8") as f:
            json.dump(lake, f, indent=1, ensure_ascii=False)

    # ------------------------------------------------------------------
    # servers
    # ------------------------------------------------------------------
    def _rucio_cmd(self, port):
        d = os.path.join(self.workdir, "rucio")
        cmd = [PYTHON, os.path.join(HERE, "rucio_emulator.py"), "--lake", self.lake_json,
               "--port", str(port), "--port-file", os.path.join(d, "port"), "--flavour", self.flavour,
               "--log", os.path.join(d, "requests.log")]
        if self.tls:
            cmd += ["--tls-cert", self.server_cert, "--tls-key", self.server_key]
        return cmd

    def _start_rucio(self, port=0):
        d = os.path.join(self.workdir, "rucio")
        port_file = os.path.join(d, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        self.procs["rucio"] = ServerProcess("rucio", self._rucio_cmd(port), os.path.join(d, "emulator.log"),
                                            cwd=d, detach=self.detached).start()

    def _wait_rucio(self, timeout=20):
        d = os.path.join(self.workdir, "rucio")
        port_file = os.path.join(d, "port")
        proc = self.procs["rucio"]
        deadline = time.time() + timeout
        while not os.path.exists(port_file):
            self._check_alive(proc, proc.log_path)
            if time.time() > deadline:
                raise RuntimeError("rucio emulator did not write its port file in %ds\n%s"
                                   % (timeout, tail(proc.log_path)))
            time.sleep(0.02)
        with open(port_file) as f:
            self.ports["rucio"] = int(f.read().strip())
        self.rucio_host = "%s://127.0.0.1:%d" % ("https" if self.tls else "http", self.ports["rucio"])
        self.auth_host = self.rucio_host
        self._wait_http("rucio", self.ports["rucio"], "/ping", proc, expect=(200,), timeout=timeout)

    def _nginx_conf(self):
        d = os.path.join(self.workdir, "nginx")
        tree = os.path.join(self.lake_dir, "rse", RSE_NGINX)
        ssl_lines = ""
        if self.tls:
            ssl_lines = ("        ssl_certificate %s;\n        ssl_certificate_key %s;\n"
                         "        ssl_protocols TLSv1.2 TLSv1.3;\n" % (self.server_cert, self.server_key))
        # $uri is the DECODED path (what maps to the file); the log is JSON
        # lines so tests can count requests per path and check Range, and
        # whether an Authorization header came ("Bearer", "other" or ""),
        # never its value.
        return """# generated by tests/servers/lake.py
daemon off;
# one process, no workers: a SIGKILL (kill_rse, or PR_SET_PDEATHSIG when the
# test runner dies) then leaves no orphaned worker serving the port
master_process off;
pid %(d)s/nginx.pid;
error_log %(d)s/error.log info;
events { worker_connections 1024; }
http {
    map $http_authorization $rfs_auth {
        "" "";
        ~*^bearer\\s "Bearer";
        default "other";
    }
    log_format rfs escape=json '{"t":$msec,"method":"$request_method","uri":"$uri","request_uri":"$request_uri",'
                               '"status":$status,"bytes":$body_bytes_sent,"range":"$http_range",'
                               '"port":$server_port,"host":"$host","authorization":"$rfs_auth"}';
    access_log %(d)s/access.log rfs;
    client_body_temp_path %(d)s/tmp/body;
    proxy_temp_path %(d)s/tmp/proxy;
    fastcgi_temp_path %(d)s/tmp/fastcgi;
    uwsgi_temp_path %(d)s/tmp/uwsgi;
    scgi_temp_path %(d)s/tmp/scgi;
    types { }
    default_type application/octet-stream;
    sendfile on;
    keepalive_requests 10000;
    keepalive_timeout 120s;
    server_tokens off;
    server {
        listen 127.0.0.1:%(port)d%(ssl)s;
        server_name localhost;
%(ssl_lines)s        root %(tree)s;
        location /rucio/ {
            # read-only WebDAV subset: GET/HEAD with Range (nginx default);
            # nginx-light has no PROPFIND (dav_ext)
            autoindex on;
        }
    }
    server {
        listen 127.0.0.1:%(http_port)d;
        server_name localhost;
        root %(tree)s;
        location /rucio/ {
            autoindex on;
        }
    }
}
""" % {"d": d, "port": self.ports["nginx"], "http_port": self.ports["nginx_http"],
       "ssl": " ssl" if self.tls else "", "ssl_lines": ssl_lines, "tree": tree}

    def _start_nginx(self):
        d = os.path.join(self.workdir, "nginx")
        os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(self._nginx_conf())
        cmd = [NGINX_BIN, "-p", d, "-c", conf, "-e", os.path.join(d, "error.log")]
        self.procs[RSE_NGINX] = ServerProcess(RSE_NGINX, cmd, os.path.join(d, "stdout.log"), cwd=d,
                                              detach=self.detached).start()

    def _wait_nginx(self, timeout=20):
        p = self.procs[RSE_NGINX]
        self._wait_http(RSE_NGINX, self.ports["nginx"], "/", p, timeout=timeout,
                        log=os.path.join(self.workdir, "nginx", "error.log"))

    def _xrootd_conf(self, xdir):
        tree = os.path.join(self.lake_dir, "rse", RSE_XRD)
        tls = ""
        if self.tls:
            tls = ("xrd.tls %(x)s/tls/server.pem %(x)s/tls/server.key\nxrd.tlsca certdir %(x)s/tls/cadir\n"
                   % {"x": xdir})
        return """# generated by tests/servers/lake.py (xrootd 5.5.3; see storage-and-tokens.md section 2)
xrd.port %(root)d
xrd.protocol XrdHttp:%(http)d libXrdHttp.so
all.export / r/o
oss.localroot %(tree)s
all.adminpath %(x)s/admin
all.pidpath %(x)s
xrootd.chksum adler32
http.listingdeny false
http.desthttps %(desthttps)s
%(tls)s# request tracing, parsed by Lake.storage_requests():
#   "http_Req: Stat for GET /path stat=..." per HTTP request on an existing file,
#   "ofs_open: ... fn=/path" per open (root:// and HTTP GET alike)
http.trace request
ofs.trace open
""" % {"root": self.ports["xrd_root"], "http": self.ports["xrd_http"], "tree": tree, "x": xdir, "tls": tls,
       "desthttps": "true" if self.tls else "false"}

    def _start_xrootd(self):
        xdir = os.path.join(self.workdir, "xrootd")
        pw = pwd.getpwnam(XROOTD_USER)
        os.makedirs(os.path.join(xdir, "admin"), exist_ok=True)
        if self.tls:
            os.makedirs(os.path.join(xdir, "tls", "cadir"), exist_ok=True)
            shutil.copy(self.server_cert, os.path.join(xdir, "tls", "server.pem"))
            shutil.copy(self.server_key, os.path.join(xdir, "tls", "server.key"))
            for fn in os.listdir(os.path.join(self.workdir, "tls", "cadir")):
                src = os.path.join(self.workdir, "tls", "cadir", fn)
                dst = os.path.join(xdir, "tls", "cadir", fn)
                if os.path.lexists(dst):
                    os.unlink(dst)
                if os.path.islink(src):
                    os.symlink(os.readlink(src), dst)
                else:
                    shutil.copy(src, dst)
        cfg = os.path.join(xdir, "xrootd.cfg")
        with open(cfg, "w") as f:
            f.write(self._xrootd_conf(xdir))
        for root, dirs, files in os.walk(xdir):
            for n in dirs + files:
                os.lchown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)
        os.chown(xdir, pw.pw_uid, pw.pw_gid)
        os.chmod(xdir, 0o755)
        if self.tls:
            os.chmod(os.path.join(xdir, "tls", "server.key"), 0o600)
        _ensure_traversable(xdir, self._log)
        log = os.path.join(xdir, "xrootd.log")
        cmd = [XROOTD_BIN, "-c", cfg, "-l", log, "-s", os.path.join(xdir, "xrootd.pid")]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": xdir, "LANG": "C.UTF-8"}
        self.procs[RSE_XRD] = ServerProcess(RSE_XRD, cmd, os.path.join(xdir, "stdout.log"), cwd=xdir,
                                            user=XROOTD_USER, detach=self.detached, env=env).start()

    def _wait_xrootd(self, timeout=20):
        p = self.procs[RSE_XRD]
        log = os.path.join(self.workdir, "xrootd", "xrootd.log")
        self._wait_http(RSE_XRD, self.ports["xrd_http"], "/", p, timeout=timeout, log=log)
        deadline = time.time() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.ports["xrd_root"]), timeout=2):
                    break
            except OSError:
                self._check_alive(p, log)
                if time.time() > deadline:
                    raise RuntimeError("xrootd root:// port %d not listening after %ds\n%s"
                                       % (self.ports["xrd_root"], timeout, tail(log)))
                time.sleep(0.05)

    def _check_alive(self, proc, log):
        if not proc.alive():
            raise RuntimeError("%s exited during start-up (log %s):\n%s" % (proc.name, log, tail(log)))

    def _ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.ca_cert)
        return ctx

    def _wait_http(self, name, port, path, proc, expect=None, timeout=20, log=None):
        """Poll until the server answers any HTTP response (or one of `expect`)."""
        log = log or proc.log_path
        deadline = time.time() + timeout
        last = None
        while True:
            self._check_alive(proc, log)
            try:
                conn = self._conn(port, timeout=3)
                conn.request("GET", path)
                r = conn.getresponse()
                r.read()
                conn.close()
                if expect is None or r.status in expect:
                    return
                last = "HTTP %d" % r.status
            except (OSError, http.client.HTTPException, ssl.SSLError) as e:
                last = repr(e)
            if time.time() > deadline:
                raise RuntimeError("%s on port %d did not answer in %ds (last: %s); log %s:\n%s"
                                   % (name, port, timeout, last, log, tail(log)))
            time.sleep(0.05)

    def _conn(self, port, timeout=10):
        if self.tls:
            return http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=self._ssl_context())
        return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    # ------------------------------------------------------------------
    # control of individual servers
    # ------------------------------------------------------------------
    def stop_rse(self, name, grace=3.0):
        """SIGTERM the RSE's server (SIGKILL after `grace` seconds)."""
        self._rse_proc(name).stop(grace=grace)

    def kill_rse(self, name):
        """SIGKILL the RSE's server at once."""
        self._rse_proc(name).kill()

    def start_rse(self, name):
        """Restart the RSE's server on the SAME port(s) and wait until it answers."""
        self._rse_proc(name)
        if self.procs[name].alive():
            return
        if name == RSE_NGINX:
            self._start_nginx()
            self._wait_nginx()
        else:
            self._start_xrootd()
            self._wait_xrootd()

    def _rse_proc(self, name):
        if name not in (RSE_NGINX, RSE_XRD):
            raise KeyError("unknown RSE %r (have %s, %s)" % (name, RSE_NGINX, RSE_XRD))
        return self.procs[name]

    def stop_catalogue(self, grace=3.0):
        """Stop the Rucio emulator. Runtime state (faults, counts, attach,
        replicas added) is lost; start_catalogue() registers the runtime
        RSEs again."""
        self.procs["rucio"].stop(grace=grace)

    def kill_catalogue(self):
        self.procs["rucio"].kill()

    def start_catalogue(self):
        """Restart the emulator on the same port."""
        if self.procs["rucio"].alive():
            return
        self._start_rucio(port=self.ports["rucio"])
        self._wait_rucio()
        if self.runtime_rses:
            self.admin("POST", "add_rses", {"rses": list(self.runtime_rses.values()), "exist_ok": True})

    # ------------------------------------------------------------------
    # talking to the emulator
    # ------------------------------------------------------------------
    def _request(self, method, path, body=None, headers=None):
        conn = self._conn(self.ports["rucio"])
        try:
            data = json.dumps(body).encode() if body is not None else None
            hdrs = {"Content-Type": "application/json"} if data is not None else {}
            hdrs.update(headers or {})
            conn.request(method, path, body=data, headers=hdrs)
            r = conn.getresponse()
            payload = r.read()
            return r.status, dict(r.getheaders()), payload
        finally:
            conn.close()

    def admin(self, method, path, body=None):
        """Call an /_admin/ route; returns the decoded JSON answer."""
        status, _, payload = self._request(method, "/_admin/" + path.lstrip("/"), body)
        if status >= 300:
            raise RuntimeError("admin %s %s -> %d %s" % (method, path, status, payload[:300]))
        return json.loads(payload) if payload else None

    def set_fault(self, match, mode, **kw):
        """Inject a fault (see rucio_emulator.py): returns the fault id."""
        return self.admin("POST", "fault", dict(kw, match=match, mode=mode))["id"]

    def clear_faults(self):
        self.admin("DELETE", "fault")

    def catalogue_counts(self):
        """{"total", "by_route": {"GET /dids/{scope}/{name}/dids": n}, "by_path": {"GET /dids/a/b/dids": n}}"""
        return self.admin("GET", "requests")

    def reset_counts(self):
        self.admin("POST", "reset_counts")

    def attach(self, scope, name, dids):
        """Attach children [(scope, name) | {"scope","name"}] to a collection at runtime."""
        self.admin("POST", "attach", {"scope": scope, "name": name, "dids": [_did(d) for d in dids]})

    def detach(self, scope, name, dids):
        self.admin("POST", "detach", {"scope": scope, "name": name, "dids": [_did(d) for d in dids]})

    def add_rse(self, rse, protocols, attributes=None, exist_ok=False):
        """A new RSE at runtime: protocols [{"scheme","hostname","port",
        "prefix"?, "priority"?}]; see rucio_emulator.py. With exist_ok an
        RSE that exists (a test run again on a shared lake) is left as it
        is."""
        if exist_ok:
            return self.add_rses([{"rse": rse, "protocols": protocols,
                                   "attributes": attributes or {}}], exist_ok=True)
        row = self.admin("POST", "add_rse", {"rse": rse, "protocols": protocols,
                                             "attributes": attributes or {}})
        self._remember_rse(rse, protocols, attributes)
        return row

    def add_rses(self, rses, exist_ok=False):
        """Many add_rse() in one call: rses [{"rse", "protocols",
        "attributes"?}]. With exist_ok an RSE that exists is left as it is.
        Returns the names of the RSEs it created."""
        made = self.admin("POST", "add_rses", {"rses": rses, "exist_ok": bool(exist_ok)})["created"]
        for r in rses:
            if r["rse"] in made:
                self._remember_rse(r["rse"], r["protocols"], r.get("attributes"))
        return made

    def _remember_rse(self, rse, protocols, attributes=None):
        """Keep the protocols so that pfn() works for runtime RSEs too, and
        the whole row so that a restarted catalogue knows the RSE again (a
        test's fault store outlives a restart in another test)."""
        self.rse_protocols[rse] = {p["scheme"]: dict(p, port=int(p["port"]), prefix=p.get("prefix", "/rucio"))
                                   for p in protocols}
        self.runtime_rses[rse] = {"rse": rse, "protocols": protocols, "attributes": attributes or {}}

    def add_replicas(self, replicas):
        """Many add_replica() in one call: [(scope, name, rse) or
        {"scope","name","rse","state"?,"remove"?}]."""
        rows = [r if isinstance(r, dict) else {"scope": r[0], "name": r[1], "rse": r[2]} for r in replicas]
        self.admin("POST", "replicas", {"replicas": rows})

    def set_rse_priority(self, rse, scheme, priority):
        """Read priority (both domains; lower is better, 0 = disabled) of the
        RSE's protocol for `scheme`. The lake's defaults: NGINX_DISK https 1,
        XRD_DISK https 2, root 3. Restore it after the test (shared lake)."""
        self.admin("POST", "rse", {"rse": rse, "priorities": {scheme: int(priority)}})

    def slow_catalogue(self, seconds, match=None):
        """Answer every catalogue request whose decoded path matches the regex
        `match` (None: every request, /ping and /auth too) only after
        `seconds` (each request sleeps in its own thread: 20 parallel requests
        take one delay, not twenty). Faults still apply afterwards.
        slow_catalogue(0) turns it off. Lost when the catalogue restarts."""
        self.admin("POST", "slow", {"seconds": float(seconds), "match": match})

    def add_replica(self, scope, name, rse, state="AVAILABLE"):
        self.admin("POST", "replica", {"scope": scope, "name": name, "rse": rse, "state": state})

    def remove_replica(self, scope, name, rse):
        self.admin("POST", "replica", {"scope": scope, "name": name, "rse": rse, "remove": True})

    def add_file(self, entry, parent=None):
        """A file DID from a lake-JSON entry ({"scope","name","bytes",
        "adler32","md5","replicas": {rse: state}, "meta": {...}}),
        attached to the collection @parent (scope, name) if given."""
        self.admin("POST", "add_file", dict(entry, parent=list(parent) if parent else None))

    def userpass_token(self, username="alice", password="alice-secret", account=None):
        hdrs = {"X-Rucio-Username": username, "X-Rucio-Password": password}
        if account:
            hdrs["X-Rucio-Account"] = account
        status, h, payload = self._request("GET", "/auth/userpass", headers=hdrs)
        if status != 200:
            raise RuntimeError("userpass auth failed: %d %s" % (status, payload[:200]))
        return h["X-Rucio-Auth-Token"]

    # ------------------------------------------------------------------
    # OIDC identities and the token infrastructure (tokinfra.py)
    # ------------------------------------------------------------------
    def add_account(self, account, type="USER", email=None, scope=None):
        """A Rucio account at runtime (replaces one of that name); `scope`:
        a scope it owns."""
        self.admin("POST", "account", {"account": account, "type": type,
                                       "email": email or "%s@ruciofs.test" % account, "scope": scope})
        self._runtime_accounts.add(account)

    def add_identity(self, identity, accounts, type="OIDC", default=None, password=None):
        """An identity mapped to accounts (replaces the same type+identity).
        OIDC identities read "SUB=<sub>, ISS=<iss>"."""
        spec = {"type": type, "identity": identity, "accounts": list(accounts)}
        if default:
            spec["default"] = default
        if password is not None:
            spec["password"] = password
        self.admin("POST", "identity", spec)

    def trust_issuer(self, issuer, jwks=None):
        """The emulator accepts JWTs whose `iss` is the issuer's URL, checked
        with its JWKS (RS256 and ES256). `issuer`: a TokenIssuer/JwtIssuer
        (its .issuer and .jwks()) or an issuer URL with `jwks`. Call again
        after a key rotation (TokenIssuer.rotate does)."""
        iss = issuer if isinstance(issuer, str) else issuer.issuer
        self.admin("POST", "oidc_issuer", {"issuer": iss, "jwks": jwks or issuer.jwks()})
        if not isinstance(issuer, str):
            issuer.trusted_by_catalogue = True

    def register_oidc_user(self, sub, issuer, account=None, scope=None):
        """Map the identity SUB=<sub>, ISS=<issuer> to `account` (default:
        `sub`), creating the account if it does not exist. Returns the
        account name."""
        account = account or sub
        iss = issuer if isinstance(issuer, str) else issuer.issuer
        if account not in self._lake_template.get("accounts", {}) and account not in self._runtime_accounts:
            self.add_account(account, scope=scope)
        self.add_identity("SUB=%s, ISS=%s" % (sub, iss), [account], default=account)
        return account

    def start_issuer(self, name="issuer", path="/", algs=("RS256", "ES256")):
        """Start a token issuer serving discovery + JWKS over HTTPS (the
        lake's CA); see tokinfra.TokenIssuer. One per `name`."""
        import tokinfra
        if name in self.issuers:
            raise RuntimeError("issuer %s exists (restart a stopped one with its .start())" % name)
        iss = tokinfra.TokenIssuer(self, name, path, algs).start()
        self.issuers[name] = iss
        return iss

    def start_token_store(self, issuers, rse="XRD_TOKEN", **kw):
        """Start xrootd + scitokens enforcing the tokens of `issuers` (a
        TokenIssuer or a list); see tokinfra.TokenStore. The RSE is not
        registered until store.register() or store.add_replicas()."""
        import tokinfra
        if rse in self.token_stores:
            raise RuntimeError("token store %s exists (restart a stopped one with its .start())" % rse)
        if not isinstance(issuers, (list, tuple)):
            issuers = [issuers]
        store = tokinfra.TokenStore(self, issuers, rse=rse, **kw).start()
        self.token_stores[rse] = store
        return store

    # ------------------------------------------------------------------
    # fault-injecting storage (faultstore.py)
    # ------------------------------------------------------------------
    def start_faultstore(self, rse=FAULT_RSE, tls=True, priority=1, prefix="/rucio", scheme=None,
                         attributes=None):
        """Start faultstore.py (a ServerProcess of this lake, stopped by
        stop()) serving the lake's files, and register the RSE `rse` at it
        (hostname 127.0.0.1, scheme `scheme` or https/http by `tls`, read
        priority `priority`, `prefix`). No replica is added: add_replica()
        (or many_replicas()). Returns a FaultStore handle. Several stores
        may run at once (one per `rse`)."""
        if rse in self.faultstores:
            raise RuntimeError("faultstore %s exists (restart a stopped one with its .start())" % rse)
        store = FaultStore(self, rse, tls, scheme or ("https" if tls else "http"),
                           os.path.join(self.workdir, "faultstore-" + rse))
        store.start()
        try:
            self.add_rse(rse, [store.protocol(prefix, priority)], attributes)
        except BaseException:
            store.stop()
            raise
        self.faultstores[rse] = store
        self.faultstore = store
        return store

    def start_fakexrd(self, rse="FAKE_XRD", priority=1, prefix="//rucio", attributes=None, chunk=256 * 1024,
                      manager=False):
        """Start fakexrd.py (a fault-injecting fake xrootd server, a process
        of this lake) serving the lake's files over root://, and register
        the RSE `rse` at it (root://127.0.0.1:P, `prefix`, read priority
        `priority`). No replica is added. `chunk`: bytes per kXR_oksofar
        frame; manager=True: it says it is a redirector. Returns a
        fakexrd.FakeXrd."""
        import fakexrd
        if rse in self.fakexrds:
            raise RuntimeError("fakexrd %s exists (restart a stopped one with its .start())" % rse)
        store = fakexrd.FakeXrd(self, rse, os.path.join(self.workdir, "fakexrd-" + rse), chunk=chunk,
                                 manager=manager).start()
        try:
            self.add_rse(rse, [store.protocol(prefix, priority)], attributes)
        except BaseException:
            store.stop()
            raise
        self.fakexrds[rse] = store
        return store

    def start_redirector(self, rse="XRD_REDIR", priority=1, startup=1, http=True, wait=True):
        """Start an xrootd + cmsd redirector with a data server (xrootd +
        cmsd) behind it serving XRD_DISK's tree, and register the RSE `rse`
        whose root:// PFNs point at the redirector. See xrdredir.py."""
        import xrdredir
        if rse in self.redirectors:
            raise RuntimeError("redirector %s exists (restart a stopped one with its .start())" % rse)
        r = xrdredir.Redirector(self, rse, startup=startup, http=http).start(wait=wait)
        try:
            r.register(priority)
        except BaseException:
            r.stop()
            raise
        self.redirectors[rse] = r
        return r

    def many_replicas(self, scope, name, n, store=None, rse_format="FAULT_R%04d", prefix_format="/r%04d/rucio",
                      priority=1, first=1):
        """Put scope:name on n RSEs (rse_format % i, prefix prefix_format % i,
        i = first .. first+n-1) that all point at one faultstore (`store`, else
        the last started one, else a new TLS one). RSEs that exist already
        are reused, so a second file can share them. Two admin calls in all.
        With equal priorities the emulator orders the PFNs by PFN string,
        i.e. by prefix: /r0001/... first. Returns the RSE names in order."""
        store = store or self.faultstore or self.start_faultstore()
        names = [rse_format % i for i in range(first, first + n)]
        self.add_rses([{"rse": rse, "protocols": [store.protocol(prefix_format % i, priority)]}
                       for rse, i in zip(names, range(first, first + n))], exist_ok=True)
        for rse in names:
            if rse not in store.rses:
                store.rses.append(rse)
        self.add_replicas([(scope, name, rse) for rse in names])
        return names

    # ------------------------------------------------------------------
    # storage helpers
    # ------------------------------------------------------------------
    def pfn(self, scope, name, rse=RSE_NGINX, scheme=None):
        """The PFN the emulator hands out (unencoded name, like Rucio)."""
        protos = self.rse_protocols[rse]
        if scheme is None:
            scheme = "https" if self.tls else "http"
        p = protos[scheme]
        prefix = p["prefix"] if p["prefix"].startswith("/") else "/" + p["prefix"]
        prefix = prefix if prefix.endswith("/") else prefix + "/"
        return "%s://%s:%s%s%s" % (p["scheme"], p["hostname"], p["port"], prefix, lakegen.lfn2path(scope, name))

    def storage_log(self, rse):
        """[(method, decoded path)] of data requests seen by the RSE so far.
        NGINX_DISK: every HTTP request. XRD_DISK: every HTTP request on an
        existing file (method + path) plus every root:// open ("OPEN")."""
        out = []
        if rse == RSE_NGINX:
            try:
                with open(os.path.join(self.workdir, "nginx", "access.log"), encoding="utf-8",
                          errors="replace") as f:
                    for line in f:
                        try:
                            e = json.loads(line)
                        except ValueError:
                            continue
                        out.append((e.get("method"), e.get("uri")))
            except FileNotFoundError:
                pass
            return out
        if rse != RSE_XRD:
            raise KeyError(rse)
        rx_http = re.compile(r"http_Req: Stat for (\S+) (.*?) stat=")
        rx_open = re.compile(r"^\S+ \S+ \d+ (\S+) ofs_open: \S+ fn=(.*)$")
        try:
            with open(os.path.join(self.workdir, "xrootd", "xrootd.log"), encoding="utf-8", errors="replace") as f:
                for line in f:
                    m = rx_http.search(line)
                    if m:
                        out.append((m.group(1), m.group(2)))
                        continue
                    m = rx_open.match(line.rstrip("\n"))
                    if m and not m.group(1).startswith("unknown."):   # 'unknown.N' = XrdHttp bridge
                        out.append(("OPEN", m.group(2)))
        except FileNotFoundError:
            pass
        return out

    def storage_requests(self, rse, path_contains=None, method=None):
        """Number of data requests (paths under /rucio/) seen by that RSE
        since it first started in this workdir (see storage_log)."""
        return sum(1 for m, p in self.storage_log(rse)
                   if p and p.startswith("/rucio/") and (path_contains is None or path_contains in p)
                   and (method is None or m == method))

    # ------------------------------------------------------------------
    # client configuration
    # ------------------------------------------------------------------
    def write_rucio_cfg(self, path, auth_type="userpass", account="alice", username="alice",
                        password="alice-secret", **extra):
        """A Rucio client config ([client] section). Keys whose value is None
        are left out (e.g. password=None with auth_type="oidc")."""
        cp = configparser.ConfigParser(interpolation=None)
        cp.optionxform = str
        cp["client"] = {}
        c = cp["client"]
        values = {"rucio_host": self.rucio_host, "auth_host": self.auth_host, "auth_type": auth_type,
                  "account": account, "username": username, "password": password,
                  "ca_cert": self.ca_cert, "request_retries": 3}
        values.update(extra)
        for k, v in values.items():
            if v is not None:
                c[k] = str(v)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            cp.write(f)
        return path

    def env(self):
        """Shell variables describing the running lake."""
        env = {
            "RUCIO_HOST": self.rucio_host, "RUCIO_AUTH_HOST": self.auth_host, "CA_CERT": self.ca_cert,
            "RUCIO_FLAVOUR": self.flavour, "LAKE_DIR": self.lake_dir, "LAKE_MANIFEST":
            os.path.join(self.lake_dir, "manifest.json"), "LAKE_JSON": self.lake_json,
            "NGINX_URL": "%s://127.0.0.1:%d/rucio" % ("https" if self.tls else "http", self.ports["nginx"]),
            "XRD_HTTP_URL": "%s://127.0.0.1:%d/rucio" % ("https" if self.tls else "http", self.ports["xrd_http"]),
            "XRD_ROOT_URL": "root://127.0.0.1:%d//rucio" % self.ports["xrd_root"],
            "ISSUER_KEY_DIR": self.issuer.key_dir, "ISSUER": self.issuer.issuer,
        }
        if self.flat:
            env["LAKE_FLAT_DIR"] = self.flat["root"]
            env["NGINX_FLAT_URL"] = "%s://127.0.0.1:%d%s" % ("https" if self.tls else "http", self.ports["nginx"],
                                                           self.flat["url_path"])
        return env


def _did(d):
    if isinstance(d, dict):
        return {"scope": d["scope"], "name": d["name"]}
    return {"scope": d[0], "name": d[1]}


# ----------------------------------------------------------------------
# CLI (demo): detached servers, pids recorded in DIR/pids
# ----------------------------------------------------------------------
def _cli_start(a):
    workdir = os.path.abspath(a.workdir)
    pids_path = os.path.join(workdir, "pids")
    if os.path.exists(pids_path) and any(_pid_alive(e["pid"]) for e in _read_pids(pids_path)):
        print("a lake is already running in %s (use: lake.py stop --workdir %s)" % (workdir, workdir))
        return 1
    lake = Lake(workdir, profile=a.profile, flavour=a.flavour, tls=not a.no_tls, detach=True)
    lake.start()
    if a.slow:
        # after the start-up wait: a slow /ping would make it time out
        lake.slow_catalogue(a.slow, a.slow_match)
    toks = None
    if a.tokens:
        if a.no_tls:
            lake.stop()
            print("--tokens needs TLS (the issuer is https://)")
            return 1
        import tokinfra
        try:
            toks = tokinfra.TokenLake(lake)
        except BaseException:
            lake.stop()
            raise
    entries = [{"name": n, "pid": p.pid, "starttime": p.starttime, "cmd": p.cmd} for n, p in lake.procs.items()]
    with open(pids_path, "w") as f:
        json.dump(entries, f, indent=1)
    env = lake.env()
    if toks:
        env.update({"TOKEN_ISSUER": toks.issuer.url, "TOKEN_ISSUER_KEY_DIR": toks.issuer.key_dir,
                    "XRD_TOKEN_URL": "https://127.0.0.1:%d/rucio" % toks.store.http_port})
    with open(os.path.join(workdir, "lake.env"), "w") as f:
        f.write("# source me: generated by tests/servers/lake.py start\n")
        for k, v in env.items():
            f.write("export %s=%s\n" % (k, _shq(str(v))))
        f.write("export RUCIO_CONFIG=%s\n" % _shq(os.path.join(workdir, "rucio.cfg")))
    lake.write_rucio_cfg(os.path.join(workdir, "rucio.cfg"))
    print("lake (%s, flavour %s) started in %.1fs" % (a.profile, a.flavour, lake.timings["total"]))
    for k, v in env.items():
        print("  %-15s %s" % (k, v))
    if a.slow:
        print("  slow catalogue: %gs for %s" % (a.slow, a.slow_match or "every request"))
    if toks:
        print("  tokens: every XRD_DISK file is only on XRD_TOKEN (xrootd + scitokens); a token for alice:\n"
              "    python3 %s/jwt_issuer.py mint --key-dir \"$TOKEN_ISSUER_KEY_DIR\" --issuer \"$TOKEN_ISSUER\" "
              "--sub alice --aud %s --scope 'openid profile storage.read:/user/alice'"
              % (HERE, tokinfra.ANY_AUD))
    print("  source %s/lake.env ; python3 %s stop --workdir %s" % (workdir, os.path.abspath(__file__), workdir))
    return 0


def _shq(s):
    return "'" + s.replace("'", "'\\''") + "'"


def _read_pids(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return []


def _same_process(entry):
    """True if the pid is still the process we started (not a reused pid)."""
    return entry.get("starttime") is not None and _starttime(entry["pid"]) == entry["starttime"]


def _cli_stop(a):
    workdir = os.path.abspath(a.workdir)
    pids_path = os.path.join(workdir, "pids")
    entries = _read_pids(pids_path)
    if not entries:
        print("no pids recorded in %s" % pids_path)
        return 0
    live = [e for e in entries if _pid_alive(e["pid"]) and _same_process(e)]
    for e in live:
        try:
            os.killpg(e["pid"], signal.SIGTERM)   # each server leads its own process group
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.time() + 5
    while time.time() < deadline and any(_pid_alive(e["pid"]) for e in live):
        time.sleep(0.1)
    for e in live:
        try:
            os.killpg(e["pid"], signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    for e in entries:
        print("%-12s pid %-7d %s" % (e["name"], e["pid"], "stopped" if e in live else "was not running"))
    os.unlink(pids_path)
    return 0


def _cli_status(a):
    workdir = os.path.abspath(a.workdir)
    entries = _read_pids(os.path.join(workdir, "pids"))
    if not entries:
        print("not running (no pids file)")
        return 1
    rc = 0
    for e in entries:
        ok = _pid_alive(e["pid"]) and _same_process(e)
        rc |= 0 if ok else 1
        print("%-12s pid %-7d %s" % (e["name"], e["pid"], "running" if ok else "DEAD"))
    env_path = os.path.join(workdir, "lake.env")
    if os.path.exists(env_path):
        print("environment: %s" % env_path)
    return rc


def main(argv=None):
    ap = argparse.ArgumentParser(description="ruciofs test lake: Rucio emulator + nginx + xrootd")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="start detached servers")
    s.add_argument("--workdir", required=True)
    s.add_argument("--profile", choices=lakegen.PROFILES, default="demo")
    s.add_argument("--flavour", choices=("41", "1.31"), default="41")
    s.add_argument("--no-tls", action="store_true")
    s.add_argument("--tokens", action="store_true",
                   help="also a token issuer over HTTPS and the token-enforcing RSE XRD_TOKEN (tokinfra.TokenLake)")
    s.add_argument("--slow", type=float, default=0, metavar="SECONDS",
                   help="slow catalogue: each request answered after SECONDS (Lake.slow_catalogue)")
    s.add_argument("--slow-match", metavar="REGEX", help="only catalogue paths matching REGEX")
    for name in ("stop", "status"):
        p = sub.add_parser(name)
        p.add_argument("--workdir", required=True)
    a = ap.parse_args(argv)
    return {"start": _cli_start, "stop": _cli_stop, "status": _cli_status}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
