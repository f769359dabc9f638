#!/usr/bin/python3
"""Token infrastructure for the per-caller tests: a real token issuer over
HTTPS and storage that enforces tokens, as processes of a Lake.

    issuer = lake.start_issuer()                 # TokenIssuer (a JwtIssuer)
    store = lake.start_token_store(issuer)       # TokenStore: xrootd + scitokens
    lake.trust_issuer(issuer)                    # the emulator accepts its tokens
    lake.register_oidc_user("alice", issuer)     # SUB=alice, ISS=<url> -> account alice
    store.add_replicas()                         # the lake's XRD_DISK files on XRD_TOKEN

TokenIssuer (issuer_server.py): discovery and JWKS at
https://127.0.0.1:PORT<path> (IAM's trailing slash kept), certificate from
the lake's CA (lake.ca_cert), an RS256 and an ES256 key (two kids). Being a
JwtIssuer it mints and forges tokens (mint, forge_alg_none,
forge_hs256_pubkey, forge_foreign_key, forge_unknown_kid, tamper). Every
discovery/JWKS request is logged with its User-Agent: requests(kind, ua)
and counts(ua) let a test check key caching.

TokenStore: a second xrootd 5.5.3 (Debian xrootd-server) with XrdHttp and
the scitokens authorization plugin (xrootd-scitokens-plugins,
libXrdAccSciTokens + scitokens-cpp 0.7.3), read-only, serving the lake's
XRD_DISK tree as RSE XRD_TOKEN: https://127.0.0.1:H/rucio/<hash path> and
roots://127.0.0.1:R//rucio/<hash path>. A request needs
"Authorization: Bearer <token>" of a configured issuer whose storage.read
scope covers the path (scope path = storage path minus base_path), or a
wlcg.groups group that the store's group rules grant the path (see
README.md, "Token-enforcing storage"). xrootd 5.5.3 cannot bind an
address: it listens on all interfaces; tests connect to 127.0.0.1 only.

How scitokens-cpp trusts the issuer: it fetches
<iss>/.well-known/openid-configuration and the JWKS with libcurl over
HTTPS, verified against libcurl's built-in CA bundle
(/etc/ssl/certs/ca-certificates.crt); 0.7.3 has no CA setting of its own.
xrootd is therefore started in a private mount namespace in which that one
file is replaced (bind mount) by the system bundle plus the lake's test CA:
the storage really validates the issuer's certificate and really fetches
its keys, and the host's trust store is never touched. Its key cache is
private: XDG_CACHE_HOME=<workdir>/xrd-token-<RSE>/cache.
"""

import http.client
import json
import os
import pwd
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lakegen  # noqa: E402
from jwt_issuer import EcKey, JwtIssuer, RsaKey  # noqa: E402
from lake import (PYTHON, RSE_XRD, LakeProcess, admin_call, XROOTD_BIN, XROOTD_USER, ServerProcess, _ensure_traversable,  # noqa: E402
                  free_port, tail)

ANY_AUD = "https://wlcg.cern.ch/jwt/v1/any"
TOKEN_RSE = "XRD_TOKEN"
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"   # libcurl's built-in CAINFO on Debian 12

# Run as root in the child (after lake's PDEATHSIG shim): a private mount
# namespace in which SYSTEM_CA_BUNDLE is our bundle, then drop to the
# server's user, set PDEATHSIG again (a uid change clears it), check the
# parent is still there (ppid 0: detached, no check) and exec the server.
_NS_SHIM = r"""
import ctypes, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
ppid, bundle, target, uid, gid = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
def check(rc, what):
    if rc != 0:
        sys.stderr.write("ns shim: %s: %s\n" % (what, os.strerror(ctypes.get_errno())))
        sys.exit(1)
check(libc.unshare(0x00020000), "unshare(CLONE_NEWNS)")
check(libc.mount(b"none", b"/", None, 0x4000 | 0x40000, None), "mount --make-rprivate /")
check(libc.mount(bundle.encode(), target.encode(), None, 0x1000, None), "bind-mount the CA bundle")
os.setgroups([])
os.setgid(gid)
os.setuid(uid)
if ppid:
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != ppid:
        sys.exit(1)
os.execvp(sys.argv[6], sys.argv[6:])
"""


def _wait_port_file(path, proc, timeout, what):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        if not proc.alive():
            raise RuntimeError("%s exited during start-up:\n%s" % (what, tail(proc.log_path)))
        if time.time() > deadline:
            raise RuntimeError("%s did not write its port file in %ds\n%s" % (what, timeout, tail(proc.log_path)))
        time.sleep(0.02)
    with open(path) as f:
        return int(f.read().strip())


def curl(url, token=None, ca_cert=None, range_=None, method=None, headers=(), data=None, timeout=20):
    """One request with the curl tool (a C client, like the daemon):
    returns (status, headers dict (lower-case names), body bytes). status 0:
    no HTTP answer (e.g. the TLS handshake failed). `token` goes out as
    "Authorization: Bearer <token>"; `data` (str, bytes or a JSON-able
    object) is POSTed unless `method` says otherwise."""
    with tempfile.NamedTemporaryFile() as body, tempfile.NamedTemporaryFile() as hdrs:
        cmd = ["curl", "-sS", "-o", body.name, "-D", hdrs.name, "--max-time", str(timeout)]
        if ca_cert:
            cmd += ["--cacert", ca_cert]
        if token is not None:
            cmd += ["-H", "Authorization: Bearer " + token]
        if range_:
            cmd += ["-r", range_]
        if method:
            cmd += ["-X", method] if method != "HEAD" else ["-I"]
        for h in headers:
            cmd += ["-H", h]
        if data is not None:
            if not isinstance(data, (str, bytes)):
                data = json.dumps(data)
            cmd += ["--data-binary", "@-"]
        stdin = data.encode() if isinstance(data, str) else data
        subprocess.run(cmd + [url], input=stdin, capture_output=True, timeout=timeout + 10)
        text = open(hdrs.name, "rb").read().decode("latin-1")
        data = open(body.name, "rb").read()
    status, out = 0, {}
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith("HTTP/"):
            status, out = int(line.split()[1]), {}
        elif ":" in line:
            k, v = line.split(":", 1)
            out[k.strip().lower()] = v.strip()
    return status, out, data


NOTSET = object()
_RX_LINE = re.compile(r"^\d{6} \d\d:\d\d:\d\d (\d+) (.*)$")
_RX_OPEN = re.compile(r"ofs_open: \S+ fn=(.*)$")
_RX_TOKEN = re.compile(r"scitokens_Access: (?:New valid|Cached) token mapped_username=.*?, subject=(.*?), "
                       r"issuer=(.*?)(?:, groups=(.*?))?(?:, authorizations=.*)?$")
_RX_DENIED = re.compile(r"ofs_open: \S+ Unable to open (.*); (.*)$")


def parse_opens(text):
    """The open decisions in an xrootd 5.5.3 log (TokenStore.opens). A
    thread logs, for one open: "ofs_open: <tident> fn=PATH", then the
    plugin's lines (none without a token), then "Unable to open PATH; ..."
    if refused; lines of other threads interleave, so state is per thread."""
    out, cur = [], {}
    for line in text.splitlines():
        m = _RX_LINE.match(line)
        if not m:
            continue
        tid, rest = m.groups()
        mo = _RX_OPEN.search(rest)
        if mo and "Unable to open" not in rest:
            # tident user.pid:fd@host names the connection (root://; XrdHttp's
            # bridge shows as "unknown.N")
            cur[tid] = {"path": mo.group(1), "subject": None, "issuer": None, "groups": [], "granted": True,
                        "tident": rest.split(" ", 1)[0]}
            out.append(cur[tid])
            continue
        rec = cur.get(tid)
        if rec is None:
            continue
        if "scitokens_Access: Trying token-based access control" in rest:
            rec["subject"] = "<invalid>"     # until a valid token line says who
            continue
        mt = _RX_TOKEN.search(rest)
        if mt:
            rec["subject"], rec["issuer"] = mt.group(1), mt.group(2)
            rec["groups"] = mt.group(3).split(",") if mt.group(3) else []
            continue
        md = _RX_DENIED.search(rest)
        if md and md.group(1) == rec["path"]:
            rec["granted"] = False
            del cur[tid]
        elif "XrdHttpReq request ended" in rest:
            del cur[tid]
    return out


class TokenIssuer(LakeProcess, JwtIssuer):
    """A JwtIssuer whose discovery and JWKS are served over HTTPS by
    issuer_server.py, a process of `lake` (stopped with it). See the module
    docstring; `url` is the issuer (the `iss` of its tokens)."""

    def __init__(self, lake, name="issuer", path="/", algs=("RS256", "ES256")):
        self.lake = lake
        self.name = name
        self.path = "/" + path.strip("/") + ("/" if path.strip("/") else "")
        self.workdir = os.path.join(lake.workdir, name)
        self.key = "issuer:" + name
        self.port = None
        self.url = None
        self.trusted_by_catalogue = False
        os.makedirs(self.workdir, exist_ok=True)
        super().__init__(os.path.join(self.workdir, "keys"), issuer=None, algs=algs)
        self._retired = []      # rotated-out keys still published
        self._rotations = 0

    # -- process ------------------------------------------------------------
    def _cmd(self, port):
        conf = os.path.join(self.workdir, "issuer.json")
        with open(conf, "w") as f:
            json.dump({"issuers": {self.path: {"jwks": self.jwks()}}}, f)
        return [PYTHON, os.path.join(HERE, "issuer_server.py"), "--port", str(port),
                "--port-file", os.path.join(self.workdir, "port"), "--config", conf,
                "--log", os.path.join(self.workdir, "requests.log"),
                "--tls-cert", self.lake.server_cert, "--tls-key", self.lake.server_key]

    def start(self, timeout=20):
        """Start (or restart on the same port) and wait until it answers."""
        proc = self.lake.procs.get(self.key)
        if proc is not None and proc.alive():
            return self
        port_file = os.path.join(self.workdir, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        proc = ServerProcess(self.key, self._cmd(self.port or 0), os.path.join(self.workdir, "issuer.log"),
                             cwd=self.workdir, detach=self.lake.detached).start()
        self.lake.procs[self.key] = proc
        self.port = _wait_port_file(port_file, proc, timeout, "issuer server")
        self.url = "https://127.0.0.1:%d%s" % (self.port, self.path)
        self.issuer = self.url
        return self._await_health(proc, time.time() + timeout, "issuer server")

    # -- URLs -----------------------------------------------------------------
    @property
    def discovery_url(self):
        return self.url.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def jwks_url(self):
        return self.url.rstrip("/") + "/jwk"

    # -- admin ----------------------------------------------------------------
    def _admin(self, method, path, body=None, timeout=10):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                           context=self.lake._ssl_context())
        return admin_call(conn, "issuer", method, path, body)

    def requests(self, kind=None, ua=None):
        """Discovery/JWKS requests seen so far (oldest first): dicts with
        time, method, path, kind ("discovery", "jwks", "other"), issuer,
        status, ua. `ua`: keep those whose User-Agent contains it ("" = no
        User-Agent header at all, e.g. scitokens-cpp)."""
        out = []
        for r in self._admin("GET", "requests"):
            if kind is not None and r["kind"] != kind:
                continue
            if ua is not None and (r["ua"] is not None if ua == "" else ua not in (r["ua"] or "")):
                continue
            out.append(r)
        return out

    def counts(self, ua=None):
        """{"discovery": n, "jwks": n, "other": n} (see requests())."""
        c = {"discovery": 0, "jwks": 0, "other": 0}
        for r in self.requests(ua=ua):
            c[r["kind"]] += 1
        return c

    def reset(self):
        """Empty the request log (faults stay)."""
        self._admin("POST", "reset")

    def set_fault(self, match, mode, **kw):
        """issuer_server.py fault (status, malformed, hang, drop, delay) on
        paths matching the regex `match`, e.g. set_fault("jwk$", "status",
        status=503) or set_fault("", "drop") for an issuer that is down."""
        return self._admin("POST", "fault", dict(kw, match=match, mode=mode))["id"]

    def clear_faults(self):
        self._admin("DELETE", "fault")

    # -- keys -------------------------------------------------------------------
    def jwks(self):
        keys = [k.jwk() for k in self.keys.values()] + [k.jwk() for k in getattr(self, "_retired", [])]
        return {"keys": keys}

    def publish(self):
        """Serve the current JWKS (and give it to the emulator if it trusts
        this issuer)."""
        if self.port:
            self._admin("POST", "issuer", {"path": self.path, "jwks": self.jwks()})
        if self.trusted_by_catalogue:
            self.lake.trust_issuer(self)

    def rotate(self, alg="RS256", keep_old=True):
        """Sign `alg` tokens with a new key (new kid) from now on and
        publish it; the old key stays in the JWKS if `keep_old`. Returns
        the new kid."""
        self._rotations += 1
        path = os.path.join(self.key_dir, "key-%s-%d-%d.pem" % (alg.lower(), self._rotations, os.getpid()))
        if os.path.exists(path):
            os.unlink(path)
        old = self.keys[alg]
        self.keys[alg] = RsaKey(path) if alg == "RS256" else EcKey(path)
        if keep_old:
            self._retired.append(old)
        if alg == "RS256":
            self.rsa = self.keys[alg]
            self.key_path, self.n, self.e, self.kid = self.rsa.path, self.rsa.n, self.rsa.e, self.rsa.kid
        self.publish()
        return self.keys[alg].kid


class TokenStore(LakeProcess):
    """xrootd 5.5.3 + XrdHttp + libXrdAccSciTokens serving the lake's
    XRD_DISK tree as RSE `rse`, enforcing the tokens of `issuers`. A
    process of `lake` (stopped with it). See the module docstring and
    README.md "Token-enforcing storage"."""

    def __init__(self, lake, issuers, rse=TOKEN_RSE, base_path="/rucio", audiences=None, group_rules=None,
                 trust="ca", trace="all"):
        """`issuers`: TokenIssuers (or issuer URLs) whose tokens count.
        `base_path`: the storage path a scope path is relative to
        (storage.read:/user/alice covers /rucio/user/alice with "/rucio").
        `audiences`: accepted `aud` values (default: the store's https and
        roots origins and the WLCG "any" audience). `group_rules`: {group:
        path or [paths]} granting lookup+read to tokens whose wlcg.groups
        hold the group. `trust`: how scitokens-cpp comes to trust the
        issuers (README.md): "ca" (default) = it fetches their keys over
        HTTPS, the lake's CA added to libcurl's bundle in a private mount
        namespace; "keycache" = no namespace, its key cache is seeded with
        the issuers' JWKS (valid 30 days, never refetched: for hosts where
        mount namespaces are not allowed); "none" = namespace with the
        system bundle only (no fetch can succeed: proves TLS is checked)."""
        if trust not in ("ca", "keycache", "none"):
            raise ValueError("trust must be 'ca', 'keycache' or 'none'")
        self.lake = lake
        self.trust = trust
        self.issuers = list(issuers)
        self.rse = rse
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else "/"
        self.group_rules = dict(group_rules or {})
        self.trace = trace
        self.workdir = os.path.join(lake.workdir, "xrd-token-" + rse)
        self.tree = os.path.join(lake.lake_dir, "rse", RSE_XRD)
        self.key = "xrd-token:" + rse
        self.ports = {}
        self.registered = False
        self.audiences = list(audiences) if audiences is not None else None
        self._log_from = None   # size of xrootd.log (appended to) when this handle first started it
        os.makedirs(self.workdir, exist_ok=True)

    # -- configuration ----------------------------------------------------------
    def audience_list(self):
        """What the store accepts in `aud`: its own origins and the WLCG
        'any' audience (unless the constructor was given a list)."""
        if self.audiences is not None:
            return self.audiences
        return ["https://127.0.0.1:%d" % self.ports["http"], "roots://127.0.0.1:%d" % self.ports["root"], ANY_AUD]

    def _scitokens_cfg(self):
        lines = ["# generated by tests/servers/tokinfra.py (xrootd 5.5.3 libXrdAccSciTokens)",
                 "[Global]", "audience = " + ", ".join(self.audience_list()),
                 # no token or no matching scope: ask the authdb (group rules)
                 "onmissing = passthrough", ""]
        for i, iss in enumerate(self.issuers):
            url = iss.url if hasattr(iss, "url") else str(iss)
            lines += ["[Issuer test%d]" % i, "issuer = " + url, "base_path = " + self.base_path,
                      "map_subject = true", ""]
        return "\n".join(lines)

    def _authdb(self):
        """acc.authdb: one 'g' rule per (wlcg.groups group, path). The
        scitokens plugin hands the token's groups to this database when its
        scopes do not cover the request (5.5.3: only wlcg.groups)."""
        lines = ["# generated by tests/servers/tokinfra.py: group -> paths (privileges l=lookup r=read)"]
        for group, paths in sorted(self.group_rules.items()):
            for p in ([paths] if isinstance(paths, str) else paths):
                lines.append("g %s %s lr" % (group, p))
        if len(lines) == 1:
            # an authdb needs at least one rule; this group is never in a token
            lines.append("g /ruciofs-test-nobody /nonexistent lr")
        return "\n".join(lines) + "\n"

    def _xrootd_cfg(self, x):
        return """# generated by tests/servers/tokinfra.py (xrootd 5.5.3; README.md "Token-enforcing storage")
xrd.port %(root)d
xrd.protocol XrdHttp:%(http)d libXrdHttp.so
all.export /rucio r/o
oss.localroot %(tree)s
all.adminpath %(x)s/admin
all.pidpath %(x)s
xrootd.chksum adler32
xrd.tls %(x)s/tls/server.pem %(x)s/tls/server.key
xrd.tlsca certdir %(x)s/tls/cadir
http.desthttps true
xrootd.seclib libXrdSec.so
sec.protocol ztn
ofs.authorize 1
ofs.authlib ++ libXrdAccSciTokens.so config=%(x)s/scitokens.cfg
acc.authdb %(x)s/authdb
acc.authrefresh 60
# XrdHttp 5.5.3 passes the Authorization header to the plugin only as this CGI
http.header2cgi Authorization authz
http.listingdeny true
scitokens.trace %(trace)s
http.trace request
ofs.trace open
""" % {"root": self.ports["root"], "http": self.ports["http"], "tree": self.tree, "x": x, "trace": self.trace}

    def _bundle(self, x):
        """libcurl's bundle as scitokens-cpp in the store's namespace sees
        it: the system's CAs plus the lake's test CA."""
        path = os.path.join(x, "ca-bundle.crt")
        with open(path, "wb") as out:
            if os.path.exists(SYSTEM_CA_BUNDLE):
                with open(SYSTEM_CA_BUNDLE, "rb") as f:
                    out.write(f.read())
            if self.trust == "ca":
                with open(self.lake.ca_cert, "rb") as f:
                    out.write(b"\n" + f.read())
        os.chmod(path, 0o644)
        return path

    def _prepare(self):
        x = self.workdir
        pw = pwd.getpwnam(XROOTD_USER)
        for d in ("admin", "cache", os.path.join("tls", "cadir")):
            os.makedirs(os.path.join(x, d), exist_ok=True)
        shutil.copy(self.lake.server_cert, os.path.join(x, "tls", "server.pem"))
        shutil.copy(self.lake.server_key, os.path.join(x, "tls", "server.key"))
        cadir_src = os.path.join(self.lake.workdir, "tls", "cadir")
        for fn in os.listdir(cadir_src):
            dst = os.path.join(x, "tls", "cadir", fn)
            if os.path.lexists(dst):
                os.unlink(dst)
            src = os.path.join(cadir_src, fn)
            if os.path.islink(src):
                os.symlink(os.readlink(src), dst)
            else:
                shutil.copy(src, dst)
        for name, text in (("xrootd.cfg", self._xrootd_cfg(x)), ("scitokens.cfg", self._scitokens_cfg()),
                           ("authdb", self._authdb())):
            with open(os.path.join(x, name), "w") as f:
                f.write(text)
        bundle = self._bundle(x)
        if self.trust == "keycache":
            self._seed_key_cache(os.path.join(x, "cache", "scitokens"))
        for root, dirs, files in os.walk(x):
            for n in dirs + files:
                os.lchown(os.path.join(root, n), pw.pw_uid, pw.pw_gid)
        os.chown(x, pw.pw_uid, pw.pw_gid)
        os.chmod(x, 0o755)
        os.chmod(os.path.join(x, "tls", "server.key"), 0o600)
        _ensure_traversable(x)
        _ensure_traversable(os.path.join(self.tree, "rucio"))
        return pw, bundle

    def _seed_key_cache(self, d):
        """What scitokens-cpp 0.7.3 stores after a fetch, for each issuer:
        table keycache(issuer, keys = {"jwks", "next_update", "expires"})
        in $XDG_CACHE_HOME/scitokens/scitokens_cpp.sqllite."""
        import sqlite3
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o700)
        later = int(time.time()) + 30 * 86400
        db = sqlite3.connect(os.path.join(d, "scitokens_cpp.sqllite"))
        try:
            db.execute("CREATE TABLE IF NOT EXISTS keycache (issuer text UNIQUE PRIMARY KEY NOT NULL,"
                       "keys text NOT NULL)")
            for iss in self.issuers:
                doc = json.dumps({"jwks": iss.jwks(), "next_update": later, "expires": later},
                                 separators=(",", ":"))
                db.execute("INSERT OR REPLACE INTO keycache VALUES (?, ?)", (iss.url, doc))
            db.commit()
        finally:
            db.close()

    # -- process ------------------------------------------------------------------
    def start(self, timeout=30):
        """Start (or restart on the same ports) and wait until its HTTPS
        port answers."""
        proc = self.lake.procs.get(self.key)
        if proc is not None and proc.alive():
            return self
        if not self.ports:
            self.ports = {"http": free_port(), "root": free_port()}
        x = self.workdir
        pw, bundle = self._prepare()
        log = os.path.join(x, "xrootd.log")
        if self._log_from is None:
            self._log_from = os.path.getsize(log) if os.path.exists(log) else 0
            if self.trust != "keycache":
                # keys cached by an earlier session for an issuer that had
                # the same port would be taken for this one's
                shutil.rmtree(os.path.join(x, "cache", "scitokens"), ignore_errors=True)
        ppid = 0 if self.lake.detached else os.getpid()
        cmd = [XROOTD_BIN, "-c", os.path.join(x, "xrootd.cfg"), "-l", log, "-s", os.path.join(x, "xrootd.pid")]
        user = XROOTD_USER
        if self.trust != "keycache":
            cmd = [PYTHON, "-c", _NS_SHIM, str(ppid), bundle, SYSTEM_CA_BUNDLE, str(pw.pw_uid),
                   str(pw.pw_gid)] + cmd
            user = None     # the shim drops to it after the mount
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": x, "LANG": "C.UTF-8",
               "XDG_CACHE_HOME": os.path.join(x, "cache")}
        proc = ServerProcess(self.key, cmd, os.path.join(x, "stdout.log"), cwd=x, detach=self.lake.detached,
                             env=env, user=user).start()
        self.lake.procs[self.key] = proc
        self._wait(proc, log, timeout)
        return self

    def _wait(self, proc, log, timeout):
        deadline = time.time() + timeout
        last = None
        while True:
            if not proc.alive():
                raise RuntimeError("token xrootd exited during start-up:\n%s\n%s"
                                   % (tail(proc.log_path), tail(log)))
            try:
                conn = http.client.HTTPSConnection("127.0.0.1", self.ports["http"], timeout=3,
                                                   context=self.lake._ssl_context())
                conn.request("HEAD", "/rucio/")
                conn.getresponse().read()
                conn.close()
                return
            except (OSError, http.client.HTTPException, ssl.SSLError) as e:
                last = e
            if time.time() > deadline:
                raise RuntimeError("token xrootd did not answer on %d in %ds (%r):\n%s"
                                   % (self.ports["http"], timeout, last, tail(log)))
            time.sleep(0.05)

    def restart(self, forget_keys=False):
        """Stop, rewrite the configuration (issuers, group_rules, ...) and
        start again on the same ports. forget_keys=True also empties
        scitokens-cpp's key cache: 0.7.3 does not refetch a JWKS for an
        unknown kid before its next_update (600 s after the fetch), so a
        store must be restarted this way after an issuer's key rotation."""
        self.stop()
        if forget_keys:
            shutil.rmtree(os.path.join(self.workdir, "cache", "scitokens"), ignore_errors=True)
        return self.start()

    # -- addresses ------------------------------------------------------------------
    @property
    def http_port(self):
        return self.ports["http"]

    @property
    def root_port(self):
        return self.ports["root"]

    def storage_path(self, scope, name):
        return "/rucio/" + lakegen.lfn2path(scope, name)

    def scope_path(self, scope, name=None):
        """The path to put in a storage.read scope for scope:name (or, with
        name None, for every file of the scope): storage path minus
        base_path. E.g. "/user/alice" with the default base_path /rucio."""
        p = self.storage_path(scope, name) if name else "/rucio/" + lakegen.lfn2path(scope, "x").rsplit("/", 3)[0]
        if self.base_path != "/":
            p = p[len(self.base_path):] if p.startswith(self.base_path + "/") else None
        if p is None:
            raise ValueError("%s is outside the store's base path %s" % (scope, self.base_path))
        return p

    def url(self, scope, name):
        """https URL of the file (percent-encoded)."""
        from urllib.parse import quote
        return "https://127.0.0.1:%d%s" % (self.ports["http"], quote(self.storage_path(scope, name), safe="/"))

    def get(self, scope, name, token=None, range_=None, **kw):
        """curl GET of the file: (status, headers, body)."""
        return curl(self.url(scope, name), token=token, ca_cert=self.lake.ca_cert, range_=range_, **kw)

    # -- catalogue --------------------------------------------------------------------
    def protocol(self, priority=1):
        return {"scheme": "https", "hostname": "127.0.0.1", "port": self.ports["http"], "prefix": "/rucio",
                "priority": priority}

    def root_protocol(self, priority=1, scheme="roots"):
        """The store's root:// port (TLS + ztn) as an RSE protocol."""
        return {"scheme": scheme, "hostname": "127.0.0.1", "port": self.ports["root"], "prefix": "//rucio",
                "priority": priority}

    def add_root_replicas(self, files, rse=None, scheme="roots", priority=1):
        """Register the RSE `rse` (default <RSE>_ROOTS) naming this store's
        root:// port (`scheme` roots or root; the server asks for TLS and
        ztn either way) and put `files` ((scope, name) or manifest
        entries) on it. Returns the RSE name."""
        rse = rse or self.rse + "_" + scheme.upper()
        if rse not in self.lake.rse_protocols:
            self.lake.add_rse(rse, [self.root_protocol(priority, scheme)], {"token_protected": True})
        keys = [(f["scope"], f["name"]) if isinstance(f, dict) else tuple(f) for f in files]
        self.lake.add_replicas([{"scope": s, "name": n, "rse": rse} for s, n in keys])
        return rse

    def register(self, priority=1):
        """Register the RSE (https, read priority `priority`) in the lake's
        catalogue (once)."""
        if not self.registered:
            self.lake.add_rse(self.rse, [self.protocol(priority)], {"token_protected": True})
            self.registered = True

    def add_replicas(self, files=None, exclusive=False, priority=1):
        """Put `files` (manifest entries or (scope, name); default: every
        lake file that XRD_DISK holds, i.e. every file this store can serve)
        on this RSE. exclusive=True removes their other replicas, so the
        token store is the only place to read them (a mount then cannot
        fall back to storage that ignores tokens). Registers the RSE first.
        Returns the (scope, name) list."""
        self.register(priority)
        if files is None:
            files = [f for f in self.lake.manifest if RSE_XRD in f.get("rses", ())]
        keys = [(f["scope"], f["name"]) if isinstance(f, dict) else tuple(f) for f in files]
        rows = [{"scope": s, "name": n, "rse": self.rse} for s, n in keys]
        if exclusive:
            for s, n in keys:
                for other in self.lake.files[(s, n)].get("rses", ()):
                    rows.append({"scope": s, "name": n, "rse": other, "remove": True})
        self.lake.add_replicas(rows)
        return keys

    # -- what the storage saw ----------------------------------------------------------
    def log_text(self):
        """xrootd's log since this handle first started the store (the
        file in the workdir keeps earlier sessions' lines too)."""
        try:
            with open(os.path.join(self.workdir, "xrootd.log"), "rb") as f:
                f.seek(self._log_from or 0)
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def opens(self, path_contains=None, subject=NOTSET, granted=None):
        """Every file open the store decided, oldest first, from its log
        (scitokens.trace all + ofs.trace open): dicts with "path", "subject"
        (the `sub` of the token that came with it; None: no token;
        "<invalid>": a token the plugin refused to parse or verify),
        "issuer", "groups" (list), "granted" (bool) and "tident" (the
        connection: user.pid:fd@host for root://). An HTTP GET is one
        open; bytes flow only after a granted one, so "no granted open for
        B's subject" means B's token got no byte. Filters: path_contains,
        subject, granted."""
        out = [r for r in parse_opens(self.log_text())
               if (path_contains is None or path_contains in r["path"])
               and (subject is NOTSET or r["subject"] == subject)
               and (granted is None or r["granted"] == granted)]
        return out


# Groups the token lake's store grants by wlcg.groups (acc.authdb 'g' rules).
DEFAULT_GROUP_RULES = {"/escape/cta": "/rucio/cta", "/escape/lsst": "/rucio/lsst",
                       "/escape/phys": "/rucio/group/phys"}


class TokenLake:
    """A lake set up for per-caller tests: an issuer over HTTPS, the token
    store XRD_TOKEN holding every XRD_DISK file (with exclusive=True its
    only replica, so nothing can be read without a token), the emulator
    trusting the issuer (expected audience: the WLCG "any" audience, which
    the store accepts too) and OIDC identities SUB=alice / SUB=bob mapped to
    the accounts alice / bob."""

    def __init__(self, lake, group_rules=None, exclusive=True, issuer_path="/"):
        self.lake = lake
        self.issuer = lake.start_issuer(path=issuer_path)
        self.store = lake.start_token_store(self.issuer, group_rules=(
            DEFAULT_GROUP_RULES if group_rules is None else group_rules))
        self.files = self.store.add_replicas(exclusive=exclusive)
        self.configure_catalogue()

    def configure_catalogue(self):
        """(Again, after lake.start_catalogue(): the emulator keeps runtime
        state in memory only.) Replicas are NOT redone here."""
        self.lake.admin("POST", "config", {"expected_audience": ANY_AUD})
        self.lake.trust_issuer(self.issuer)
        for sub in ("alice", "bob"):
            self.lake.register_oidc_user(sub, self.issuer)

    def token(self, sub, read=(), groups=(), iam_groups=None, alg="RS256", aud=ANY_AUD, lifetime=3600, **claims):
        """A token of the lake's issuer for `sub`: scope "openid profile"
        plus storage.read:<p> for each p in `read` (scope paths: relative to
        the store's base path /rucio, see TokenStore.scope_path),
        wlcg.groups `groups`, IAM "groups" `iam_groups`. Other claims as
        JwtIssuer.mint (e.g. scope= to set it whole, nbf=, iss=)."""
        claims.setdefault("scope", " ".join(["openid profile"] + ["storage.read:" + p for p in read]))
        return self.issuer.mint(sub, groups=list(groups) if groups else None, iam_groups=iam_groups, alg=alg,
                                aud=aud, lifetime=lifetime, **claims)

    def user_scope(self, scope):
        """storage.read path covering every file of a Rucio scope, e.g.
        user_scope("user.alice") -> "/user/alice"."""
        return self.store.scope_path(scope)
