"""Self-test of the ruciofs test fixtures (emulator, storage servers, lake).

    /usr/bin/python3 -m pytest tests/servers -q

HTTP checks go through `curl --cacert` (as a C client would talk TLS), not
through Python's http stack. The generated data is cached in
$RUCIOFS_LAKE_CACHE (default /tmp/ruciofs-lake-cache-<uid>), so only the first
session pays the ~7 s generation.
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import lake as lakemod  # noqa: E402
from lake import Lake, RSE_NGINX, RSE_XRD  # noqa: E402

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
