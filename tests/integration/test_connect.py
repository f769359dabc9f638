"""Where the daemon connects and what it asks the catalogue for: every
scheme it can read, Rucio's PFN fragments, and (see test_redirects.py)
which hosts it may reach and which of them see the bearer token.

Every server here listens on 127.0.0.1 (nginx's plain-http listener of the
lake, or small servers started by the test)."""
import hashlib
import json
import os

import pytest

from rucio_client import replicated, find_path


def sha256_of(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def ensure_rse(lake, name, protocols, attributes=None):
    """Registers an RSE once per lake (the emulator refuses a second)."""
    try:
        lake.add_rse(name, protocols, attributes)
    except RuntimeError as e:
        if "409" not in str(e):
            raise


def pick_file(lake, index=0, low=100 << 10, high=4 << 20):
    files = sorted((f for f in replicated(lake) if low < f["size"] < high),
                   key=lambda f: (f["scope"], f["name"]))
    return files[index]


def nginx_entries(lake, port, pfn_path):
    """nginx's access-log entries of @pfn_path on listener @port."""
    out = []
    with open(os.path.join(lake.workdir, "nginx", "access.log")) as fh:
        for line in fh:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("port") == port and pfn_path in (e.get("uri") or ""):
                out.append(e)
    return out


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
    ensure_rse(lake, rse, [{"scheme": "http", "hostname": "127.0.0.1",
                            "port": port, "prefix": "/rucio"}])
    f = pick_file(lake, 0)
    lake.add_replica(f["scope"], f["name"], rse)
    try:
        m = oidc_mount(lake, mount_factory, tmp_path, "rse_expression=" + rse)
        assert sha256_of(find_path(m, f)) == f["sha256"], m.logtext()
        got = nginx_entries(lake, port, f["pfn_path"])
        assert got and all(e["status"] == 206 for e in got), got
        # the mount holds a JWT; plain http never carries it ...
        assert not [e for e in got if e["authorization"]], got
        # ... while https to the replica's own host does
        g = pick_file(lake, 1)
        m2 = oidc_mount(lake, mount_factory, tmp_path / "b",
                        "rse_expression=NGINX_DISK")
        assert sha256_of(find_path(m2, g)) == g["sha256"]
        got = nginx_entries(lake, lake.ports["nginx"], g["pfn_path"])
        assert got and all(e["authorization"] == "Bearer" for e in got), got
    finally:
        lake.remove_replica(f["scope"], f["name"], rse)


def test_simulate_multirange_fragment_is_cut(lake41, mount_factory):
    """Rucio appends "&#multirange=false&nconnections=N" to the PFNs of an
    RSE with simulate_multirange: the fragment is for the client, and
    sent encoded it names a file that does not exist."""
    rse = "MULTIRANGE_DISK"
    port = lake41.ports["nginx"]
    ensure_rse(lake41, rse, [{"scheme": "https", "hostname": "127.0.0.1",
                              "port": port, "prefix": "/rucio"}],
               {"simulate_multirange": 2})
    f = pick_file(lake41, 2)
    lake41.add_replica(f["scope"], f["name"], rse)
    try:
        m = mount_factory(lake41, "rse_expression=" + rse)
        assert sha256_of(find_path(m, f)) == f["sha256"], m.logtext()
        pfns = os.getxattr(find_path(m, f), "user.rucio.replicas").decode()
        assert pfns.endswith(f["pfn_path"]) and "multirange" not in pfns
        got = nginx_entries(lake41, port, f["pfn_path"])
        assert got and all(e["status"] == 206 and
                           e["uri"].endswith(f["pfn_path"]) for e in got)
    finally:
        lake41.remove_replica(f["scope"], f["name"], rse)
