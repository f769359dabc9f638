"""Streaming from several replicas at once: a sequential read draws on
every good replica, weighted by speed, and drops one that streams under
min_rate (its range goes to the next replica)."""
import time

from conftest import nginx_bytes
from test_cache import sha256_of
from test_ctl import status
from delayproxy import DelayProxy
from rucio_client import find_path, replicated


def biggest_on_both(lake, hi=64 << 20):
    both = [f for f in replicated(lake)
            if set(f["rses"]) >= {"NGINX_DISK", "XRD_DISK"}
            and f["size"] <= hi]
    return max(both, key=lambda f: f["size"])


def test_a_stream_draws_on_every_replica(lake41, mount_factory):
    f = biggest_on_both(lake41)
    assert f["size"] >= 32 << 20
    m = mount_factory(lake41)
    p = find_path(m, f)
    before = nginx_bytes(lake41, f)
    assert sha256_of(p) == f["sha256"]
    eps = status(m)["endpoints"]
    from_nginx = nginx_bytes(lake41, f) - before
    # both RSEs served part of the file (XRD_DISK by its https and its
    # root:// door, each an endpoint), and between them all of it, once
    assert eps["NGINX_DISK"]["bytes"] == from_nginx
    assert 0 < from_nginx < f["size"]
    xrd = [k for k in eps if k.split()[0] == "XRD_DISK"]
    assert sum(eps[k]["bytes"] for k in xrd) > 0
    assert sum(e["bytes"] for e in eps.values()) == f["size"]
    assert not any(e["last_resort"] for e in eps.values())


def test_a_slow_replica_is_dropped(lake41, mount_factory):
    f = biggest_on_both(lake41)
    xrd = lake41.rse_protocols["XRD_DISK"]["https"]["port"]
    # XRD_DISK's HTTPS door behind a 2 Mbit/s link: 0.25 MB/s
    proxy = DelayProxy(xrd, 0, 2).start()
    lake41.admin("POST", "rse",
                 {"rse": "XRD_DISK", "ports": {"https": proxy.port}})
    try:
        # https only: XRD_DISK's root:// door is fast, and the replica
        # layer measures an RSE's doors together
        m = mount_factory(lake41, "min_rate=1M", "schemes=https")
        p = find_path(m, f)
        before = nginx_bytes(lake41, f)
        t = time.monotonic()
        assert sha256_of(p) == f["sha256"]
        took = time.monotonic() - t
        eps = status(m)["endpoints"]
    finally:
        lake41.admin("POST", "rse",
                     {"rse": "XRD_DISK", "ports": {"https": xrd}})
        proxy.stop()
    # all of it through the slow link would take minutes
    assert took < 30, took
    assert eps["XRD_DISK"]["slow"] >= 1
    assert eps["XRD_DISK"]["last_resort"]
    assert not eps["NGINX_DISK"]["last_resort"]
    # what it did deliver before being dropped is little
    assert eps["XRD_DISK"]["bytes"] < f["size"] // 4
    assert nginx_bytes(lake41, f) - before == \
        f["size"] - eps["XRD_DISK"]["bytes"]


def test_the_only_replica_is_never_dropped_for_slowness(lake41,
                                                        mount_factory):
    small = [f for f in replicated(lake41)
             if set(f["rses"]) >= {"NGINX_DISK", "XRD_DISK"}
             and (1 << 20) < f["size"] <= 3 << 20]
    f = small[0]
    xrd = lake41.rse_protocols["XRD_DISK"]["https"]["port"]
    proxy = DelayProxy(xrd, 0, 8).start()  # 1 MB/s
    lake41.admin("POST", "rse",
                 {"rse": "XRD_DISK", "ports": {"https": proxy.port}})
    try:
        # only XRD_DISK's https replica, slower than min_rate: still read
        m = mount_factory(lake41, "min_rate=100M",
                          "rse_expression=XRD_DISK", "schemes=https")
        assert sha256_of(find_path(m, f)) == f["sha256"]
        eps = status(m)["endpoints"]
    finally:
        lake41.admin("POST", "rse",
                     {"rse": "XRD_DISK", "ports": {"https": xrd}})
        proxy.stop()
    assert eps["XRD_DISK"]["bytes"] == f["size"]
    assert eps["XRD_DISK"]["errors"] == 0
