"""Self-test of the ruciofs test fixtures (emulator, storage servers, lake).

    /usr/bin/python3 -m pytest tests/servers -q

HTTP checks go through `curl --cacert` (as a C client would talk TLS), not
through Python's http stack. The generated data is cached in
$RUCIOFS_LAKE_CACHE (default /tmp/ruciofs-lake-cache-<uid>), so only the first
session pays the ~7 s generation.
"""

import hashlib
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import zlib

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lake as lakemod  # noqa: E402
from lake import Lake, RSE_NGINX, RSE_XRD  # noqa: E402
import faultstore  # noqa: E402

CACHE = os.environ.get("RUCIOFS_LAKE_CACHE") or "/tmp/ruciofs-lake-cache-%d" % os.getuid()


def quote_did(s):
    """What the Rucio client does: quote_plus ('/' -> %2F). Spaces become '+',
    which WSGI does NOT decode in paths, so use %20 for names with spaces."""
    return urllib.parse.quote(s, safe="")


class Curl:
    def __init__(self, lake):
        self.lake = lake

    def __call__(self, path_or_url, token=None, method=None, data=None, headers=(), extra=(), timeout=20):
        url = path_or_url if "://" in path_or_url else self.lake.rucio_host + path_or_url
        with tempfile.NamedTemporaryFile() as body_file:
            cmd = ["curl", "-sS", "--cacert", self.lake.ca_cert, "-D", "-", "-o", body_file.name,
                   "--max-time", str(timeout)]
            if token:
                cmd += ["-H", "X-Rucio-Auth-Token: " + token]
            if method:
                cmd += ["-X", method]
            if data is not None:
                cmd += ["--data-binary", data if isinstance(data, str) else json.dumps(data)]
            for h in headers:
                cmd += ["-H", h]
            cmd += list(extra) + [url]
            p = subprocess.run(cmd, capture_output=True, timeout=timeout + 10)
            body = body_file.read()
        out, err = p.stdout, p.stderr
        status, hdrs = None, {}
        for line in out.decode("utf-8", "replace").split("\r\n"):
            if line.startswith("HTTP/"):
                status, hdrs = int(line.split()[1]), {}
            elif ":" in line:
                k, v = line.split(":", 1)
                hdrs.setdefault(k.strip().lower(), v.strip())
        return Result(p.returncode, status, hdrs, body, err.decode("utf-8", "replace"))


class Result:
    def __init__(self, rc, status, headers, body, err):
        self.rc, self.status, self.headers, self.body, self.err = rc, status, headers, body, err

    def lines(self):
        return [json.loads(x) for x in self.body.decode().splitlines() if x]

    def json(self):
        return json.loads(self.body)


@pytest.fixture(scope="module", params=["41", "1.31"])
def lake(request, tmp_path_factory):
    wd = tmp_path_factory.mktemp("lake-" + request.param)
    with Lake(str(wd), profile="test", flavour=request.param, cache_dir=CACHE) as lk:
        yield lk


@pytest.fixture(scope="module")
def lake41(tmp_path_factory):
    wd = tmp_path_factory.mktemp("lake41")
    with Lake(str(wd), profile="test", flavour="41", cache_dir=CACHE) as lk:
        yield lk


@pytest.fixture
def curl(lake):
    return Curl(lake)


def login(c, user="alice", password=None):
    r = c("/auth/userpass", headers=["X-Rucio-Username: " + user,
                                     "X-Rucio-Password: " + (password or user + "-secret")])
    assert r.status == 200, r.body
    return r.headers["x-rucio-auth-token"]


# --------------------------------------------------------------------------
def test_ping_and_userpass(lake, curl):
    r = curl("/ping")
    assert r.status == 200 and r.headers["content-type"] == "application/json"
    assert r.json()["version"].startswith("41" if lake.flavour == "41" else "1.31")
    r = curl("/auth/userpass", headers=["X-Rucio-Username: alice", "X-Rucio-Password: alice-secret",
                                        "X-Rucio-AppID: fusetest"])
    assert r.status == 200
    assert r.headers["x-rucio-auth-account"] == "alice"
    assert r.headers["x-rucio-auth-token"].startswith("alice-alice-fusetest-")
    assert r.headers["x-rucio-auth-token-expires"].endswith(" UTC")
    assert r.headers["content-length"] == "0"
    bad = curl("/auth/userpass", headers=["X-Rucio-Username: alice", "X-Rucio-Password: nope"])
    assert (bad.status, bad.headers["exceptionclass"]) == (401, "IdentityNotFound")
    assert bad.headers["content-type"] == "application/octet-stream"
    assert bad.json()["ExceptionClass"] == "IdentityNotFound"
    multi = curl("/auth/userpass", headers=["X-Rucio-Username: shared", "X-Rucio-Password: shared-secret"])
    assert multi.status == 206 and multi.headers["x-rucio-auth-accounts"] == "alice,bob"
    v = curl("/auth/validate", token=r.headers["x-rucio-auth-token"])
    assert v.status == 200 and v.body.startswith(b"{'account': 'alice'")


def test_token_required(lake, curl):
    r = curl("/dids/user.alice/")
    if lake.flavour == "41":
        assert (r.status, r.headers["exceptionclass"], r.json()["ExceptionMessage"]) == \
            (400, "ValueError", "Token must be set.")
    else:
        assert (r.status, r.headers["exceptionclass"]) == (401, "CannotAuthenticate")
    r = curl("/dids/user.alice/", token="alice-alice-unknown-deadbeef")
    assert (r.status, r.headers["exceptionclass"]) == (401, "CannotAuthenticate")


def test_listing(lake, curl):
    tok = login(curl)
    r = curl("/scopes/", token=tok)
    assert r.json() == ["cta", "empty", "group.phys", "lsst", "user.alice", "user.bob"]
    assert curl("/scopes", token=tok).status == 308
    r = curl("/dids/user.alice", token=tok)
    assert r.status == 308 and r.headers["location"].endswith("/dids/user.alice/")
    top = {d["name"]: d for d in curl("/dids/user.alice/", token=tok).lines()}
    assert set(top) == {"cont_top", "cont_empty", "empty_ds", "open_ds", "top_file.txt"}
    assert top["top_file.txt"]["bytes"] == 47 and top["cont_top"]["bytes"] is None
    kids = curl("/dids/user.alice/cont_mid1/dids", token=tok).lines()
    assert [k["name"] for k in kids] == ["big_ds", "small_ds"]
    files = curl("/dids/user.alice/small_ds/dids", token=tok).lines()
    by = {f["name"]: f for f in files}
    assert by["f4097.bin"]["bytes"] == 4097 and len(by["zero.bin"]["adler32"]) == 8
    assert curl("/dids/empty/", token=tok).status == 200
    r = curl("/dids/user.alice/nope/dids", token=tok)
    assert r.status == 200 and r.headers["content-length"] == "0" and r.body == b""
    r = curl("/dids/user.alice/nope", token=tok)
    assert (r.status, r.headers["exceptionclass"]) == (404, "DataIdentifierNotFound")
    meta = curl("/dids/lsst/%s/meta" % quote_did("Ωmega data.fits"), token=tok).json()
    assert meta["bytes"] == 8640 and meta["created_at"].endswith(" UTC") and len(meta) == 42
    # names with '/' exist only on 41; on 1.31 the greedy split eats them into the scope
    r = curl("/dids/lsst/%s" % quote_did("run1/raw/evt 001.dat"), token=tok)
    if lake.flavour == "41":
        assert r.status == 200 and r.json()["bytes"] == 1500
    else:
        assert r.status == 404 and "lsst/run1/raw:evt 001.dat" in r.json()["ExceptionMessage"]
    longs = curl("/dids/lsst/dids/search?type=file&long=True&name=*.fits", token=tok).lines()
    assert {x["did_type"] for x in longs} == {"FILE" if lake.flavour == "41" else "DIDType.FILE"}
    # route, method and Accept errors
    r = curl("/nothing", token=tok)
    assert r.status == 404 and r.headers["content-type"].startswith("text/html")
    assert curl("/dids/user.alice/small_ds/files", token=tok, method="PUT").status == 405
    r = curl("/dids/user.alice/", token=tok, headers=["Accept: application/json"])
    assert (r.status, r.headers["exceptionclass"]) == (406, "UnsupportedRequestedContentType")


def test_replicas_and_range_reads(lake, curl):
    tok = login(curl)
    entry = lake.files[("user.alice", "random40M.bin")]
    r = curl("/replicas/list", token=tok, method="POST",
             data={"dids": [{"scope": "user.alice", "name": "big_ds"}], "schemes": ["https"]})
    assert r.status == 200 and r.headers["content-type"] == "application/x-json-stream"
    assert "content-length" not in r.headers      # chunked
    files = {f["name"]: f for f in r.lines()}
    assert set(files) == {"random40M.bin", "notes.txt"}
    f = files["random40M.bin"]
    pfns = list(f["pfns"])
    assert [f["pfns"][p]["rse"] for p in pfns] == [RSE_NGINX, RSE_XRD]
    assert [f["pfns"][p]["priority"] for p in pfns] == [1, 2]
    assert all(p.startswith("https://127.0.0.1:") for p in pfns)
    assert pfns[0] == lake.pfn("user.alice", "random40M.bin", RSE_NGINX)
    with open(entry["local_path"], "rb") as fh:
        fh.seek(12_345_678)
        want = fh.read(100_000)
    got = [curl(p, extra=["-r", "12345678-12445677"]) for p in pfns]
    assert [g.status for g in got] == [206, 206]
    assert got[0].body == got[1].body == want
    # root:// appears when asked for, after the https ones
    r = curl("/replicas/list", token=tok, method="POST",
             data={"dids": [{"scope": "user.alice", "name": "one.bin"}], "schemes": ["davs", "https", "root"]})
    pf = r.lines()[0]["pfns"]
    assert [v["priority"] for v in pf.values()] == [1, 2, 3]
    assert list(pf)[2].startswith("root://127.0.0.1:")
    # unknown DID: empty 200; bad sort only rejected by 41
    r = curl("/replicas/list", token=tok, method="POST", data={"dids": [{"scope": "cta", "name": "zzz"}]})
    assert r.status == 200 and r.body == b""
    r = curl("/replicas/list", token=tok, method="POST",
             data={"dids": [{"scope": "user.alice", "name": "one.bin"}], "sort": "closeness"})
    assert r.status == (400 if lake.flavour == "41" else 200)


def test_sparse_file_markers(lake, curl):
    e = lake.files[("cta", "sparse_5g.bin")]
    assert e["size"] == 5 * 2 ** 30 + 7
    for m in e["markers"]:
        blob = bytes.fromhex(m["hex"])
        for rse in (RSE_NGINX, RSE_XRD):
            r = curl(lake.pfn("cta", "sparse_5g.bin", rse),
                     extra=["-r", "%d-%d" % (m["offset"], m["offset"] + len(blob) - 1)])
            assert r.status == 206 and r.body == blob, (rse, m)


def test_root_protocol(lake):
    url = lake.pfn("user.alice", "f4097.bin", RSE_XRD, "root")
    r = subprocess.run(["xrdcp", "-f", "-s", url, "-"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    with open(lake.files[("user.alice", "f4097.bin")]["local_path"], "rb") as fh:
        assert r.stdout == fh.read()
    assert lake.storage_requests(RSE_XRD, path_contains="f4097.bin", method="OPEN") >= 1


def test_jwt(lake41):
    c = Curl(lake41)
    good = lake41.issuer.mint("alice")
    assert c("/dids/user.alice/", token=good).status == 200
    assert c("/dids/user.alice/", token=lake41.issuer.mint("alice", lifetime=-5)).status == 401
    assert c("/dids/user.alice/", token=lake41.issuer.mint("alice", aud="someone-else")).status == 401
    assert c("/dids/user.alice/", token=lake41.issuer.mint("nobody")).status == 401
    h, p, s = good.split(".")
    assert c("/dids/user.alice/", token=h + "." + p + "." + s[:-4] + "AAAA").status == 401
    v = c("/auth/validate", token=lake41.issuer.mint("bob"))
    assert v.status == 200 and b"'account': 'bob'" in v.body


def test_jwt_issuer_es256_and_forgeries(tmp_path):
    """Both algorithms verify (ours against openssl's own check for ES256);
    every forgery fails verify_jws, the check the emulator makes."""
    import jwt_issuer
    iss = jwt_issuer.JwtIssuer(str(tmp_path), issuer="https://127.0.0.1:1/", algs=("RS256", "ES256"))
    keys = iss.jwks()["keys"]
    assert sorted(k["kty"] for k in keys) == ["EC", "RSA"] and len({k["kid"] for k in keys}) == 2
    es = iss.mint("alice", alg="ES256")
    assert jwt_issuer.verify_jws(es, keys)["sub"] == "alice"
    assert jwt_issuer.verify_jws(iss.mint("alice"), keys)["iss"] == "https://127.0.0.1:1/"
    h, p, s = es.split(".")
    raw = jwt_issuer.b64url_decode(s)

    def der_int(v):
        b = v.to_bytes(v.bit_length() // 8 + 1, "big")
        return b"\x02" + bytes([len(b)]) + b
    body = der_int(int.from_bytes(raw[:32], "big")) + der_int(int.from_bytes(raw[32:], "big"))
    (tmp_path / "sig").write_bytes(b"\x30" + bytes([len(body)]) + body)
    (tmp_path / "msg").write_bytes((h + "." + p).encode())
    (tmp_path / "pub.pem").write_bytes(iss.keys["ES256"].public_pem())
    assert subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "pub.pem"), "-signature",
                           str(tmp_path / "sig"), str(tmp_path / "msg")], capture_output=True).returncode == 0
    forged = [iss.forge_alg_none("alice"), iss.forge_hs256_pubkey("alice"), iss.forge_foreign_key("alice"),
              iss.forge_foreign_key("alice", alg="ES256"), iss.forge_unknown_kid("alice"),
              iss.tamper(es, sub="bob"), iss.tamper(iss.mint("alice"), scope="storage.read:/"),
              iss.mint("alice", header={"alg": "ES256"})]      # RSA signature sold as ES256
    for tok in forged:
        with pytest.raises(ValueError):
            jwt_issuer.verify_jws(tok, keys)
    claims = jwt_issuer.decode_unverified(iss.mint("a", groups=None, iam_groups=["escape"], aud=["x", "y"]))[1]
    assert claims["groups"] == ["escape"] and "wlcg.groups" not in claims and claims["aud"] == ["x", "y"]


def test_issuer_server_routes():
    import issuer_server
    iss = issuer_server.Issuers()
    iss.set("/", {"keys": []})
    iss.set("realms/escape", {"keys": []})
    assert iss.route("/.well-known/openid-configuration") == ("discovery", "/")
    assert iss.route("//.well-known/openid-configuration") == ("discovery", "/")
    assert iss.route("/jwk") == ("jwks", "/")
    assert iss.route("/realms/escape/.well-known/openid-configuration") == ("discovery", "/realms/escape/")
    assert iss.route("/.well-known/openid-configuration/realms/escape") == ("discovery", "/realms/escape/")
    assert iss.route("/realms/escape/jwk") == ("jwks", "/realms/escape/")
    assert iss.route("/realms/jwk") == (None, None)


def test_faults(lake41):
    c = Curl(lake41)
    tok = login(c)
    lake41.set_fault("/dids/user.alice/broken_ds/dids", "malformed")
    r = c("/dids/user.alice/broken_ds/dids", token=tok)
    assert r.status == 200 and b"\xff" in r.body
    lake41.set_fault("^/dids/cta/many_files/dids$", "truncated", count=1)
    r = c("/dids/cta/many_files/dids", token=tok)
    assert r.rc == 18, r.err               # curl: transfer closed with outstanding data
    assert len(c("/dids/cta/many_files/dids", token=tok).lines()) == 300   # count=1 consumed
    lake41.set_fault("hang_ds", "hang")
    t0 = time.time()
    r = c("/dids/cta/hang_ds/dids", token=tok, timeout=2)
    assert r.rc == 28 and time.time() - t0 < 5
    assert c("/ping").status == 200        # other requests still served
    lake41.set_fault("big_ds", "oversized", size=3_000_000)
    r = c("/dids/cta/big_ds/dids", token=tok)
    assert r.status == 200 and len(r.body) >= 3_000_000
    lake41.set_fault("err_ds", "status500")
    r = c("/dids/cta/err_ds/dids", token=tok)
    assert r.status == 500 and "exceptionclass" not in r.headers
    lake41.clear_faults()
    assert c("/dids/cta/err_ds/dids", token=tok).status == 200
    counts = lake41.catalogue_counts()
    assert counts["by_route"]["GET /dids/{scope}/{name}/dids"] >= 6
    assert counts["by_path"]["GET /dids/cta/many_files/dids"] == 2


def test_token_expiry_and_long_messages(lake41):
    c = Curl(lake41)
    lake41.admin("POST", "config", {"token_lifetime": 1})
    try:
        tok = login(c)
        assert c("/dids/user.alice/", token=tok).status == 200
        time.sleep(1.2)
        r = c("/dids/user.alice/", token=tok)
        assert (r.status, r.headers["exceptionclass"]) == (401, "CannotAuthenticate")
    finally:
        lake41.admin("POST", "config", {"token_lifetime": 3600})
    tok = login(c)
    lake41.admin("POST", "expire_tokens")
    assert c("/dids/user.alice/", token=tok).status == 401
    tok = login(c)
    r = c("/dids/user.alice/" + "x" * 200, token=tok)
    hdr = r.headers["exceptionmessage"]
    assert r.status == 404 and len(hdr) == 128 and hdr.endswith("...")
    assert len(r.json()["ExceptionMessage"]) > 200      # the body keeps the full text


def test_attach_at_runtime(lake41):
    c = Curl(lake41)
    tok = login(c)
    assert c("/dids/user.alice/empty_ds/dids", token=tok).body == b""
    lake41.attach("user.alice", "empty_ds", [("user.alice", "one.bin")])
    assert [x["name"] for x in c("/dids/user.alice/empty_ds/dids", token=tok).lines()] == ["one.bin"]
    lake41.detach("user.alice", "empty_ds", [("user.alice", "one.bin")])


def test_restart_rse_same_port_and_cleanup(tmp_path):
    with Lake(str(tmp_path), profile="test", flavour="41", cache_dir=CACHE) as lk:
        c = Curl(lk)
        url = lk.pfn("user.alice", "one.bin", RSE_NGINX)
        assert c(url).status == 200
        before = lk.storage_requests(RSE_NGINX, path_contains="one.bin")
        lk.kill_rse(RSE_NGINX)
        assert c(url, timeout=3).rc == 7       # connection refused
        lk.start_rse(RSE_NGINX)
        assert c(url).status == 200
        assert lk.storage_requests(RSE_NGINX, path_contains="one.bin") == before + 1
        lk.stop_rse(RSE_XRD)
        lk.start_rse(RSE_XRD)
        assert c(lk.pfn("user.alice", "one.bin", RSE_XRD)).status == 200
        lk.stop_catalogue()
        assert c("/ping", timeout=3).rc == 7
        lk.start_catalogue()
        assert c("/ping").status == 200
        pids = [p.pid for p in lk.procs.values()]
        cfg = lk.write_rucio_cfg(str(tmp_path / "rucio.cfg"), extra_opt="x")
        text = open(cfg).read()
        assert "[client]" in text and "ca_cert = " + lk.ca_cert in text and "extra_opt = x" in text
    assert pids and not any(lakemod._pid_alive(p) for p in pids)


def test_cli_detached(tmp_path):
    wd = str(tmp_path)
    env = dict(os.environ, RUCIOFS_LAKE_CACHE=CACHE)
    lakepy = os.path.join(HERE, "lake.py")
    r = subprocess.run([sys.executable, lakepy, "start", "--workdir", wd, "--profile", "test"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        entries = json.load(open(os.path.join(wd, "pids")))
        assert len(entries) == 3 and all(lakemod._pid_alive(e["pid"]) for e in entries)
        envtext = open(os.path.join(wd, "lake.env")).read()
        assert "RUCIO_HOST=" in envtext and "CA_CERT=" in envtext
        st = subprocess.run([sys.executable, lakepy, "status", "--workdir", wd], capture_output=True, text=True)
        assert st.returncode == 0 and st.stdout.count("running") == 3
    finally:
        subprocess.run([sys.executable, lakepy, "stop", "--workdir", wd], capture_output=True, timeout=60)
    assert not any(lakemod._pid_alive(e["pid"]) for e in entries)


def test_emulator_sigterm_is_prompt(lake41, tmp_path):
    """A hanging request must not delay the emulator's shutdown."""
    pf = tmp_path / "port"
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "rucio_emulator.py"), "--lake", lake41.lake_json,
                          "--port", "0", "--port-file", str(pf)], stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if pf.exists():
                break
            time.sleep(0.02)
        port = int(pf.read_text())
        subprocess.run(["curl", "-s", "-X", "POST", "-d", '{"match": "h", "mode": "hang"}',
                        "http://127.0.0.1:%d/_admin/fault" % port], check=True, capture_output=True)
        hanger = subprocess.Popen(["curl", "-s", "http://127.0.0.1:%d/dids/h/x/dids" % port],
                                  stdout=subprocess.DEVNULL)
        time.sleep(0.3)
        t0 = time.time()
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=5)
        assert time.time() - t0 < 1.5
        hanger.wait(timeout=5)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


# --------------------------------------------------------------------------
# the slow catalogue (Lake.slow_catalogue)
# --------------------------------------------------------------------------
def _parallel_pings(lake, n, path="/ping"):
    barrier = threading.Barrier(n)
    out = []

    def one():
        c = lake._conn(lake.ports["rucio"], timeout=30)
        barrier.wait()
        t0 = time.time()
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        out.append((r.status, time.time() - t0))
        c.close()

    threads = [threading.Thread(target=one) for _ in range(n)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return time.time() - t0, out


def test_slow_catalogue_is_concurrent(lake41):
    lake41.slow_catalogue(1.0, match="^/ping$")
    try:
        took, out = _parallel_pings(lake41, 20)
        assert len(out) == 20 and all(st == 200 and t >= 1.0 for st, t in out)
        assert took < 3.0, took          # one delay, not twenty
        assert lake41.admin("GET", "slow") == {"seconds": 1.0, "match": "^/ping$"}
        t0 = time.time()
        lake41.userpass_token()           # other paths are not slowed
        assert time.time() - t0 < 0.9
    finally:
        lake41.slow_catalogue(0)
    t0 = time.time()
    _parallel_pings(lake41, 2)
    assert time.time() - t0 < 0.9
    # the per-path delay fault is concurrent too
    lake41.set_fault("^/ping$", "delay", seconds=1.0, count=25)
    try:
        took, out = _parallel_pings(lake41, 25)
        assert len(out) == 25 and all(st == 200 and t >= 1.0 for st, t in out) and took < 3.0, took
    finally:
        lake41.clear_faults()


# --------------------------------------------------------------------------
# faultstore.py (Lake.start_faultstore)
# --------------------------------------------------------------------------
MIB = ("user.alice", "mib.bin")           # 1 MiB of seeded random bytes


@pytest.fixture(scope="module")
def flake(tmp_path_factory):
    """A lake of its own with a TLS faultstore: these tests add RSEs and
    replicas and change priorities, which the other tests must not see."""
    wd = tmp_path_factory.mktemp("flake")
    with Lake(str(wd), profile="test", flavour="41", cache_dir=CACHE) as lk:
        lk.store = lk.start_faultstore()
        lk.add_replica(*MIB, lk.store.rse)
        yield lk


@pytest.fixture
def fs(flake):
    flake.store.clear_faults()
    flake.store.reset()
    yield flake.store
    flake.store.clear_faults()


def data_of(lake, did):
    with open(lake.files[did]["local_path"], "rb") as f:
        return f.read()


def wire_path(store, did, rse=None):
    return store.url(*did, rse=rse).split(":%d" % store.port, 1)[1]


def get(store, path, headers=None, method="GET", conn=None):
    c = conn or store.conn()
    c.request(method, path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    if conn is None:
        c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, body


def raw(store, path, headers=(), read_timeout=5.0):
    """One request on a raw (TLS) socket; reads the head and then the body
    until EOF or `read_timeout` of silence: (head text, body, got_eof)."""
    s = socket.create_connection(("127.0.0.1", store.port), timeout=read_timeout)
    if store.tls:
        s = store.lake._ssl_context().wrap_socket(s, server_hostname="127.0.0.1")
    req = "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s\r\n" % (path, store.port,
                                                              "".join(h + "\r\n" for h in headers))
    s.sendall(req.encode())
    buf, eof = b"", False
    try:
        while True:
            d = s.recv(65536)
            if not d:
                eof = True
                break
            buf += d
    except (socket.timeout, TimeoutError):
        pass
    except (ssl.SSLError, ConnectionResetError):
        eof = True
    finally:
        s.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    return head.decode("latin-1"), body, eof


def wait_done(store, path_part, n=1, timeout=5.0):
    """Poll until n requests on path_part have finished (handler thread done)."""
    deadline = time.time() + timeout
    while True:
        done = [r for r in store.requests(path_part) if r["ms"] is not None]
        if len(done) >= n:
            return done
        assert time.time() < deadline, store.requests(path_part)
        time.sleep(0.05)


def test_faultstore_serves_like_webdav(flake, fs):
    data = data_of(flake, MIB)
    path = wire_path(fs, MIB)
    c = fs.conn()
    st, h, body = get(fs, path, conn=c)
    assert (st, body, h["content-length"], h["accept-ranges"]) == (200, data, str(len(data)), "bytes")
    st, h, body = get(fs, path, {"Range": "bytes=100-199"}, conn=c)    # same connection: keep-alive
    assert (st, h["content-range"], h["content-length"], body) == (206, "bytes 100-199/%d" % len(data), "100",
                                                                    data[100:200])
    st, h, body = get(fs, path, {"Range": "bytes=%d-" % (len(data) - 5)}, conn=c)
    assert (st, body) == (206, data[-5:])
    st, h, body = get(fs, path, {"Range": "bytes=-7"}, conn=c)
    assert (st, h["content-range"], body) == (206, "bytes %d-%d/%d" % (len(data) - 7, len(data) - 1, len(data)),
                                              data[-7:])
    st, h, body = get(fs, path, {"Range": "bytes=%d-%d" % (len(data) - 2, len(data) + 50)}, conn=c)
    assert (st, body) == (206, data[-2:])
    st, h, _ = get(fs, path, {"Range": "bytes=%d-%d" % (len(data), len(data) + 9)}, conn=c)
    assert (st, h["content-range"]) == (416, "bytes */%d" % len(data))
    st, h, body = get(fs, path, method="HEAD", conn=c)
    assert (st, h["content-length"], body) == (200, str(len(data)), b"")
    c.close()
    assert get(fs, path.replace("mib.bin", "nope.bin"))[0] == 404
    assert get(fs, path, method="PUT")[0] == 405
    # any prefix; names percent-encoded on the wire (space, '/', non-ASCII)
    for did in [("lsst", "run1/raw/evt 001.dat"), ("lsst", "Ωmega data.fits")]:
        p = "/any/other/prefix/" + urllib.parse.quote(lakemod.lakegen.lfn2path(*did), safe="/")
        st, _, body = get(fs, p)
        assert (st, body) == (200, data_of(flake, did))
    # the request log, oldest first
    log = fs.requests()
    assert [r["status"] for r in log[:3]] == [200, 206, 206]
    assert log[1]["range"] == "bytes=100-199" and log[1]["bytes_sent"] == 100
    assert log[-1]["path"] == "/any/other/prefix/" + lakemod.lakegen.lfn2path("lsst", "Ωmega data.fits")


def test_faultstore_auth_is_recorded_as_bool_only(flake, fs):
    path = wire_path(fs, MIB)
    get(fs, path, {"Authorization": "Bearer sEcReT-tOkEn", "Range": "bytes=0-0"})
    get(fs, path, {"Range": "bytes=0-0"})
    log = fs.requests("mib.bin")
    assert [r["auth"] for r in log] == [True, False]
    assert log[0]["host"] == "127.0.0.1:%d" % fs.port
    assert "sEcReT" not in json.dumps(log)
    assert "sEcReT" not in open(os.path.join(fs.workdir, "requests.log")).read()


def test_faultstore_wrongbytes(flake, fs):
    data = data_of(flake, MIB)
    path = wire_path(fs, MIB)
    fs.set_fault("mib\\.bin$", "wrongbytes", at=1000, len=3)
    st, h, body = get(fs, path, {"Range": "bytes=990-1009"})
    assert (st, h["content-length"], len(body)) == (206, "20", 20)
    want = bytearray(data[990:1010])
    for i in (10, 11, 12):
        want[i] ^= 0x5A
    assert body == bytes(want) and body != data[990:1010]
    assert get(fs, path, {"Range": "bytes=0-99"})[2] == data[:100]   # range misses the bad bytes
    st, _, body = get(fs, path)
    assert st == 200 and len(body) == len(data) and body[1000:1003] != data[1000:1003]
    assert body[:1000] == data[:1000] and body[1003:] == data[1003:]


def test_faultstore_adler_keep(flake, fs):
    e = flake.files[MIB]
    data = data_of(flake, MIB)
    path = wire_path(fs, MIB)
    fs.set_fault("mib\\.bin$", "adler_keep", at=5000)
    st, _, body = get(fs, path)
    assert st == 200 and len(body) == len(data)
    assert "%08x" % zlib.adler32(body) == e["adler32"] == "%08x" % zlib.adler32(data)
    assert hashlib.md5(body).hexdigest() != e["md5"]
    diff = [i for i in range(len(data)) if body[i] != data[i]]
    at = fs.requests("mib.bin")[-1]["fault_at"]
    assert len(diff) == 4 and diff == list(range(at, at + 4)) and 5000 <= at
    assert [body[i] - data[i] for i in diff] in ([1, -1, -1, 1], [-1, 1, 1, -1])
    # only inside the answered range
    st, _, part = get(fs, path, {"Range": "bytes=%d-%d" % (at + 2, at + 9)})
    assert part[:2] != data[at + 2:at + 4] and part[2:] == data[at + 4:at + 10]


def test_faultstore_adler_patch_never_wraps(tmp_path):
    f = tmp_path / "b"
    cases = {b"\xff\x00\x00\xff": (0, [-1, 1, 1, -1]), b"\x00\xff\xff\x00": (0, [1, -1, -1, 1]),
             b"\xff\x10\x10\x00\x20\x20\x20\x20": (1, [-1, 1, 1, -1])}
    for content, (off, delta) in cases.items():
        f.write_bytes(content)
        at, patch = faultstore.adler_patch(str(f), 0, len(content))
        assert at == off and [patch[at + k] - content[at + k] for k in range(4)] == delta
        new = bytearray(content)
        for o, v in patch.items():
            new[o] = v
        assert zlib.adler32(bytes(new)) == zlib.adler32(content) and bytes(new) != content
    f.write_bytes(b"\x00" * 100000)
    assert faultstore.adler_patch(str(f), 0, 100000) == (None, None)    # all zero: no such change


def test_faultstore_trickle(flake, fs):
    data = data_of(flake, MIB)
    fs.set_fault("mib\\.bin$", "trickle", rate=4000)
    t0 = time.time()
    st, _, body = get(fs, wire_path(fs, MIB), {"Range": "bytes=0-5999"})
    took = time.time() - t0
    assert (st, body) == (206, data[:6000])
    assert 1.2 < took < 4, took          # 6000 bytes at 4000 B/s


def test_faultstore_stall_ends_with_the_client(flake, fs):
    data = data_of(flake, MIB)
    fs.set_fault("mib\\.bin$", "stall", after=100)
    head, body, eof = raw(fs, wire_path(fs, MIB), ["Range: bytes=0-9999"], read_timeout=1.0)
    assert head.startswith("HTTP/1.1 206") and "Content-Length: 10000" in head
    assert body == data[:100] and not eof
    # raw() closed the socket: the handler must notice and finish
    r = wait_done(fs, "mib.bin", timeout=3)[0]
    assert (r["status"], r["bytes_sent"], r["fault"]) == (206, 100, "stall")


def test_faultstore_short_and_long(flake, fs):
    data = data_of(flake, MIB)
    fs.set_fault("mib\\.bin$", "short", missing=10, count=1)
    head, body, eof = raw(fs, wire_path(fs, MIB), ["Range: bytes=0-999"])
    assert "Content-Length: 1000" in head and body == data[:990] and eof
    fs.set_fault("mib\\.bin$", "long", extra=5, count=1)
    head, body, eof = raw(fs, wire_path(fs, MIB), ["Range: bytes=0-999"])
    assert "Content-Length: 1000" in head and body[:1000] == data[:1000] and len(body) == 1005 and eof
    with pytest.raises(http.client.IncompleteRead):
        fs.set_fault("mib\\.bin$", "short", missing=1, count=1)
        get(fs, wire_path(fs, MIB), {"Range": "bytes=0-99"})
    assert fs.faults() == []             # every count used up


def test_faultstore_bad_range(flake, fs):
    data = data_of(flake, MIB)
    n = len(data)
    fs.set_fault("mib\\.bin$", "bad_range")
    st, h, body = get(fs, wire_path(fs, MIB), {"Range": "bytes=10-19"})
    assert (st, h["content-range"], body) == (206, "bytes 11-20/%d" % n, data[11:21])
    st, h, body = get(fs, wire_path(fs, MIB), {"Range": "bytes=%d-%d" % (n - 10, n - 1)})
    assert (st, h["content-range"]) == (206, "bytes %d-%d/%d" % (n - 11, n - 2, n))
    st, h, body = get(fs, wire_path(fs, MIB))
    assert (st, h["content-range"], len(body)) == (206, "bytes 0-%d/%d" % (n - 2, n), n - 1)


def test_faultstore_status_redirect_drop_delay(flake, fs):
    path = wire_path(fs, MIB)
    fs.set_fault("mib\\.bin$", "status", status=503, count=2)
    assert [get(fs, path)[0] for _ in range(3)] == [503, 503, 200]
    fs.set_fault("mib\\.bin$", "redirect", location="https://127.0.0.1:%d/moved{path}?{query}" % fs.port, count=1)
    st, h, _ = get(fs, path + "?a=1&b=2")
    assert (st, h["location"]) == (302, "https://127.0.0.1:%d/moved%s?a=1&b=2" % (fs.port, path))
    fs.set_fault("mib\\.bin$", "redirect", location="/x{path}", status=307, count=1)
    st, h, _ = get(fs, path)
    assert (st, h["location"]) == (307, "/x" + path)
    fs.set_fault("mib\\.bin$", "drop", count=1)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, ssl.SSLError)):
        get(fs, path)
    assert fs.requests("mib.bin")[-1]["status"] == 0
    fs.set_fault("mib\\.bin$", "delay", seconds=1.0, count=1)
    t0 = time.time()
    st, _, body = get(fs, path, {"Range": "bytes=0-9"})
    assert st == 206 and 1.0 <= time.time() - t0 < 3
    # a client that leaves during a delay frees its thread at once
    fs.reset()
    fs.set_fault("mib\\.bin$", "delay", seconds=600, count=1)
    raw(fs, path, read_timeout=0.5)
    assert wait_done(fs, "mib.bin", timeout=3)[0]["status"] == 0


def test_faultstore_stops_promptly_and_restarts(flake, fs):
    fs.set_fault("mib\\.bin$", "stall", after=0)
    s = socket.create_connection(("127.0.0.1", fs.port))
    s = flake._ssl_context().wrap_socket(s, server_hostname="127.0.0.1")
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % wire_path(fs, MIB)).encode())
    deadline = time.time() + 5
    while not fs.requests("mib.bin"):
        assert time.time() < deadline
        time.sleep(0.05)
    pid = flake.procs[fs.key].pid
    t0 = time.time()
    fs.stop(grace=5)
    assert time.time() - t0 < 1.5 and not lakemod._pid_alive(pid)
    s.close()
    fs.start()                           # same port, fresh state
    assert fs.requests() == [] and fs.faults() == []
    assert get(fs, wire_path(fs, MIB), {"Range": "bytes=0-0"})[0] == 206


def replicas(lake, did, **params):
    tok = lake.userpass_token()
    body = dict({"dids": [{"scope": did[0], "name": did[1]}], "schemes": ["https", "http"]}, **params)
    st, _, payload = lake._request("POST", "/replicas/list", body, {"X-Rucio-Auth-Token": tok})
    assert st == 200, payload
    return [json.loads(x) for x in payload.decode().splitlines() if x]


def test_faultstore_rses_priorities_and_plain_http(flake, fs):
    did = ("user.alice", "mib_plus1.bin")
    flake.add_replica(*did, fs.rse)
    pfns = list(replicas(flake, did)[0]["pfns"])
    # NGINX_DISK https 1 ties FAULT_DISK 1: the PFN string decides; bump NGINX
    flake.set_rse_priority(RSE_NGINX, "https", 3)
    try:
        pfns = list(replicas(flake, did)[0]["pfns"])
        assert pfns[0] == fs.pfn(*did) and len(pfns) == 3
    finally:
        flake.set_rse_priority(RSE_NGINX, "https", 1)
    # another RSE on the same server: own prefix, own PFN, last by priority
    fs.add_rse("FAULT_LAST", "/last/rucio", priority=9)
    flake.add_replica(*did, "FAULT_LAST")
    pfns = list(replicas(flake, did)[0]["pfns"])
    assert pfns[-1] == fs.pfn(*did, rse="FAULT_LAST") == \
        "https://127.0.0.1:%d/last/rucio/%s" % (fs.port, lakemod.lakegen.lfn2path(*did))
    assert get(fs, wire_path(fs, did, "FAULT_LAST"))[2] == data_of(flake, did)
    # an RSE that speaks only http://
    plain = flake.start_faultstore("FAULT_HTTP", tls=False, priority=2)
    try:
        flake.add_replica(*did, "FAULT_HTTP")
        url = plain.pfn(*did)
        assert url.startswith("http://127.0.0.1:%d/rucio/" % plain.port)
        assert url in replicas(flake, did)[0]["pfns"]
        assert get(plain, wire_path(plain, did), {"Range": "bytes=1-3"})[2] == data_of(flake, did)[1:4]
    finally:
        plain.stop()
    assert not plain.alive()


def test_faultstore_many_replicas(flake, fs):
    did = ("user.alice", "mib_minus1.bin")
    t0 = time.time()
    names = flake.many_replicas(*did, 1000, store=fs)
    took = time.time() - t0
    assert len(names) == 1000 and took < 5, took
    rep = replicas(flake, did)[0]
    ours = [p for p in rep["pfns"] if ":%d/" % fs.port in p]
    assert len(ours) == 1000 and len(set(ours)) == 1000
    assert ours[0] == fs.pfn(*did, rse="FAULT_R0001") and ours[-1] == fs.pfn(*did, rse="FAULT_R1000")
    assert get(fs, wire_path(fs, did, "FAULT_R0777"), {"Range": "bytes=0-9"})[2] == data_of(flake, did)[:10]
    # a second file reuses the RSEs
    assert flake.many_replicas("user.alice", "mib.bin", 1000, store=fs) == names
    assert len([p for p in replicas(flake, MIB)[0]["pfns"] if ":%d/" % fs.port in p]) == 1001
