#!/usr/bin/env python3
"""ruciofs benchmarks: one command, one markdown table, every row measured
in this run next to its baseline, medians of several runs. Talks only to
servers it starts on 127.0.0.1. As root. Usage: bench/run.sh [--quick]
[--only SECTION,...] (sections: cold warm random list weak rss shared
xrootd sparse).

The lake is the "bench" profile (tests/servers/lakegen.py) over plain
HTTP: a 1 GiB file, datasets of 10,000 and 2,000 small files, a 10 GiB
sparse file. Peers (rclone, httpdirfs, davfs2; bench/peers.py) read the
same bytes from a second nginx of the same build and settings serving
the same tree as plain directories. Before every cold run the page cache
is dropped and the server's copy read back in, so "cold" means the
client's caches, not the server's disk. The "shared" section starts a
second lake of the same data over HTTPS with a token issuer: a shared
mount verifies tokens over HTTPS and never sends one over plain HTTP.
The "xrootd" section reads the same 1 GiB file over root:// from the
lake's xrootd (XRD_DISK), against xrdcp and xrootdfs on the same server
(bench/xrd.py); a tool that fails gives "n/a", not an abort."""
import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "servers"))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
sys.path.insert(0, HERE)
import lake as lakemod  # noqa: E402
import localusers  # noqa: E402
import peers  # noqa: E402
import xrd  # noqa: E402
from delayproxy import DelayProxy  # noqa: E402

BUILD = os.environ.get("top_builddir") or os.path.join(TOP, "build")
RUCIOFS = os.path.join(BUILD, "ruciofs")
RUCIOFS_CTL = os.path.join(BUILD, "ruciofs-ctl")
MiB = 1 << 20
WEAK_DELAY_MS = 25  # each way: 50 ms round trip
WEAK_MBIT = 100
ROWS = []


def row(section, what, tool, value, unit, base_name, base, higher_better,
        target=None):
    """One table row; the ratio is always "how much better than the
    baseline" (>1: ruciofs or the peer beats it)."""
    if value and base:
        ratio = value / base if higher_better else base / value
    else:
        ratio = None
    ROWS.append((section, what, tool, value, unit, base_name, base, ratio,
                 target))
    print("  %-44s %-10s %10s %-6s vs %-26s %10s  %s" % (
        what, tool, fmt(value), unit, base_name, fmt(base),
        "%.2f" % ratio if ratio else "-"), flush=True)


def fmt(v):
    if v is None:
        return "n/a"
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def drop_caches():
    subprocess.run(["sync"])
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


read_all = peers.timed_read


def rate(path):
    """MB/s of reading @path whole, caches as they are."""
    t, n = read_all(path)
    return n / t / 1e6


def warm_rate(path):
    """MB/s of reading @path whole with the page cache dropped first (the
    lookup is not timed)."""
    os.stat(path)
    drop_caches()
    return rate(path)


def cold_prepare(server_copy):
    """Client caches cold, server's copy in its page cache."""
    drop_caches()
    read_all(server_copy)


def median(runs, fn):
    """Median of @runs calls of @fn; one call only if it took over 30 s
    (httpdirfs's tar of 2,000 files takes minutes a run)."""
    t = time.monotonic()
    vals = [fn()]
    if time.monotonic() - t < 30:
        vals += [fn() for _ in range(runs - 1)]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def interleaved(runs, fns):
    """{name: median} of @runs rounds of every function in @fns. A round
    calls each once, in an order turned by one each round: on this VM the
    disk's speed moves with the host over seconds (1.5 to 3.4 GB/s for
    the same dd), so rows measured one after the other are not compared
    fairly."""
    names = list(fns)
    vals = {k: [] for k in names}
    for r in range(runs):
        for k in names[r % len(names):] + names[:r % len(names)]:
            v = fns[k]()
            if v is not None:
                vals[k].append(v)
    return {k: statistics.median(v) if v else None
            for k, v in vals.items()}


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))]


def rand_offsets(size, count, bs, seed):
    rnd = random.Random(seed)
    return [rnd.randrange(0, max(1, size - bs)) // 4096 * 4096
            for _ in range(count)]


def rand_reads(path, offsets, bs, opened=None):
    """Latencies (s) of preads of @bs at @offsets; the open's own is
    appended to the list @opened if given (davfs2 downloads the whole file
    there, which its reads' latencies do not show)."""
    lat = []
    t = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    if opened is not None:
        opened.append(time.perf_counter() - t)
    try:
        for off in offsets:
            t = time.perf_counter()
            os.pread(fd, bs, off)
            lat.append(time.perf_counter() - t)
    finally:
        os.close(fd)
    return lat


def range_gets(port, path, offsets, bs):
    """Latencies of keep-alive HTTP range GETs: one round trip each."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    lat = []
    try:
        for off in offsets:
            t = time.perf_counter()
            c.request("GET", path,
                      headers={"Range": "bytes=%d-%d" % (off, off + bs - 1)})
            r = c.getresponse()
            r.read()
            lat.append(time.perf_counter() - t)
    finally:
        c.close()
    return lat


class Ruciofs:
    """A ruciofs -f mount of the bench lake over plain HTTP."""

    def __init__(self, lake, work, *opts, schemes="http"):
        self.dir = tempfile.mkdtemp(prefix="mnt-", dir=work)
        os.chmod(self.dir, 0o755)  # the shared section's users reach it
        cfg = os.path.join(work, "rucio.cfg")
        lake.write_rucio_cfg(cfg)
        args = [RUCIOFS, "-f", "-o", "rucio_config=" + cfg]
        if schemes:
            args += ["-o", "schemes=" + schemes]
        for o in opts:  # "-s" as is, the rest as -o options
            args += [o] if o.startswith("-") else ["-o", o]
        self.proc = subprocess.Popen(args + [self.dir],
                                     stderr=subprocess.DEVNULL)
        for _ in range(400):
            if os.path.ismount(self.dir):
                return
            time.sleep(0.05)
        self.close()
        raise SystemExit("ruciofs did not mount")

    def path(self, scope, *rest):
        return os.path.join(self.dir, scope, *rest)

    def status(self):
        out = subprocess.run([RUCIOFS_CTL, "-m", self.dir, "status",
                              "--json"], capture_output=True, check=True)
        return json.loads(out.stdout)

    def close(self):
        subprocess.run(["fusermount3", "-u", self.dir],
                       stderr=subprocess.DEVNULL)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.rmdir(self.dir)


class Ceiling:
    """bench/ceiling.c: the same bytes from memory, through FUSE."""

    def __init__(self, work, src, single=False):
        exe = os.path.join(work, "ceiling")
        if not os.path.exists(exe):
            cflags = subprocess.run(["pkg-config", "--cflags", "--libs",
                                     "fuse3"], capture_output=True,
                                    text=True, check=True).stdout.split()
            subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror",
                            os.path.join(HERE, "ceiling.c"), "-o", exe]
                           + cflags, check=True)
        self.dir = tempfile.mkdtemp(prefix="ceil-", dir=work)
        self.proc = subprocess.Popen([exe] + (["-s"] if single else [])
                                     + ["--from", src, self.dir],
                                     stdout=subprocess.PIPE, text=True)
        if "ready" not in self.proc.stdout.readline():
            self.close()
            raise SystemExit("ceiling did not mount")
        self.path = os.path.join(self.dir, "data")

    def close(self):
        subprocess.run(["fusermount3", "-u", self.dir],
                       stderr=subprocess.DEVNULL)
        self.proc.wait(timeout=60)
        os.rmdir(self.dir)


class Bench:
    def __init__(self, a):
        self.a = a
        self.runs = a.runs
        self.work = a.workdir
        os.makedirs(self.work, exist_ok=True)
        self.lake = lakemod.Lake(os.path.join(self.work, "lake"),
                                 profile="bench", tls=False)
        self.ng = None
        self.kinds = [k for k in peers.KINDS if peers.available(k)]

    def file(self, scope, name):
        for f in self.lake.manifest:
            if f["scope"] == scope and f["name"] == name:
                return f
        raise SystemExit("%s:%s is not in the bench lake" % (scope, name))

    def start(self):
        self.lake.start()
        self.flat = os.path.join(self.lake.lake_dir, "rse", "NGINX_DISK",
                                 "rucio", "flat")
        self.ng = peers.PeerNginx(self.flat, workdir=self.work)
        self.ng.start()
        self.big = self.file("bench", "big_1G.bin")
        self.big_url = self.lake.pfn("bench", "big_1G.bin", "NGINX_DISK",
                                     "http")
        self.nginx_port = self.lake.rse_protocols["NGINX_DISK"]["http"][
            "port"]

    def stop(self):
        if self.ng:
            self.ng.stop()
        self.lake.stop()

    def peer(self, kind, url=None, cache_dir=None):
        m = peers.PeerMount(kind, url or self.ng.url,
                            os.path.join(self.work, "peers"),
                            cache_dir=cache_dir)
        m.mount()
        return m

    # ---- cold sequential ----
    def ruciofs_cold(self, *opts, f=None, where=("bench", "big_ds"),
                     disk=None, schemes="http", runs=None):
        """MB/s of a cold sequential read of @f (the 1 GiB file) at
        @where in a fresh mount with an empty cache. If @disk is a list,
        the cache writer's own rate in each run (MB/s of disk writes, from
        ruciofs-ctl status) is appended to it."""
        f = f or self.big

        def one():
            cache = tempfile.mkdtemp(prefix="cache-", dir=self.work)
            m = Ruciofs(self.lake, self.work, "cache_dir=" + cache, *opts,
                        schemes=schemes)
            try:
                p = m.path(*where, f["name"])
                os.stat(p)
                cold_prepare(f["local_path"])
                mbs = rate(p)
                if disk is not None:
                    st = m.status()
                    if st["write_us"]:
                        disk.append(st["written"] / st["write_us"])
            finally:
                m.close()
                subprocess.run(["rm", "-rf", cache])
            return mbs
        return median(runs or self.runs, one)

    def peer_cold(self, kind):
        def one():
            m = self.peer(kind)
            try:
                p = os.path.join(m.dir, "big", "big_1G.bin")
                os.stat(p)
                cold_prepare(self.big["local_path"])
                return rate(p)
            finally:
                m.umount()
                m.drop_cache()
        return median(self.runs, one)

    def curl(self, parallel=1):
        size = self.big["size"]

        def one():
            cold_prepare(self.big["local_path"])
            t = time.perf_counter()
            ps = []
            for i in range(parallel):
                a = size * i // parallel
                b = size * (i + 1) // parallel - 1
                ps.append(subprocess.Popen(
                    ["curl", "-s", "-o", "/dev/null", "-r", "%d-%d" % (a, b),
                     self.big_url]))
            for p in ps:
                if p.wait():
                    raise SystemExit("curl failed")
            return size / (time.perf_counter() - t) / 1e6
        return median(self.runs, one)

    def cold(self):
        print("cold sequential, 1 GiB over HTTP", flush=True)
        base = self.curl()
        sec = "cold sequential 1 GiB (MB/s)"
        row(sec, "curl, 4 parallel ranges", "curl", self.curl(4), "MB/s",
            "single-stream curl", base, True)
        disk = []
        ours = self.ruciofs_cold(disk=disk)
        row(sec, "ruciofs (multithreaded loop)", "ruciofs", ours, "MB/s",
            "single-stream curl", base, True, ">= 1.3")
        # a cold read stores every block: the stream cannot outrun the
        # cache's disk, whose rate under this load the writer measures
        if disk:
            row(sec, "ruciofs (multithreaded loop)", "ruciofs", ours,
                "MB/s", "its cache writer's disk rate, same reads",
                statistics.median(disk), True)
        row(sec, "ruciofs -s (single-threaded loop)", "ruciofs",
            self.ruciofs_cold("-s"), "MB/s", "single-stream curl",
            base, True)
        row(sec, "ruciofs, cache=no", "ruciofs",
            self.ruciofs_cold("cache=no"), "MB/s", "single-stream curl",
            base, True)
        for k in self.kinds:
            row(sec, "peer", k, self.peer_cold(k), "MB/s",
                "single-stream curl", base, True)

    # ---- warm and hot ----
    def warm(self):
        print("warm (cache after remount, page cache dropped) and hot",
              flush=True)
        sec = "warm and hot sequential 1 GiB (MB/s)"
        local = self.big["local_path"]
        cache = tempfile.mkdtemp(prefix="cache-warm-", dir=self.work)
        m = Ruciofs(self.lake, self.work, "cache_dir=" + cache)
        read_all(m.path("bench", "big_ds", "big_1G.bin"))
        m.close()
        firsts = {}
        for k in self.kinds:
            firsts[k] = self.peer(k)
            read_all(os.path.join(firsts[k].dir, "big", "big_1G.bin"))
            firsts[k].umount()

        def warm_ours(*opts):
            def one():
                mm = Ruciofs(self.lake, self.work, "cache_dir=" + cache,
                             *opts)
                try:
                    return warm_rate(mm.path("bench", "big_ds",
                                             "big_1G.bin"))
                finally:
                    mm.close()
            return one

        def warm_peer(k):
            def one():
                pm = self.peer(k, cache_dir=firsts[k].cache_dir)
                try:
                    return warm_rate(os.path.join(pm.dir, "big",
                                                  "big_1G.bin"))
                finally:
                    pm.umount()
            return one

        ceil = Ceiling(self.work, local)
        try:
            # passthrough=no: every page through the daemon, CRC-checked
            fns = {"ceiling": lambda: warm_rate(ceil.path),
                   "disk": lambda: warm_rate(local),
                   "ruciofs": warm_ours(),
                   "ruciofs passthrough=no": warm_ours("passthrough=no")}
            fns.update({k: warm_peer(k) for k in self.kinds})
            warm = interleaved(self.runs, fns)
            base = warm["ceiling"]
            read_all(ceil.path)
            ceil_hot = median(self.runs, lambda: rate(ceil.path))
        finally:
            ceil.close()
        row(sec, "warm: cache after remount", "ruciofs", warm["ruciofs"],
            "MB/s", "FUSE ceiling (from memory)", base, True, ">= 0.7")
        row(sec, "warm: cache after remount", "ruciofs passthrough=no",
            warm["ruciofs passthrough=no"], "MB/s",
            "FUSE ceiling (from memory)", base, True)
        for k in self.kinds:
            row(sec, "warm: cache after remount", k, warm[k], "MB/s",
                "FUSE ceiling (from memory)", base, True)
            firsts[k].drop_cache()
        row(sec, "warm: cache after remount", "ruciofs", warm["ruciofs"],
            "MB/s", "local file, page cache dropped (the disk)",
            warm["disk"], True)

        read_all(local)
        hot_base = median(self.runs, lambda: rate(local))
        for name, opts in (("ruciofs", ()),
                           ("ruciofs passthrough=no", ("passthrough=no",))):
            mm = Ruciofs(self.lake, self.work, "cache_dir=" + cache, *opts)
            try:
                p = mm.path("bench", "big_ds", "big_1G.bin")
                read_all(p)
                row(sec, "hot: re-read, page cache kept", name,
                    median(self.runs, lambda: rate(p)), "MB/s",
                    "local file, hot", hot_base, True,
                    None if opts else ">= 0.8")
            finally:
                mm.close()
        row(sec, "hot: re-read, page cache kept", "FUSE ceiling",
            ceil_hot, "MB/s", "local file, hot", hot_base, True)
        subprocess.run(["rm", "-rf", cache])

    # ---- random reads ----
    def random_rows(self):
        print("random reads", flush=True)
        n = 60 if self.a.quick else 300
        size = self.big["size"]
        path = self.big_url.split(str(self.nginx_port), 1)[1]
        for bs in (4096, 65536):
            sec = "random %d KiB reads, 1 GiB file" % (bs // 1024)
            offs = rand_offsets(size, n, bs, bs)
            drop_caches()
            read_all(self.big["local_path"])
            base = range_gets(self.nginx_port, path, offs, bs)
            fuse = self.ceiling_random(offs, bs)
            opened = {k: [] for k in ["ruciofs"] + self.kinds}
            ours = self.ruciofs_random(offs, bs, opened=opened["ruciofs"])
            self.lat_rows(sec, "cold", "ruciofs", ours, "HTTP range GET",
                          base)
            # one read missing everything costs a FUSE round trip and a
            # range GET: what is left over is the daemon's own
            row(sec, "cold: p50 latency", "ruciofs", pct(ours, .5) * 1e6,
                "us", "FUSE ceiling p50 + HTTP range GET p50",
                (pct(fuse, .5) + pct(base, .5)) * 1e6, False)
            for k in self.kinds:
                self.lat_rows(sec, "cold", k, self.peer_random(
                    k, offs, bs, opened=opened[k]), "HTTP range GET", base)
            for k, t in opened.items():
                if t:
                    row(sec, "cold: the open() before the reads", k,
                        t[0] * 1e6, "us", "HTTP range GET p50",
                        pct(base, .5) * 1e6, False)
            drop_caches()
            base = rand_reads(self.big["local_path"], offs, bs)
            self.lat_rows(sec, "warm, page cache dropped", "ruciofs",
                          self.ruciofs_random(offs, bs, warm=True),
                          "local file", base)

    def ceiling_random(self, offs, bs):
        """Latencies of the reads at @offs through the FUSE ceiling (from
        memory, its page cache dropped): FUSE's own share of a read."""
        ceil = Ceiling(self.work, self.big["local_path"])
        try:
            os.stat(ceil.path)
            drop_caches()
            return rand_reads(ceil.path, offs, bs)
        finally:
            ceil.close()

    def lat_rows(self, sec, what, tool, lat, base_name, base):
        row(sec, "%s: p50 latency" % what, tool, pct(lat, .5) * 1e6, "us",
            base_name, pct(base, .5) * 1e6, False)
        row(sec, "%s: p99 latency" % what, tool, pct(lat, .99) * 1e6, "us",
            base_name, pct(base, .99) * 1e6, False)
        row(sec, "%s: reads/s" % what, tool, len(lat) / sum(lat), "/s",
            base_name, len(base) / sum(base), True)

    def ruciofs_random(self, offs, bs, warm=False, opts=(), opened=None,
                       schemes="http"):
        cache = tempfile.mkdtemp(prefix="cache-rand-", dir=self.work)
        try:
            if warm:
                m = Ruciofs(self.lake, self.work, "cache_dir=" + cache)
                read_all(m.path("bench", "big_ds", "big_1G.bin"))
                m.close()
            m = Ruciofs(self.lake, self.work, "cache_dir=" + cache, *opts,
                        schemes=schemes)
            try:
                p = m.path("bench", "big_ds", "big_1G.bin")
                os.stat(p)
                drop_caches()
                read_all(self.big["local_path"])
                return rand_reads(p, offs, bs, opened)
            finally:
                m.close()
        finally:
            subprocess.run(["rm", "-rf", cache])

    def peer_random(self, kind, offs, bs, url=None, opened=None):
        m = self.peer(kind, url)
        try:
            p = os.path.join(m.dir, "big", "big_1G.bin")
            os.stat(p)
            return rand_reads(p, offs, bs, opened)
        finally:
            m.umount()
            m.drop_cache()

    # ---- sparse reads ----
    def sparse(self):
        """Small reads far apart in one open file, as a sparse reader
        (ROOT's TTreeCache, many threads of a job) makes them: by 32
        threads at once, which the daemon groups into multi-range GETs,
        against the same reads one by one (one thread), each on a fresh
        mount with an empty cache; and the 32 threads with grouping off,
        to tell grouping from concurrency. Over loopback, then over the
        weak link's 50 ms round trip (where a round trip, not the CPU, is
        what a read costs)."""
        print("sparse reads", flush=True)
        f = self.big
        n = 240 if self.a.quick else 480
        self.sparse_rows("sparse 4 KiB reads, 1 GiB file, loopback", f, n)
        self.sparse_rows("sparse 4 KiB reads, 1 GiB file, root:// "
                         "(xrootd 5.5.3), loopback", f, n, schemes="root",
                         opts=("rse_expression=XRD_DISK",))
        px = DelayProxy(self.nginx_port, WEAK_DELAY_MS, WEAK_MBIT).start()
        real = self.nginx_port
        self.lake.admin("POST", "rse", {"rse": "NGINX_DISK",
                                        "ports": {"http": px.port}})
        try:
            self.sparse_rows("sparse 4 KiB reads, 1 GiB file, weak link "
                             "(%d ms)" % (2 * WEAK_DELAY_MS), f, n // 4)
        finally:
            self.lake.admin("POST", "rse", {"rse": "NGINX_DISK",
                                            "ports": {"http": real}})
            px.stop()

    def sparse_rows(self, sec, f, n, schemes="http", opts=()):
        rnd = random.Random(18)
        # a block of its own each, none side by side, never block 0: a
        # miss of a few pages each, not a sequential reader's
        blocks = rnd.sample(range(1, f["size"] // MiB // 2), n)
        offs = [2 * b * MiB + rnd.randrange(0, MiB // 2, 4096)
                for b in blocks]
        with open(f["local_path"], "rb") as fh:
            want = {o: os.pread(fh.fileno(), 4096, o) for o in offs}
        read_all(f["local_path"])  # the server's copy in its page cache
        sec += ", %d reads far apart" % n

        gets = {}  # threads and options -> GETs per run

        def run(threads, *more):
            def one():
                cache = tempfile.mkdtemp(prefix="cache-sparse-",
                                         dir=self.work)
                m = Ruciofs(self.lake, self.work, "cache_dir=" + cache,
                            *(opts + more), schemes=schemes)
                try:
                    p = m.path("bench", "big_ds", f["name"])
                    os.stat(p)
                    since = os.path.getsize(nginx_log(self.lake))
                    secs, got = sparse_reads(p, offs, threads)
                    if got != want:
                        raise SystemExit("bench: sparse reads got wrong "
                                         "bytes")
                    gets.setdefault((threads,) + more, []).append(
                        nginx_gets(self.lake, f, since))
                    return len(offs) / secs
                finally:
                    m.close()
                    subprocess.run(["rm", "-rf", cache])
            return one
        r = interleaved(self.runs, {"grouped": run(32), "one": run(1),
                                    "ungrouped": run(32,
                                                     "vector_reads=no")})
        base = "the same reads one by one (1 thread)"
        row(sec, "cold: 32 threads, grouped (vector reads)", "ruciofs",
            r["grouped"], "/s", base, r["one"], True, ">= 3")
        row(sec, "cold: 32 threads, vector_reads=no", "ruciofs",
            r["ungrouped"], "/s", base, r["one"], True)
        row(sec, "cold: 32 threads, grouped", "ruciofs", r["grouped"], "/s",
            "32 threads, vector_reads=no", r["ungrouped"], True)
        if schemes != "http":
            return
        row(sec, "cold: reads per GET, 32 threads, grouped", "ruciofs",
            n / statistics.median(gets[(32,)]), "", "32 threads, "
            "vector_reads=no", n / statistics.median(
                gets[(32, "vector_reads=no")]), True)

    # ---- listings ----
    def listing(self):
        print("listings", flush=True)
        local = self.flat
        jobs = [
            ("ls -lR, 10,000 files (s)", "many_10k",
             lambda d: subprocess.run(["ls", "-lR", d],
                                      stdout=subprocess.DEVNULL, check=True)),
            ("find -type f, 10,000 files (s)", "many_10k",
             lambda d: subprocess.run(["find", d, "-type", "f"],
                                      stdout=subprocess.DEVNULL, check=True)),
            ("stat of each of 10,000 files (s)", "many_10k",
             lambda d: [os.stat(os.path.join(d, x)) for x in os.listdir(d)]),
            ("tar of 2,000 small files (s)", "small_2k",
             lambda d: subprocess.run("tar cf - -C '%s' . | wc -c" % d,
                                      shell=True, stdout=subprocess.DEVNULL,
                                      check=True)),
        ]
        for what, ds, fn in jobs:
            def local_one():
                drop_caches()
                t = time.perf_counter()
                fn(os.path.join(local, ds))
                return time.perf_counter() - t
            base = median(self.runs, local_one)
            ds_dir = {"many_10k": ("bench", "many_10k"),
                      "small_2k": ("bench", "small_2k")}[ds]

            def ours():
                cache = tempfile.mkdtemp(prefix="cache-ls-", dir=self.work)
                m = Ruciofs(self.lake, self.work, "cache_dir=" + cache)
                try:
                    self.lake.reset_counts()
                    t = time.perf_counter()
                    fn(m.path(*ds_dir))
                    took = time.perf_counter() - t
                    self.cat_requests = \
                        self.lake.catalogue_counts()["total"]
                finally:
                    m.close()
                    subprocess.run(["rm", "-rf", cache])
                return took
            row("listings, cold mount (s)", what, "ruciofs",
                median(self.runs, ours), "s", "local disk, caches dropped",
                base, False, "faster than peers")
            row("listings, cold mount (s)", what + ": catalogue requests",
                "ruciofs", self.cat_requests, "", "files", 10000
                if ds == "many_10k" else 2000, False)
            for k in self.kinds:
                def theirs():
                    m = self.peer(k)
                    try:
                        t = time.perf_counter()
                        fn(os.path.join(m.dir, ds))
                        return time.perf_counter() - t
                    finally:
                        m.umount()
                        m.drop_cache()
                row("listings, cold mount (s)", what, k,
                    median(self.runs, theirs), "s",
                    "local disk, caches dropped", base, False)

    # ---- weak link ----
    def weak(self):
        print("weak link: %d ms round trip, %d Mbit/s" % (
            2 * WEAK_DELAY_MS, WEAK_MBIT), flush=True)
        sec = "weak link (%d ms, %d Mbit/s)" % (2 * WEAK_DELAY_MS, WEAK_MBIT)
        f = self.file("user.alice", "random40M.bin")
        link = WEAK_MBIT * 1e6 / 8 / 1e6  # MB/s
        px = DelayProxy(self.nginx_port, WEAK_DELAY_MS, WEAK_MBIT).start()
        ppx = DelayProxy(self.ng.port, WEAK_DELAY_MS, WEAK_MBIT).start()
        real = self.nginx_port
        self.lake.admin("POST", "rse", {"rse": "NGINX_DISK",
                                        "ports": {"http": px.port}})
        try:
            self.weak_rows(sec, f, link, px, ppx)
        finally:
            self.lake.admin("POST", "rse", {"rse": "NGINX_DISK",
                                            "ports": {"http": real}})
            px.stop()
            ppx.stop()

    def weak_rows(self, sec, f, link, px, ppx):
        pfn = self.lake.pfn(f["scope"], f["name"], "NGINX_DISK", "http")
        path = pfn.split(str(self.nginx_port), 1)[1]
        opts = ("rse_expression=NGINX_DISK",)

        def ours_seq(*extra):
            return self.ruciofs_cold(*(opts + extra), f=f,
                                     where=("user.alice", "cont_top", "cont_mid1",
                                            "big_ds"))
        row(sec, "cold sequential 40 MiB", "ruciofs", ours_seq(), "MB/s",
            "link rate", link, True, ">= 0.9")
        row(sec, "cold sequential 40 MiB, block_size=64K", "ruciofs",
            ours_seq("block_size=64K"), "MB/s", "link rate", link, True)
        n = 20 if self.a.quick else 40
        offs = rand_offsets(f["size"], n, 4096, 3)
        rtt = range_gets(px.port, path, offs[:10], 1)
        base = pct(rtt, .5) * 1e6
        for extra in ((), ("block_size=64K",)):
            cache = tempfile.mkdtemp(prefix="cache-weakr-", dir=self.work)
            m = Ruciofs(self.lake, self.work, "cache_dir=" + cache,
                        *(opts + extra))
            try:
                p = m.path("user.alice", "cont_top", "cont_mid1", "big_ds",
                           f["name"])
                os.stat(p)
                lat = rand_reads(p, offs, 4096)
            finally:
                m.close()
                subprocess.run(["rm", "-rf", cache])
            row(sec, "cold random 4 KiB p50%s" % (
                ", " + extra[0] if extra else ""), "ruciofs",
                pct(lat, .5) * 1e6, "us", "one round trip", base, False,
                "<= 1.3 RTT" if not extra else None)
        for k in self.kinds:
            if k == "davfs2":
                continue  # fetches whole files on open: nothing random
            m = self.peer(k, url="http://127.0.0.1:%d/" % ppx.port)
            try:
                p = os.path.join(m.dir, "big", "big_1G.bin")
                os.stat(p)
                offs_big = rand_offsets(self.big["size"], n // 2, 4096, 5)
                lat = rand_reads(p, offs_big, 4096)
            finally:
                m.umount()
                m.drop_cache()
            row(sec, "cold random 4 KiB p50", k, pct(lat, .5) * 1e6, "us",
                "one round trip", base, False)

    # ---- shared mounts (per-caller identities) ----
    def shared(self):
        print("shared mount: each caller with their own token", flush=True)
        lk = lakemod.Lake(os.path.join(self.work, "lake-tls"),
                          profile="bench", tls=True,
                          cache_dir=os.path.dirname(self.lake.lake_dir))
        lk.start()
        users = localusers.LocalUsers(prefix="rfsb")
        cache = tempfile.mkdtemp(prefix="cache-shared-", dir=self.work)
        try:
            iss = lk.start_issuer()
            lk.admin("POST", "config", {"expected_audience": ANY_AUD})
            lk.trust_issuer(iss)
            lk.register_oidc_user("alice", iss)
            self.shared_rows(lk, iss, users, cache)
        finally:
            users.cleanup()
            lk.stop()
            subprocess.run(["rm", "-rf", cache])

    def shared_rows(self, lk, iss, users, cache):
        sec = "shared mount, per-caller identities"
        work = os.path.join(self.work, "shared")
        os.makedirs(work, exist_ok=True)
        localusers.make_traversable(work)
        big = ("bench", "big_ds", "big_1G.bin")
        small = [("bench", "small_2k", "s_%04d.dat" % i) for i in range(8)]

        def mount(shared, *extra):
            opts = ["cache_dir=" + cache] + list(extra)
            if shared:
                opts += ["allow_other", "token_issuer=" + iss.url]
            return Ruciofs(lk, work, *opts, schemes=None)

        def new_user():
            u = users.add()
            u.write_token(new_user_token(iss))
            return u

        m = mount(False)  # fill the cache, as the mount's identity
        try:
            for f in [big] + small:
                read_all(m.path(*f))
        finally:
            m.close()
        reader = new_user()

        def warm(shared, drop, *extra):
            def one():
                mm = mount(shared, *extra)
                try:
                    p = mm.path(*big)
                    os.stat(p)
                    if drop:
                        drop_caches()
                    else:  # the last round's drop may have taken some
                        for d, _, fs in os.walk(cache):
                            for f in fs:
                                f = os.path.join(d, f)
                                if os.path.isfile(f):
                                    read_all(f)
                    t, n = as_caller(reader if shared else None,
                                     "read", [p])
                    return n / t / 1e6
                finally:
                    mm.close()
            return one
        # A 5% target needs more than the usual 3 rounds on this VM. With
        # the page cache dropped the disk under the cache moves 0.5-7 GB/s
        # (the host caches it, warmed by whichever read came just before),
        # so each pair is interleaved on its own, an even number of rounds,
        # each side first as often. With the cache's files in memory what
        # is left is FUSE and the daemon.
        rounds = 2 if self.a.quick else 8
        for drop in (True, False):
            for pt in ((), ("passthrough=no",)):
                w = interleaved(max(self.runs, rounds),
                                {"single": warm(False, drop, *pt),
                                 "shared": warm(True, drop, *pt)})
                row(sec, "warm 1 GiB after remount, %s%s" % (
                    "page cache dropped" if drop else
                    "cache files in memory", ", " + pt[0] if pt else ""),
                    "ruciofs per caller", w["shared"], "MB/s",
                    "ruciofs one identity, same cache", w["single"], True,
                    ">= 0.95")

        # opens of cached files: open, 1-byte read, close
        m = mount(False)
        try:
            paths = [m.path(*f) for f in small]
            as_caller(None, "open", paths)  # the daemon's first open
            base = statistics.median(as_caller(None, "open",
                                               paths * 5))
        finally:
            m.close()
        m = mount(True)
        try:
            paths = [m.path(*f) for f in small]
            as_caller(new_user(), "open", paths[:1])  # keys fetched
            firsts, others, again = [], [], []
            for _ in range(3 if self.a.quick else 7):
                t = as_caller(new_user(), "open", paths + paths)
                firsts.append(t[0])
                others += t[1:len(paths)]
                again += t[len(paths):]
        finally:
            m.close()
        print("    first opens (ms): %s" % " ".join(
            "%.1f" % (x * 1e3) for x in firsts), flush=True)
        for what, v in (
                ("first open by a new identity", statistics.median(firsts)),
                ("first open of a file, known identity",
                 statistics.median(others)),
                ("later open, decision kept", statistics.median(again))):
            row(sec, "open + 1-byte read, cached file: " + what,
                "ruciofs per caller", v * 1e3, "ms",
                "ruciofs one identity, same open", base * 1e3, False)

    # ---- root:// ----
    def xrootd(self):
        print("root:// (the lake's xrootd 5.5.3, XRD_DISK)", flush=True)
        port = self.lake.ports["xrd_root"]
        rel = lakemod.lakegen.lfn2path("bench", "big_1G.bin")
        url = "root://127.0.0.1:%d//rucio/%s" % (port, rel)
        rdr = "root://127.0.0.1:%d//rucio/%s/" % (port, os.path.dirname(rel))
        size = self.big["size"]
        sec = "root:// cold sequential 1 GiB (MB/s)"

        def xrdcp_one():
            cold_prepare(self.big["local_path"])
            return size / xrd.xrdcp(url) / 1e6

        def xrootdfs_one():
            m = xrd.Xrootdfs(rdr, os.path.join(self.work, "xrootdfs"))
            m.mount()
            try:
                p = os.path.join(m.dir, "big_1G.bin")
                os.stat(p)
                cold_prepare(self.big["local_path"])
                return rate(p)
            finally:
                m.umount()
        root = ("rse_expression=XRD_DISK",)
        # interleaved: the host's speed drifts over a run (see interleaved)
        fns = {"xrdcp": xrdcp_one,
               "ruciofs": lambda: self.ruciofs_cold(*root, schemes="root",
                                                    runs=1),
               "http": lambda: self.ruciofs_cold(*root, schemes="http",
                                                 runs=1),
               # what the client gives without the cache's disk writes
               "nocache": lambda: self.ruciofs_cold(*root, "cache=no",
                                                    schemes="root", runs=1)}
        if xrd.available("xrootdfs"):
            fns["xrootdfs"] = xrootdfs_one
        got = interleaved(self.runs, {k: (lambda k=k, f=f: or_na(k, f))
                                      for k, f in fns.items()})
        base, ours, http = got["xrdcp"], got["ruciofs"], got["http"]
        xfs = got.get("xrootdfs")
        row(sec, "ruciofs over root://", "ruciofs", ours, "MB/s",
            "xrdcp to /dev/null", base, True, ">= 1.2")
        row(sec, "xrootdfs (xrootd-fuse)", "xrootdfs", xfs, "MB/s",
            "xrdcp to /dev/null", base, True)
        row(sec, "ruciofs over root://", "ruciofs", ours, "MB/s",
            "xrootdfs, same server", xfs, True, "> 1")
        row(sec, "ruciofs over http, same server (XrdHttp)", "ruciofs",
            http, "MB/s", "xrdcp to /dev/null", base, True)
        row(sec, "ruciofs over root://, cache=no", "ruciofs",
            got["nocache"], "MB/s", "xrdcp to /dev/null", base, True)

        n = 60 if self.a.quick else 300
        for bs in (4096, 65536):
            sec = "root:// random %d KiB reads, 1 GiB file" % (bs // 1024)
            offs = rand_offsets(size, n, bs, bs + 18)
            drop_caches()
            read_all(self.big["local_path"])
            base = or_na("kXR_read", lambda: xrd_reads(port, rel, offs, bs))
            ours = or_na("ruciofs over root://", lambda: self.ruciofs_random(
                offs, bs, opts=root, schemes="root"))
            self.lat_rows_na(sec, "cold", "ruciofs", ours,
                             "root:// kXR_read, one connection", base)
            # what is left after FUSE's and the server's share: the daemon's
            fuse = or_na("FUSE ceiling", lambda: self.ceiling_random(offs, bs))
            row(sec, "cold: p50 latency", "ruciofs",
                pct(ours, .5) * 1e6 if ours else None, "us",
                "FUSE ceiling p50 + kXR_read p50",
                (pct(fuse, .5) + pct(base, .5)) * 1e6 if fuse and base
                else None, False)
            if xrd.available("xrootdfs"):
                self.lat_rows_na(sec, "cold", "xrootdfs", or_na(
                    "xrootdfs", lambda: self.xrootdfs_random(rdr, offs, bs)),
                    "root:// kXR_read, one connection", base)

    def xrootdfs_random(self, rdr, offs, bs):
        m = xrd.Xrootdfs(rdr, os.path.join(self.work, "xrootdfs"))
        m.mount()
        try:
            p = os.path.join(m.dir, "big_1G.bin")
            os.stat(p)
            return rand_reads(p, offs, bs)
        finally:
            m.umount()

    def lat_rows_na(self, sec, what, tool, lat, base_name, base):
        """lat_rows, with n/a where either side failed."""
        def p(v, q):
            return pct(v, q) * 1e6 if v else None
        row(sec, "%s: p50 latency" % what, tool, p(lat, .5), "us",
            base_name, p(base, .5), False)
        row(sec, "%s: p99 latency" % what, tool, p(lat, .99), "us",
            base_name, p(base, .99), False)
        row(sec, "%s: reads/s" % what, tool,
            len(lat) / sum(lat) if lat else None, "/s", base_name,
            len(base) / sum(base) if base else None, True)

    # ---- memory ----
    def rss(self):
        print("daemon memory while streaming 10 GiB", flush=True)
        cache = tempfile.mkdtemp(prefix="cache-rss-", dir=self.work)
        m = Ruciofs(self.lake, self.work, "cache_dir=" + cache,
                    "cache_size=2G")
        peak = {"VmRSS": 0, "RssAnon": 0}
        done = threading.Event()

        def sample():
            while not done.is_set():
                try:
                    with open("/proc/%d/status" % m.proc.pid) as fh:
                        for line in fh:
                            k, _, v = line.partition(":")
                            if k in peak:
                                peak[k] = max(peak[k], int(v.split()[0]))
                except OSError:
                    pass
                time.sleep(0.1)
        th = threading.Thread(target=sample)
        th.start()
        try:
            t, n = read_all(m.path("bench", "huge10_ds", "sparse_10g.bin"))
        finally:
            done.set()
            th.join()
            m.close()
            subprocess.run(["rm", "-rf", cache])
        sec = "memory (MiB)"
        row(sec, "peak RSS streaming 10 GiB (%.0f MB/s)" % (n / t / 1e6),
            "ruciofs", peak["VmRSS"] / 1024, "MiB", "target", 150, False,
            "< 150 MiB")
        row(sec, "peak anonymous RSS streaming 10 GiB", "ruciofs",
            peak["RssAnon"] / 1024, "MiB", "target", 150, False)


def or_na(what, fn):
    """fn(), or None (printed as n/a) if it fails: a tool that cannot
    read (e.g. a transport not built yet) must not end the run."""
    try:
        return fn()
    except (Exception, SystemExit) as e:  # noqa: BLE001
        print("    %s: n/a (%s)" % (what, str(e).strip()[-200:] or
                                   type(e).__name__), flush=True)
        return None


def xrd_reads(port, rel, offs, bs):
    """Latencies of kXR_reads of @bs at @offs on one connection to the
    xrootd: one round trip each, the root:// range_gets."""
    r = xrd.XrdReader(port)
    lat = []
    try:
        r.open("/rucio/" + rel)
        for off in offs:
            t = time.perf_counter()
            r.read(off, bs)
            lat.append(time.perf_counter() - t)
    finally:
        r.close()
    return lat


AS_CALLER = r"""
import json, os, sys, time
def whole(p):
    mv = memoryview(bytearray(1 << 20))
    n, t = 0, time.perf_counter()
    with open(p, "rb", buffering=0) as f:
        k = f.readinto(mv)
        while k:
            n += k
            k = f.readinto(mv)
    return time.perf_counter() - t, n
def opens(ps):
    out = []
    for p in ps:
        t = time.perf_counter()
        fd = os.open(p, os.O_RDONLY)
        os.read(fd, 1)
        os.close(fd)
        out.append(time.perf_counter() - t)
    return out
print(json.dumps(whole(sys.argv[2]) if sys.argv[1] == "read"
                 else opens(sys.argv[2:])))
"""
ANY_AUD = "https://wlcg.cern.ch/jwt/v1/any"


def new_user_token(iss):
    return iss.mint("alice", scope="openid profile", groups=["/escape/cta"],
                    aud=ANY_AUD, lifetime=7200)


def as_caller(user, what, paths):
    """Run AS_CALLER ("read" a path whole: (seconds, bytes); "open" each
    path: seconds each) as @user (a LocalUser; None: root), timed inside
    the process so its start is not counted."""
    argv = [lakemod.PYTHON, "-c", AS_CALLER, what] + list(paths)
    r = user.run(argv, timeout=600) if user else subprocess.run(
        argv, capture_output=True, timeout=600)
    if r.returncode:
        raise SystemExit("bench: %s as %s failed: %s" % (
            what, user.name if user else "root", r.stderr[-500:]))
    return json.loads(r.stdout)


def nginx_log(lake):
    return os.path.join(lake.workdir, "nginx", "access.log")


def nginx_gets(lake, f, since):
    """GETs of @f's bytes in nginx's log after offset @since."""
    n = 0
    with open(nginx_log(lake)) as fh:
        fh.seek(since)
        for line in fh:
            n += f["pfn_path"] in line and '"method":"GET"' in line
    return n


def sparse_reads(path, offsets, threads):
    """Seconds for @threads threads sharing one fd (no kernel read-ahead)
    to pread 4 KiB at each of @offsets, and {offset: bytes}."""
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
    got = {}
    start = threading.Barrier(threads + 1)

    def work(mine):
        start.wait()
        for off in mine:
            got[off] = os.pread(fd, 4096, off)

    ts = [threading.Thread(target=work, args=(offsets[i::threads],))
          for i in range(threads)]
    try:
        for t in ts:
            t.start()
        start.wait()
        t0 = time.perf_counter()
        for t in ts:
            t.join()
        return time.perf_counter() - t0, got
    finally:
        os.close(fd)


def print_table(a):
    print("\nruciofs benchmark, %s, medians of %d runs; ratio > 1 means "
          "better than the baseline\n" % (
              time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), a.runs))
    print("| section | measurement | tool | value | baseline | baseline "
          "value | ratio | target |")
    print("|---|---|---|---|---|---|---|---|")
    for (sec, what, tool, v, unit, bname, b, ratio, target) in ROWS:
        print("| %s | %s | %s | %s %s | %s | %s | %s | %s |" % (
            sec, what, tool, fmt(v), unit, bname, fmt(b),
            "%.2f" % ratio if ratio else "-", target or ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--runs", type=int, default=0)
    ap.add_argument("--only",
                    default="cold,warm,random,list,weak,rss,shared,xrootd,"
                    "sparse")
    ap.add_argument("--workdir", default="/var/tmp/ruciofs-bench")
    a = ap.parse_args()
    a.runs = a.runs or (1 if a.quick else 3)
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root (mounts, drop_caches)")
    b = Bench(a)
    b.start()
    try:
        for s in a.only.split(","):
            {"cold": b.cold, "warm": b.warm, "random": b.random_rows,
             "list": b.listing, "weak": b.weak, "rss": b.rss,
             "shared": b.shared, "xrootd": b.xrootd,
             "sparse": b.sparse}[s]()
    finally:
        b.stop()
        leftover = peers.leftovers()
        if any(leftover):
            print("bench: left over: %r" % (leftover,), file=sys.stderr)
    print_table(a)


if __name__ == "__main__":
    main()
