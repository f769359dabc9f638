"""ruciofs --check: the set-up probed step by step, one line per step,
through the code a mount runs, against the real lake: the catalogue's
/ping, a userpass login and whoami, one file's replicas, one byte from
each endpoint (nginx over https, xrootd over https or root://). Nothing
is mounted. Faults are made without disturbing the shared lake: a
catalogue "down" is a closed port, a dead RSE one registered on a port
nobody listens on, holding a replica of one file."""
import os
import re
import socket
import subprocess

import pytest

from conftest import RUCIOFS
from rucio_client import replicated

LINE = re.compile(r"^\[( ok |FAIL|skip)\] ([^:]+): (.*)$")


def closed_port():
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run_check(lake, tmp_path, *opts, cfg_kw=None, mountpoint=None):
    """(exit status, [(status, step, detail)], stdout, stderr)."""
    cfg = lake.write_rucio_cfg(str(tmp_path / "rucio.cfg"), **(cfg_kw or {}))
    argv = [RUCIOFS, "--check", "-o", "rucio_config=" + cfg,
            "-o", "cache_dir=" + str(tmp_path / "cache")]
    for o in opts:
        argv += ["-o", o]
    if mountpoint:
        argv.append(mountpoint)
    env = dict(os.environ)
    env.pop("BEARER_TOKEN", None)
    env.pop("BEARER_TOKEN_FILE", None)
    env["XDG_RUNTIME_DIR"] = str(tmp_path)
    p = subprocess.run(argv, capture_output=True, text=True, env=env,
                       timeout=120)
    steps = []
    for line in p.stdout.splitlines():
        m = LINE.match(line)
        assert m, "not a step line: %r\n%s" % (line, p.stdout)
        steps.append((m.group(1).strip(), m.group(2), m.group(3)))
    return p.returncode, steps, p.stdout, p.stderr


def step(steps, name):
    got = [s for s in steps if s[1] == name]
    assert len(got) == 1, (name, steps)
    return got[0]


def a_file(lake):
    return sorted((f for f in replicated(lake) if 0 < f["size"] < 4 << 20),
                  key=lambda f: (f["scope"], f["name"]))[0]


def test_check_all_ok(lake, tmp_path):
    mp = tmp_path / "mnt"
    mp.mkdir()
    rc, steps, out, err = run_check(lake, tmp_path, mountpoint=str(mp))
    assert rc == 0, out + err
    names = [s[1] for s in steps]
    for n in ("configuration", "fuse", "mountpoint", "cache", "catalogue",
              "authentication", "replicas"):
        assert n in names, out
    assert all(s[0] == "ok" for s in steps), out
    conf = step(steps, "configuration")[2]
    assert str(tmp_path / "rucio.cfg") in conf and "userpass" in conf
    assert "account alice" in conf, conf
    assert "Rucio " + {"41": "41.0.0", "1.31": "1.31.7"}[lake.flavour] in \
        step(steps, "catalogue")[2], out
    auth = step(steps, "authentication")[2]
    assert "account 'alice' (whoami)" in auth and "valid until" in auth
    # every endpoint among the file's replicas read one byte
    eps = [s for s in steps if s[1].startswith("endpoint ")]
    assert {s[1] for s in eps} >= {"endpoint NGINX_DISK",
                                    "endpoint XRD_DISK"}, out
    assert all("1 byte in" in s[2] for s in eps), out
    assert "alice-secret" not in out + err


def test_check_did_and_root(lake, tmp_path):
    """-o check_did names the file; root:// doors are endpoints of their
    own, read through the native client."""
    f = a_file(lake)
    rc, steps, out, err = run_check(
        lake, tmp_path, "check_did=%s:%s" % (f["scope"], f["name"]),
        "schemes=https:root")
    assert rc == 0, out + err
    assert step(steps, "replicas")[2].startswith(
        "%s:%s (%d bytes)" % (f["scope"], f["name"], f["size"])), out
    eps = {s[1] for s in steps if s[1].startswith("endpoint ")}
    assert "endpoint XRD_DISK root" in eps, out
    assert step(steps, "mountpoint")[0] == "skip"


def test_check_wrong_password(lake41, tmp_path):
    rc, steps, out, err = run_check(lake41, tmp_path,
                                    cfg_kw={"password": "not-her-pw-42"})
    assert rc == 1, out + err
    s = step(steps, "authentication")
    assert s[0] == "FAIL" and "userpass login as" in s[2], out
    assert step(steps, "catalogue")[0] == "ok"
    assert step(steps, "replicas")[0] == "skip"
    assert "not-her-pw-42" not in out + err


def test_check_catalogue_down(lake41, tmp_path):
    port = closed_port()
    url = "http://127.0.0.1:%d" % port
    rc, steps, out, err = run_check(lake41, tmp_path, cfg_kw={
        "rucio_host": url, "auth_host": url})
    assert rc == 1, out + err
    s = step(steps, "catalogue")
    assert s[0] == "FAIL" and "refused" in s[2], out
    assert step(steps, "authentication")[0] == "skip"
    assert step(steps, "configuration")[0] == "ok"


def test_check_one_rse_dead(lake41, tmp_path):
    port = closed_port()
    lake41.add_rse("DEAD_DISK", [{"scheme": "https",
                                  "hostname": "127.0.0.1", "port": port,
                                  "prefix": "/rucio"}], exist_ok=True)
    f = sorted(replicated(lake41), key=lambda f: (-f["size"], f["name"]))[1]
    lake41.add_replica(f["scope"], f["name"], "DEAD_DISK")
    try:
        rc, steps, out, err = run_check(
            lake41, tmp_path, "check_did=%s:%s" % (f["scope"], f["name"]))
    finally:
        lake41.remove_replica(f["scope"], f["name"], "DEAD_DISK")
    assert rc == 1, out + err
    dead = step(steps, "endpoint DEAD_DISK")
    assert dead[0] == "FAIL" and "refused" in dead[2], out
    assert step(steps, "endpoint NGINX_DISK")[0] == "ok", out
    assert step(steps, "replicas")[0] == "ok", out


def test_check_did_missing(lake41, tmp_path):
    rc, steps, out, err = run_check(lake41, tmp_path,
                                    "check_did=user.alice:no-such-file.x")
    assert rc == 1, out + err
    s = step(steps, "replicas")
    assert s[0] == "FAIL" and "no such DID" in s[2], out
    assert step(steps, "endpoints")[0] == "skip"


def test_check_bad_config(lake41, tmp_path):
    """An option error is the configuration step's FAIL, and the end."""
    rc, steps, out, err = run_check(lake41, tmp_path, "cache_size=12x")
    assert rc == 1, out + err
    assert steps == [("FAIL", "configuration",
                      "invalid value for option 'cache_size'")], out


def test_check_mountpoint_missing(lake41, tmp_path):
    rc, steps, out, err = run_check(lake41, tmp_path,
                                    mountpoint=str(tmp_path / "nowhere"))
    assert rc == 1, out + err
    assert step(steps, "mountpoint")[0] == "FAIL", out
    assert step(steps, "catalogue")[0] == "ok", out


def test_check_bearer_token(lake41, tmp_path):
    """auth_type oidc: the token file is named, its expiry told, the token
    never shown."""
    token = lake41.issuer.mint("alice", lifetime=1800)
    tok = tmp_path / "token"
    tok.write_text(token + "\n")
    os.chmod(tok, 0o600)
    rc, steps, out, err = run_check(
        lake41, tmp_path, "token_file=" + str(tok),
        cfg_kw={"auth_type": "oidc", "password": None})
    assert rc == 0, out + err
    auth = step(steps, "authentication")[2]
    assert auth.startswith("oidc: bearer token from ") and str(tok) in auth
    assert "account 'alice' (whoami)" in auth, auth
    assert re.search(r"valid until .* UTC \(in (29|30) min\)", auth), auth
    assert token not in out + err
    assert token.split(".")[2] not in out + err


def test_check_expired_token(lake41, tmp_path):
    tok = tmp_path / "token"
    tok.write_text(lake41.issuer.mint("alice", lifetime=-60) + "\n")
    os.chmod(tok, 0o600)
    rc, steps, out, err = run_check(
        lake41, tmp_path, "token_file=" + str(tok),
        cfg_kw={"auth_type": "oidc", "password": None})
    assert rc == 1, out + err
    assert step(steps, "authentication")[0] == "FAIL", out


def test_check_shared_mount_says_whose(lake41, tmp_path):
    """On a shared mount the check reads as the mount, and says so."""
    rc, steps, out, err = run_check(
        lake41, tmp_path, "allow_other",
        "token_issuer=" + lake41.issuer.issuer)
    assert rc == 0, out + err
    assert "this check reads as the mount's own identity" in \
        step(steps, "authentication")[2], out
