#!/usr/bin/env python3
"""ruciofs benchmarks: one command, one markdown table, every row measured
in this run next to its baseline. Talks only to servers it starts on
127.0.0.1. Usage: bench/run.sh [--quick]"""
import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "tests", "servers"))
import lake as lakemod  # noqa: E402

BUILD = os.environ.get("top_builddir") or os.path.join(TOP, "build")
RUCIOFS = os.path.join(BUILD, "ruciofs")


def drop_caches():
    subprocess.run(["sync"])
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def seq_read(path, bs=1 << 20):
    """Seconds to read @path whole, and its size."""
    t = time.perf_counter()
    n = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(bs)
            if not b:
                break
            n += len(b)
    return time.perf_counter() - t, n


def rand_reads(path, size, count, bs, seed=7):
    """Latencies (s) of @count random preads of @bs bytes."""
    rnd = random.Random(seed)
    lat = []
    fd = os.open(path, os.O_RDONLY)
    try:
        for _ in range(count):
            off = rnd.randrange(0, max(1, size - bs)) // 4096 * 4096
            t = time.perf_counter()
            os.pread(fd, bs, off)
            lat.append(time.perf_counter() - t)
    finally:
        os.close(fd)
    return lat


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))]


class Mount:
    def __init__(self, lake, workdir, *opts):
        self.dir = tempfile.mkdtemp(prefix="mnt-", dir=workdir)
        cfg = os.path.join(workdir, "rucio.cfg")
        lake.write_rucio_cfg(cfg)
        args = [RUCIOFS, "-f", "-o", "rucio_config=" + cfg]
        for o in opts:
            args += ["-o", o]
        self.proc = subprocess.Popen(args + [self.dir],
                                     stderr=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.ismount(self.dir):
                return
            time.sleep(0.05)
        raise SystemExit("mount failed")

    def close(self):
        subprocess.run(["fusermount3", "-u", self.dir])
        self.proc.wait(timeout=30)
        os.rmdir(self.dir)


def mounted_path(m, f):
    for root, dirs, files in os.walk(m.dir):
        if f["name"] in files:
            return os.path.join(root, f["name"])
    raise SystemExit("file not found in the mount")


def median_of(runs, fn):
    return statistics.median(fn() for _ in range(runs))


def warm_cache_rows(lk, work, f, runs, nrand, bs_opt="1M"):
    """Warm reads from the block cache after a remount, page cache dropped,
    next to the same reads of the local file."""
    cache = os.path.join(work, "cache-" + bs_opt)
    m = Mount(lk, work, "cache_dir=" + cache, "block_size=" + bs_opt)
    seq_read(mounted_path(m, f))  # fill the cache from the network
    m.close()
    rows = []

    def warm_seq():
        mm = Mount(lk, work, "cache_dir=" + cache, "block_size=" + bs_opt)
        drop_caches()
        t, n = seq_read(mounted_path(mm, f))
        mm.close()
        return n / t / 1e6

    def local_seq():
        drop_caches()
        t, n = seq_read(f["local_path"])
        return n / t / 1e6

    ws = median_of(runs, warm_seq)
    ls = median_of(runs, local_seq)
    rows.append(("warm sequential, cache after remount (bs %s)" % bs_opt,
                 "%.0f MB/s" % ws, "local file, page cache dropped",
                 "%.0f MB/s" % ls, ws / ls))
    for rb in (4096, 65536):
        mm = Mount(lk, work, "cache_dir=" + cache, "block_size=" + bs_opt)
        p = mounted_path(mm, f)
        drop_caches()
        lat = rand_reads(p, f["size"], nrand, rb)
        mm.close()
        drop_caches()
        ref = rand_reads(f["local_path"], f["size"], nrand, rb)
        rows.append(("warm random %d KiB p50 / p99 (bs %s)" % (rb // 1024,
                                                               bs_opt),
                     "%.0f / %.0f us" % (pct(lat, .5) * 1e6,
                                         pct(lat, .99) * 1e6),
                     "local file", "%.0f / %.0f us" % (pct(ref, .5) * 1e6,
                                                       pct(ref, .99) * 1e6),
                     pct(ref, .5) / pct(lat, .5)))
        rows.append(("warm random %d KiB reads/s (bs %s)" % (rb // 1024,
                                                            bs_opt),
                     "%.0f" % (len(lat) / sum(lat)), "local file",
                     "%.0f" % (len(ref) / sum(ref)),
                     sum(ref) / sum(lat)))
    return rows


def cold_row(lk, work, f, runs):
    def cold():
        cache = tempfile.mkdtemp(prefix="cold-", dir=work)
        m = Mount(lk, work, "cache_dir=" + cache)
        drop_caches()
        t, n = seq_read(mounted_path(m, f))
        m.close()
        subprocess.run(["rm", "-rf", cache])
        return n / t / 1e6

    def curl():
        drop_caches()
        url = lk.pfn(f["scope"], f["name"])
        t = time.perf_counter()
        subprocess.run(["curl", "-s", "--cacert", lk.ca_cert, "-o",
                        "/dev/null", url], check=True)
        return f["size"] / (time.perf_counter() - t) / 1e6

    c = median_of(runs, cold)
    b = median_of(runs, curl)
    return ("cold sequential over HTTPS (info; issue 4 improves it)",
            "%.0f MB/s" % c, "single-stream curl", "%.0f MB/s" % b, c / b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workdir", default="/var/tmp/ruciofs-bench")
    a = ap.parse_args()
    runs, nrand = (3, 300) if a.quick else (5, 2000)
    os.makedirs(a.workdir, exist_ok=True)
    lk = lakemod.Lake(os.path.join(a.workdir, "lake"), profile="demo")
    lk.start()
    try:
        f = max((x for x in lk.manifest if x["size"] < 1 << 30
                 and "NGINX_DISK" in x.get("rses", [])),
                key=lambda x: x["size"])
        rows = [cold_row(lk, a.workdir, f, runs)]
        for bs in ("256K", "1M", "4M"):
            rows += warm_cache_rows(lk, a.workdir, f, runs, nrand, bs)
    finally:
        lk.stop()
    print("\nruciofs benchmark: %s (%d MB), medians of %d runs, %s\n" %
          (f["name"], f["size"] // 10**6, runs,
           time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    print("| measurement | ruciofs | baseline | baseline value | ratio |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| %s | %s | %s | %s | %.2f |" % r)


if __name__ == "__main__":
    main()
