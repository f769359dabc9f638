"""Talking to the catalogue: authentication, failures, limits."""
import errno
import os
import re
import subprocess
import time

import pytest

from conftest import RUCIOFS, catalogue_requests
from rucio_client import Client, manifest_files, find_path


def run_ruciofs(lake, tmp_path, *opts, cfg_kw=None, env=None, timeout=30):
    cfg = tmp_path / "rucio.cfg"
    lake.write_rucio_cfg(str(cfg), **(cfg_kw or {}))
    mp = tmp_path / "mp"
    mp.mkdir(exist_ok=True)
    args = [RUCIOFS, "-o", "rucio_config=" + str(cfg),
            "-o", "cache_dir=" + str(tmp_path / "cache")]
    for o in opts:
        args += ["-o", o]
    args.append(str(mp))
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(args, capture_output=True, text=True,
                          timeout=timeout, env=e), mp


def test_help_and_version():
    r = subprocess.run([RUCIOFS, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "rucio_host" in r.stdout
    r = subprocess.run([RUCIOFS, "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("ruciofs ")
    assert "libcurl/" in r.stdout  # from the transports, through the core


@pytest.mark.parametrize("case", ["no-host", "bad-option", "wrong-password",
                                  "catalogue-down", "bad-auth-type"])
def test_startup_errors_reach_the_terminal(lake41, tmp_path, case):
    opts, kw = [], {}
    if case == "no-host":
        opts = ["rucio_host="]
    elif case == "bad-option":
        opts = ["dir_ttl=soon"]
    elif case == "wrong-password":
        kw = {"password": "not-the-password"}
    elif case == "catalogue-down":
        opts = ["rucio_host=https://127.0.0.1:9", "auth_host=https://127.0.0.1:9"]
    else:
        kw = {"auth_type": "x509"}
    t = time.time()
    r, mp = run_ruciofs(lake41, tmp_path, *opts, cfg_kw=kw)
    assert r.returncode != 0
    assert r.stderr.startswith("ruciofs: "), r.stderr
    assert time.time() - t < 15
    assert not os.path.ismount(str(mp))
    assert "not-the-password" not in r.stderr + r.stdout


def test_unreachable_network_is_named(lake41, tmp_path):
    # in a network namespace of its own, loopback down, the catalogue's
    # network is unreachable: said so, not "connection refused"
    cfg = tmp_path / "rucio.cfg"
    lake41.write_rucio_cfg(str(cfg))
    mp = tmp_path / "mp"
    mp.mkdir()
    r = subprocess.run(["unshare", "-n", RUCIOFS, "-o",
                        "rucio_config=" + str(cfg), "-o",
                        "cache_dir=" + str(tmp_path / "cache"), str(mp)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "network unreachable" in r.stderr, r.stderr
    assert not os.path.ismount(str(mp))


def test_daemon_mode_and_clean_unmount(lake41, tmp_path):
    r, mp = run_ruciofs(lake41, tmp_path)
    assert r.returncode == 0, r.stderr
    try:
        assert os.path.ismount(str(mp))
        assert os.listdir(str(mp))
        pids = subprocess.run(["pgrep", "-f", "ruciofs .*%s$" % mp],
                              capture_output=True, text=True).stdout.split()
        assert len(pids) == 1
    finally:
        subprocess.run(["fusermount3", "-u", str(mp)], check=True)
    for _ in range(100):
        if subprocess.run(["pgrep", "-f", "ruciofs .*%s$" % mp],
                          capture_output=True).returncode != 0:
            break
        time.sleep(0.1)
    else:
        pytest.fail("ruciofs still running after fusermount3 -u")


def test_catalogue_down_is_a_prompt_error(lake41, mount_factory):
    m = mount_factory(lake41, "connect_timeout=2", "io_timeout=3",
                      "offline_retry=1")
    scope = sorted(os.listdir(m.dir))[0]
    lake41.stop_catalogue()
    try:
        t = time.time()
        # a name never looked up before must fail, quickly
        others = [s for s in os.listdir(m.dir) if s != scope]
        with pytest.raises(OSError) as e:
            os.listdir(m.path(others[0]))
        assert e.value.errno == errno.EIO
        assert time.time() - t < 10
        assert m.alive()
    finally:
        lake41.start_catalogue()
    # and when it is back, it is used again without a remount, once the
    # offline window (offline_retry) has passed
    time.sleep(1.2)
    assert os.listdir(m.path(others[0])) is not None


def fault_dataset(lake):
    """A collection the tests break on purpose, and a file elsewhere."""
    files = manifest_files(lake)
    f = max(files, key=lambda f: len(f["siblings"]))
    d = os.path.dirname(f["paths"][0])
    other = [g for g in files if os.path.dirname(g["paths"][0]) != d
             and g["size"] < 1 << 20][0]
    return f, d, other


@pytest.mark.parametrize("mode", ["malformed", "oversized", "truncated",
                                  "status500", "hang"])
def test_broken_catalogue_answers_give_eio(lake41, mount_factory, mode):
    m = mount_factory(lake41, "connect_timeout=2", "io_timeout=3",
                      "max_answer=4M")
    f, d, other = fault_dataset(lake41)
    did = os.getxattr(m.path(d), "user.rucio.did").decode()
    scope, name = did.split(":", 1)
    lake41.set_fault("/dids/%s/%s/dids" % (scope, name), mode,
                     size=8 << 20)
    try:
        before = m.logtext().count("\n")
        t = time.time()
        with pytest.raises(OSError) as e:
            os.listdir(m.path(d))
        assert e.value.errno == errno.EIO
        assert time.time() - t < 15
        new = m.logtext().splitlines()[before:]
        errs = [l for l in new if "error" in l]
        assert 1 <= len(errs) <= 2, new
        # the mount still serves everything else
        with open(find_path(m, other), "rb") as fh:
            assert len(fh.read()) == other["size"]
        assert m.alive()
    finally:
        lake41.clear_faults()


def userpass_logins(lake):
    return catalogue_requests(lake, "/auth/userpass")


def test_userpass_token_renewed(lake41, mount_factory):
    m = mount_factory(lake41)
    logins0 = userpass_logins(lake41)
    os.listdir(m.dir)
    # force expiry on the server: the emulator's tokens can be revoked
    lake41.admin("POST", "expire_tokens")
    for s in os.listdir(m.dir):
        os.listdir(m.path(s))
    logins1 = userpass_logins(lake41)
    assert logins1 > logins0


def after(lines, i, what):
    """The index of the first line past @i that holds @what."""
    for j in range(i + 1, len(lines)):
        if what in lines[j]:
            return j
    raise AssertionError("no %r after line %d:\n%s" %
                         (what, i, "\n".join(lines[i + 1:])[-3000:]))


def test_401_and_login_in_the_debug_log(lake41, mount_factory):
    m = mount_factory(lake41, args=("-d",))
    scopes = os.listdir(m.dir)
    lines = m.logtext().splitlines()
    first = after(lines, -1, "logged in as 'alice'")
    lake41.admin("POST", "expire_tokens")
    for s in scopes:  # not listed yet: each asks the catalogue
        os.listdir(m.path(s))
    lines = m.logtext().splitlines()
    i = after(lines, first, "HTTP 401")
    assert "logging in again" in lines[i], lines[i]
    j = after(lines, i, "logged in as 'alice'")
    assert "renewal in" in lines[j]
    text = "\n".join(lines)
    # the emulator's tokens are ACCOUNT-IDENTITY-APPID-HEX
    assert not re.search(r"alice-\S*[0-9a-f]{32}", text)
    assert "alice-secret" not in text


def test_401_and_new_bearer_token_in_the_debug_log(lake41, mount_factory,
                                                   tmp_path):
    tok = tmp_path / "token"
    old = lake41.issuer.mint("alice", lifetime=3600)
    tok.write_text(old + "\n")
    os.chmod(tok, 0o600)
    m = mount_factory(lake41, "token_file=" + str(tok), args=("-d",),
                      cfg_kw={"auth_type": "oidc"})
    scopes = os.listdir(m.dir)
    new = lake41.issuer.mint("alice", lifetime=3600)
    tok.write_text(new + "\n")
    lake41.admin("POST", "expire_tokens")
    for s in scopes:
        os.listdir(m.path(s))
    lines = m.logtext().splitlines()
    i = after(lines, -1, "HTTP 401")
    assert "looking for a new bearer token" in lines[i], lines[i]
    j = after(lines, i, "bearer token from " + str(tok))
    assert "HTTP 200" in lines[after(lines, j, "catalogue: GET")]
    text = "\n".join(lines)
    for t in (old, new):
        assert t not in text and t.split(".")[2] not in text


def test_oidc_token_file_reread(lake41, mount_factory, tmp_path):
    tok = tmp_path / "token"
    tok.write_text(lake41.issuer.mint("alice", lifetime=3600) + "\n")
    os.chmod(tok, 0o600)
    m = mount_factory(lake41, "token_file=" + str(tok),
                      cfg_kw={"auth_type": "oidc"})
    scopes = os.listdir(m.dir)
    assert scopes
    # a revoked/expired token is replaced in the file: ruciofs follows it
    tok.write_text(lake41.issuer.mint("alice", lifetime=3600) + "\n")
    lake41.admin("POST", "expire_tokens")
    for s in scopes:
        os.listdir(m.path(s))
    f = [f for f in manifest_files(lake41) if 0 < f["size"] < 1 << 20][0]
    with open(find_path(m, f), "rb") as fh:
        assert len(fh.read()) == f["size"]


def test_bearer_token_discovery(lake41, mount_factory, tmp_path):
    token = lake41.issuer.mint("alice", lifetime=3600)
    m = mount_factory(lake41, cfg_kw={"auth_type": "oidc"},
                      env={"BEARER_TOKEN": token})
    assert os.listdir(m.dir)


def test_secrets_never_logged(lake41, mount_factory, tmp_path):
    token = lake41.issuer.mint("alice", lifetime=3600)
    tok = tmp_path / "tk"
    tok.write_text(token)
    os.chmod(tok, 0o600)
    m1 = mount_factory(lake41)
    m2 = mount_factory(lake41, "token_file=" + str(tok),
                       cfg_kw={"auth_type": "oidc"})
    for m in (m1, m2):
        for s in os.listdir(m.dir):
            os.listdir(m.path(s))
    text = m1.logtext() + m2.logtext()
    assert "alice-secret" not in text
    assert token not in text
    assert token.split(".")[2] not in text
    r = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True)
    assert "alice-secret" not in r.stdout


def test_listing_ttl(lake41, mount_factory):
    m = mount_factory(lake41, "dir_ttl=1")
    f, d, other = fault_dataset(lake41)
    did = os.getxattr(m.path(d), "user.rucio.did").decode()
    scope, name = did.split(":", 1)
    before = set(os.listdir(m.path(d)))
    assert other["name"] not in before
    lake41.attach(scope, name, [(other["scope"], other["name"])])
    time.sleep(1.5)
    after = set(os.listdir(m.path(d)))
    assert after - before == {other["paths"][0].rsplit("/", 1)[1]}


def test_password_not_in_proc_cmdline(lake41, mount_factory):
    # every spelling the option parser takes for a password; the last
    # one (the right password) wins, the others must be masked as well
    decoys = ["q1\\,w2\\,e3",            # escaped commas
              "r4\\\\\\,t5",              # escaped backslash, comma
              "y6\\"]                     # trailing backslash
    m = mount_factory(lake41, "password=" + decoys[0],
                      "username=alice,password=%s,account=alice" % decoys[1],
                      "pass\\word=u7i8",    # an escape inside the key
                      cfg_kw={"password": None},
                      args=["-oaccount=alice,password=" + decoys[2],
                            "-opassword=alice-secret"])
    assert os.listdir(m.dir)
    with open("/proc/%d/cmdline" % m.proc.pid, "rb") as f:
        cmdline = f.read()
    for secret in (b"alice-secret", b"w2", b"e3", b"r4", b"t5", b"y6",
                   b"u7i8"):
        assert secret not in cmdline, cmdline
    assert cmdline.count(b"password=x") == 4, cmdline


def test_token_file_inside_the_mount_is_refused(lake41, tmp_path):
    mp = tmp_path / "mp"
    mp.mkdir()
    tok = mp / "bt"
    tok.write_text(lake41.issuer.mint("alice") + "\n")
    os.chmod(tok, 0o600)
    t = time.time()
    r, _ = run_ruciofs(lake41, tmp_path, "token_file=" + str(tok),
                       cfg_kw={"auth_type": "oidc"})
    assert r.returncode != 0
    assert "inside the mount" in r.stderr
    assert time.time() - t < 10


def test_parallel_accesses_share_one_timeout(lake41, mount_factory):
    import threading
    m = mount_factory(lake41, "connect_timeout=2", "io_timeout=2")
    f, d, other = fault_dataset(lake41)
    did = os.getxattr(m.path(d), "user.rucio.did").decode()
    scope, name = did.split(":", 1)
    fid = lake41.set_fault("/dids/%s/%s/dids" % (scope, name), "hang")
    took, errs = [], []
    go = threading.Barrier(5)

    def one():
        go.wait()
        t = time.time()
        try:
            os.listdir(m.path(d))
            errs.append(None)
        except OSError as e:
            errs.append(e.errno)
        took.append(time.time() - t)

    try:
        ts = [threading.Thread(target=one) for _ in range(5)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        hits = [x["hits"] for x in lake41.admin("GET", "faults")
                if x["id"] == fid]
    finally:
        lake41.clear_faults()
    # one fetch reached the hanging catalogue, and its timeout (about
    # io_timeout) was every access's answer: EIO, not a listing
    assert hits == [1], hits
    assert errs == [errno.EIO] * 5, errs
    assert max(took) < 6, took
