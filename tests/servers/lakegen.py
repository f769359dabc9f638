#!/usr/bin/python3
"""Build a sample data lake on disk plus the lake JSON the Rucio emulator reads.

    python3 lakegen.py --out DIR --profile test|demo|bench
    from lakegen import make_lake; make_lake(out_dir, "test")

Output (all under DIR):
    lake.json       catalogue for rucio_emulator.py (schema documented at the
                    top of rucio_emulator.py); protocol ports are 0 here and are
                    filled in by lake.py when the storage servers are started
    manifest.json   list of files, one dict each: scope, name, size, sha256,
                    adler32, md5, local_path (absolute), datasets (direct
                    parents "scope:name"), rses, flavours, pfn_path
                    (+ markers for the sparse file)
    rse/NGINX_DISK/rucio/<hash path>   data tree served by nginx
    rse/XRD_DISK/rucio/<hash path>     the same files as hard links (costs no
                                       disk, keeps the sparse file sparse)
    norse/<hash path>                  content of the file registered without
                                       any replica (for checksum comparisons)
    issuer/key.pem                     RSA key of the test OIDC issuer
    flat.json                          (bench only) layout of the flat tree:
    rse/NGINX_DISK/rucio/flat/         (bench only) plain directories of hard
                                       links for peer filesystems that read
                                       HTTP directory listings (nginx
                                       autoindex): big/big_1G.bin,
                                       many_10k/m_NNNNN.dat, small_2k/s_NNNN.dat
    .complete                          stamp {"version", "profile"}; written last

The content is deterministic (seeded), so two generations of the same profile
produce identical bytes, checksums, GUIDs and dates.

Profile "test" is < 150 MB of real disk and takes a few seconds (most of it is
hashing the 5 GiB sparse file, which costs no disk); "demo" adds a 300 MiB
random file and 2000 small files instead of 300. "bench" is "demo" plus the
scope `bench` (see _add_bench): a 1 GiB random file, 10,000 + 2,000 small
files, a 10 GiB sparse file and the flat tree; about 1.6 GB of real disk and
~20-25 s on 2 cores (dominated by md5 over the 15 GiB of holes of the two sparse
files, which runs in background threads while the rest is written).
"""

import argparse
import datetime
import hashlib
import json
import os
import queue
import random
import shutil
import struct
import sys
import threading
import time
import uuid
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jwt_issuer import DEFAULT_ISSUER, JwtIssuer  # noqa: E402

# Bump when the generated content or layout changes: lake.py regenerates a
# cached lake whose stamp carries another version.
GEN_VERSION = 3

RSE_NGINX = "NGINX_DISK"
RSE_XRD = "XRD_DISK"
BOTH = (RSE_NGINX, RSE_XRD)
ALL_FLAVOURS = ["1.31", "41"]
ONLY_41 = ["41"]

GiB = 1 << 30
MiB = 1 << 20
SPARSE_SIZE = 5 * GiB + 7
# Markers of the sparse file: (offset, bytes). The middle one straddles the
# 4 GiB boundary on purpose (catches 32-bit offset truncation in a client).
SPARSE_MARKERS = [
    (0, b"RUCIOFS-SPARSE-BEGIN\n"),
    (4 * GiB - 8, b"<<4GiB-MARK>>\n"),
    (SPARSE_SIZE - 16, b"<<RUCIOFS-END>>\n"),
]

PROFILES = ("test", "demo", "bench")

# ---- profile "bench" (scope `bench`) -----------------------------------------
BENCH = "bench"
BENCH_BIG_SIZE = GiB
BENCH_MANY = 10000            # bench:m_%05d.dat, 1-4 KiB, dataset bench:many_10k
BENCH_SMALL = 2000            # bench:s_%04d.dat, 2-64 KiB, dataset bench:small_2k
BENCH_SPARSE_SIZE = 10 * GiB
BENCH_SPARSE_MARKERS = [
    (0, b"RUCIOFS-SPARSE10G-BEGIN\n"),
    (4 * GiB - 8, b"<<4GiB-MARK>>\n"),
    (7 * GiB + 12345, b"<<7GiB+12345-MARK>>\n"),
    (BENCH_SPARSE_SIZE - 16, b"<<RUCIOFS-END>>\n"),
]
FLAT_DIR = "flat"             # rse/NGINX_DISK/rucio/flat (URL /rucio/flat/)

BASE_TIME = datetime.datetime(2025, 3, 1, 8, 0, 0, tzinfo=datetime.timezone.utc)


def lfn2path(scope, name):
    """Rucio's deterministic `hash` lfn2pfn algorithm (rucio-rest.md section 4)."""
    h = hashlib.md5(("%s:%s" % (scope, name)).encode("utf-8")).hexdigest()
    if scope.startswith("user") or scope.startswith("group"):
        scope = scope.replace(".", "/")
    return "%s/%s/%s/%s" % (scope, h[0:2], h[2:4], name)


def adler32_hex(value):
    return "%08x" % (value & 0xFFFFFFFF)


def adler32_zero_run(adler, length):
    """adler32 state after `length` zero bytes, in O(1): A is unchanged and
    B grows by A per byte. Saves hashing GiBs of holes of the sparse file."""
    a = adler & 0xFFFF
    b = (adler >> 16) & 0xFFFF
    b = (b + a * (length % 65521)) % 65521
    return (b << 16) | a


def fits_bytes(width=64, height=32):
    """A valid single-HDU FITS file: 2880-byte header block of 80-char cards,
    then a BITPIX=16 big-endian image padded to a multiple of 2880 bytes."""
    cards = [
        ("SIMPLE", "T", "conforms to FITS standard"),
        ("BITPIX", "16", "16-bit signed integers"),
        ("NAXIS", "2", "2D image"),
        ("NAXIS1", str(width), "columns"),
        ("NAXIS2", str(height), "rows"),
        ("OBJECT", "'RUCIOFS TEST'", "synthetic gradient"),
        ("ORIGIN", "'ruciofs lakegen'", None),
    ]
    header = b""
    for key, value, comment in cards:
        text = "%-8s= %20s" % (key, value)
        if comment:
            text += " / " + comment
        header += text.ljust(80)[:80].encode("ascii")
    header += b"END".ljust(80)
    header = header.ljust(2880, b" ")
    pix = bytearray()
    for y in range(height):
        for x in range(width):
            pix += struct.pack(">h", (x * 37 + y * 101) % 30000 - 15000)
    data = bytes(pix)
    data += b"\x00" * (-len(data) % 2880)
    return header + data


SEED_STEP = 4 * MiB


def seeded_bytes(seed, size):
    """Deterministic pseudo-random content. randbytes() is limited to < 256 MiB
    per call (the bit count must fit a C int), so build big ones in pieces.
    randbytes(n) is getrandbits(8n) in little-endian order, which consumes
    whole 32-bit words, so pieces of any multiple of 4 bytes give the same
    stream; 4 MiB pieces are twice as fast as 64 MiB ones (no mmap/page-fault
    churn for the temporary big int) and produce the same bytes."""
    rng = random.Random(seed)
    step = SEED_STEP
    return b"".join(rng.randbytes(min(step, size - off)) for off in range(0, size, step)) if size else b""


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Builder:
    """Accumulates DIDs, writes files, and emits lake.json + manifest.json."""

    def __init__(self, out_dir):
        self.out = os.path.abspath(out_dir)
        self.dids = {}        # (scope, name) -> did dict (lake.json form)
        self.order = []       # insertion order, only to keep created_at stable
        self.files = {}       # (scope, name) -> manifest entry
        self.clock = 0
        self._dirs = set()    # directories known to exist (saves mkdir calls)
        self.pending = []     # (scope, name, writer) whose md5/sha256 come later

    def makedirs(self, d):
        if d not in self._dirs:
            os.makedirs(d, exist_ok=True)
            self._dirs.add(d)

    def _times(self):
        self.clock += 1
        created = BASE_TIME + datetime.timedelta(minutes=7 * self.clock)
        return iso(created), iso(created + datetime.timedelta(seconds=30))

    def _account(self, scope):
        if scope.startswith("user."):
            return scope.split(".", 1)[1]
        return "root"

    def collection(self, scope, name, did_type, children=(), is_open=False, flavours=None):
        created, updated = self._times()
        d = {"scope": scope, "name": name, "type": did_type, "account": self._account(scope),
             "is_open": bool(is_open), "created_at": created, "updated_at": updated,
             "children": [list(c) for c in children]}
        if flavours:
            d["flavours"] = list(flavours)
        self.dids[(scope, name)] = d
        self.order.append((scope, name))
        return (scope, name)

    def file(self, scope, name, data=None, rses=BOTH, flavours=None, writer=None):
        """Register a file DID. `data` is the content (bytes); `writer` instead
        is a callable(path) -> (size, adler32, md5, sha256, extra_manifest)
        for content that must not be held in memory (the sparse file).
        A writer may return md5 = sha256 = None if it has a method hashes()
        -> (md5, sha256) that finish_manifest() calls (hashing still running in the
        background: the build goes on meanwhile)."""
        path = lfn2path(scope, name)
        if rses:
            first = os.path.join(self.out, "rse", rses[0], "rucio", path)
        else:
            first = os.path.join(self.out, "norse", path)
        self.makedirs(os.path.dirname(first))
        extra = {}
        if writer is not None:
            size, adler, md5, sha = writer(first)[:4]
            extra = writer.manifest_extra if hasattr(writer, "manifest_extra") else {}
            if md5 is None:
                self.pending.append((scope, name, writer))
        else:
            with open(first, "wb") as f:
                f.write(data)
            size = len(data)
            adler = adler32_hex(zlib.adler32(data))
            md5 = hashlib.md5(data).hexdigest()
            sha = hashlib.sha256(data).hexdigest()
        os.chmod(first, 0o644)
        for rse in rses[1:]:
            dst = os.path.join(self.out, "rse", rse, "rucio", path)
            self.makedirs(os.path.dirname(dst))
            os.link(first, dst)
        created, updated = self._times()
        guid = uuid.UUID(hashlib.md5(("guid:%s:%s" % (scope, name)).encode()).hexdigest()).hex
        did = {"scope": scope, "name": name, "type": "FILE", "account": self._account(scope),
               "bytes": size, "adler32": adler, "md5": md5, "guid": guid,
               "created_at": created, "updated_at": updated,
               "replicas": {r: "AVAILABLE" for r in rses}}
        if flavours:
            did["flavours"] = list(flavours)
        self.dids[(scope, name)] = did
        self.order.append((scope, name))
        entry = {"scope": scope, "name": name, "size": size, "sha256": sha, "adler32": adler,
                 "md5": md5, "local_path": first, "datasets": [], "rses": list(rses),
                 "flavours": list(flavours or ALL_FLAVOURS), "pfn_path": path}
        entry.update(extra)
        self.files[(scope, name)] = entry
        return (scope, name)

    def finish_hashes(self):
        """Fill in the md5/sha256 of writers that returned them as None."""
        for scope, name, writer in self.pending:
            md5, sha = writer.hashes()
            self.dids[(scope, name)]["md5"] = md5
            self.files[(scope, name)]["md5"] = md5
            self.files[(scope, name)]["sha256"] = sha
        self.pending = []

    def finish_manifest(self):
        self.finish_hashes()
        for (scope, name), d in self.dids.items():
            if d["type"] == "FILE":
                continue
            for cs, cn in d["children"]:
                if (cs, cn) in self.files:
                    self.files[(cs, cn)]["datasets"].append("%s:%s" % (scope, name))
        return [self.files[k] for k in sorted(self.files)]


class SparseWriter:
    """writer= for _Builder.file(): a sparse file of `size` bytes, zero except
    for `markers` [(offset, bytes)], hashed without reading it back: holes
    are fed to md5/sha256 as zero buffers (one thread each; hashlib drops
    the GIL) and to adler32 in closed form. start() may be called early so
    the hashing (which needs only the layout) overlaps other work; with
    deferred=True the call does not wait for md5/sha256 either (returns None
    for them, _Builder gets them from hashes() at the end)."""

    def __init__(self, size, markers, deferred=False):
        self.size, self.markers, self.deferred = size, list(markers), deferred
        self.manifest_extra = {
            "sparse": True,
            "markers": [{"offset": off, "hex": blob.hex(), "text": blob.decode()} for off, blob in self.markers],
        }
        self.segments = []  # (kind, value): ("zero", length) | ("data", bytes)
        pos = 0
        for off, blob in self.markers:
            if off > pos:
                self.segments.append(("zero", off - pos))
            self.segments.append(("data", blob))
            pos = off + len(blob)
        if pos < size:
            self.segments.append(("zero", size - pos))
        self.results = {}
        self.threads = None

    def _run(self, algo):
        zero = bytes(16 * MiB)
        h = hashlib.new(algo)
        for kind, val in self.segments:
            if kind == "data":
                h.update(val)
                continue
            left = val
            while left:
                n = min(left, len(zero))
                h.update(zero if n == len(zero) else memoryview(zero)[:n])
                left -= n
        self.results[algo] = h.hexdigest()

    def start(self):
        if self.threads is None:
            self.threads = [threading.Thread(target=self._run, args=(a,), daemon=True) for a in ("md5", "sha256")]
            for t in self.threads:
                t.start()
        return self

    def __call__(self, path):
        with open(path, "wb") as f:
            for off, blob in self.markers:
                f.seek(off)
                f.write(blob)
            f.truncate(self.size)
        self.start()
        adler = 1
        for kind, val in self.segments:
            adler = adler32_zero_run(adler, val) if kind == "zero" else zlib.adler32(val, adler)
        if self.deferred:
            return self.size, adler32_hex(adler), None, None
        return (self.size, adler32_hex(adler)) + self.hashes()

    def hashes(self):
        """(md5, sha256), waiting for the hashing threads."""
        self.start()
        for t in self.threads:
            t.join()
        return self.results["md5"], self.results["sha256"]


def _write_sparse(path):
    """Create the 5 GiB + 7 sparse file of cta (see SparseWriter)."""
    return SparseWriter(SPARSE_SIZE, SPARSE_MARKERS)(path)


_write_sparse.manifest_extra = SparseWriter(SPARSE_SIZE, SPARSE_MARKERS).manifest_extra


class SeededWriter:
    """writer= for _Builder.file(): seeded_bytes(seed, size) streamed to the
    file in SEED_STEP pieces (the same bytes as seeded_bytes, which it would
    be wasteful to hold whole), hashed while writing: md5 and sha256 each in
    their own thread (hashlib drops the GIL), adler32 incrementally."""

    manifest_extra = {}

    def __init__(self, seed, size):
        self.seed, self.size = seed, size

    def __call__(self, path):
        rng = random.Random(self.seed)
        hashes = {a: hashlib.new(a) for a in ("md5", "sha256")}
        queues = {a: queue.Queue(maxsize=8) for a in hashes}

        def run(algo):
            h, q = hashes[algo], queues[algo]
            while True:
                piece = q.get()
                if piece is None:
                    return
                h.update(piece)

        threads = [threading.Thread(target=run, args=(a,), daemon=True) for a in hashes]
        for t in threads:
            t.start()
        adler = 1
        try:
            with open(path, "wb") as f:
                step = SEED_STEP
                for off in range(0, self.size, step):
                    piece = rng.randbytes(min(step, self.size - off))
                    for q in queues.values():
                        q.put(piece)
                    adler = zlib.adler32(piece, adler)
                    f.write(piece)
        finally:
            for q in queues.values():
                q.put(None)
            for t in threads:
                t.join()
        return self.size, adler32_hex(adler), hashes["md5"].hexdigest(), hashes["sha256"].hexdigest()


def _rse_definitions():
    """RSE rows, protocols and attributes. Ports are 0 until lake.py fills them.

    Read priorities make NGINX_DISK's https PFN come first by default:
    NGINX https=1, XRD https=2, XRD root=3 (lower is better; 0/None disabled).
    The `site` attributes differ so a client_location.site of SITE_XRD turns
    XRD_DISK into a LAN replica (sorted first)."""

    def proto(scheme, prefix, impl, prio):
        dom = {"read": prio, "write": prio, "delete": prio}
        return {"scheme": scheme, "hostname": "127.0.0.1", "port": 0, "prefix": prefix, "impl": impl,
                "domains": {"lan": dict(dom),
                            "wan": dict(dom, third_party_copy_read=prio, third_party_copy_write=prio)},
                "extended_attributes": None}

    def rse(name, site, protocols, city):
        rse_id = hashlib.md5(("rse:" + name).encode()).hexdigest()
        return {"id": rse_id, "rse_type": "DISK", "deterministic": True, "volatile": False,
                "staging_area": False, "city": city, "region_code": None, "country_name": None,
                "continent": None, "time_zone": None, "ISP": None, "ASN": None,
                "longitude": None, "latitude": None, "availability_read": True,
                "availability_write": True, "availability_delete": True, "qos_class": None,
                "lfn2pfn_algorithm": "hash", "verify_checksum": True, "sign_url": None,
                "credentials": None,
                "attributes": {name: True, "site": site, "lfn2pfn_algorithm": "hash",
                               "verify_checksum": True, "skip_upload_stat": False,
                               "tombstone_delay": 3600, "fts": "https://fts.invalid:8446",
                               "istape": False},
                "protocols": protocols}

    return {
        RSE_NGINX: rse(RSE_NGINX, "SITE_NGINX",
                       [proto("https", "/rucio", "rucio.rse.protocols.webdav.Default", 1)], "Lyon"),
        RSE_XRD: rse(RSE_XRD, "SITE_XRD",
                     [proto("https", "/rucio", "rucio.rse.protocols.webdav.Default", 2),
                      proto("root", "//rucio", "rucio.rse.protocols.xrootd.Default", 3)], "Geneva"),
    }


def make_lake(out_dir, profile="test"):
    """Generate the lake into out_dir (must be empty or absent). Returns the
    path of lake.json."""
    if profile not in PROFILES:
        raise ValueError("profile must be one of %s" % ", ".join(PROFILES))
    t0 = time.time()
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir) and os.listdir(out_dir):
        raise FileExistsError("%s is not empty" % out_dir)
    os.makedirs(out_dir, exist_ok=True)
    b = _Builder(out_dir)
    n_many = 300 if profile == "test" else 2000
    bench_sparse = None
    cta_sparse = _write_sparse
    if profile == "bench":
        # the longest jobs (md5 of 15 GiB of holes) need only the layout: start
        # them now so they overlap everything else (same output as
        # _write_sparse for cta:sparse_5g.bin)
        bench_sparse = SparseWriter(BENCH_SPARSE_SIZE, BENCH_SPARSE_MARKERS, deferred=True).start()
        cta_sparse = SparseWriter(SPARSE_SIZE, SPARSE_MARKERS, deferred=True).start()

    # ---- user.alice: small edge sizes, nesting, shared file, cross scope ----
    A = "user.alice"
    sizes = [("zero.bin", 0), ("one.bin", 1), ("f4095.bin", 4095), ("f4096.bin", 4096),
             ("f4097.bin", 4097), ("mib_minus1.bin", MiB - 1), ("mib.bin", MiB),
             ("mib_plus1.bin", MiB + 1)]
    small = [b.file(A, n, seeded_bytes("alice:" + n, s)) for n, s in sizes]
    big = b.file(A, "random40M.bin", seeded_bytes("alice:random40M", 40 * MiB + 7))
    text = b.file(A, "notes.txt", b"".join(b"line %04d of user.alice:notes.txt\n" % i for i in range(200)))
    top = b.file(A, "top_file.txt", b"I am a file attached to nothing in user.alice.\n")
    local = b.file(A, "local.dat", seeded_bytes("alice:local", 12345))
    o1 = b.file(A, "open1.dat", b"open dataset member 1\n")
    o2 = b.file(A, "open2.dat", b"open dataset member 2\n")

    # files of other scopes referenced from user.alice datasets
    calib = b.file("cta", "calib.dat", seeded_bytes("cta:calib", 2048))

    small_ds = b.collection(A, "small_ds", "DATASET", small)
    big_ds = b.collection(A, "big_ds", "DATASET", [big, text])
    # mib.bin is in small_ds AND shared_ds: a file in two datasets
    shared_ds = b.collection(A, "shared_ds", "DATASET", [(A, "mib.bin"), (A, "one.bin")])
    # a dataset with a child from another scope (cta:calib.dat stays top-level in cta)
    mixed_ds = b.collection(A, "mixed_ds", "DATASET", [local, calib])
    b.collection(A, "empty_ds", "DATASET", [], is_open=True)
    b.collection(A, "open_ds", "DATASET", [o1, o2], is_open=True)
    mid1 = b.collection(A, "cont_mid1", "CONTAINER", [small_ds, big_ds], is_open=True)
    mid2 = b.collection(A, "cont_mid2", "CONTAINER", [shared_ds, mixed_ds], is_open=True)
    # containers nesting containers; through cont_top mib.bin is reachable twice
    b.collection(A, "cont_top", "CONTAINER", [mid1, mid2], is_open=True)
    b.collection(A, "cont_empty", "CONTAINER", [], is_open=True)
    del top

    # ---- user.bob ------------------------------------------------------------
    B = "user.bob"
    bob1 = b.file(B, "bob1.dat", seeded_bytes("bob:1", 777))
    bob2 = b.file(B, "bob2.dat", seeded_bytes("bob:2", 3000))
    b.file(B, "secret.txt", b"bob's top-level secret\n")
    b.collection(B, "bob_ds", "DATASET", [bob1, bob2])

    # ---- group.phys (group.* scopes also get dots -> slashes) ------------------
    G = "group.phys"
    hist = b.file(G, "histos.root", seeded_bytes("phys:histos", 65536 + 3))
    phys_ds = b.collection(G, "phys_ds", "DATASET", [hist])
    b.collection(G, "phys_cont", "CONTAINER", [phys_ds], is_open=True)

    # ---- cta: many small files, the sparse file, replica edge cases ----------
    C = "cta"
    many = [b.file(C, "f_%05d.dat" % i, b"cta small file %05d\n" % i * (1 + i % 7)) for i in range(n_many)]
    b.collection(C, "many_files", "DATASET", many)
    sparse = b.file(C, "sparse_5g.bin", writer=cta_sparse)
    b.collection(C, "huge_ds", "DATASET", [sparse])
    xo = b.file(C, "xrd_only.dat", seeded_bytes("cta:xrd_only", 5000), rses=(RSE_XRD,))
    ngo = b.file(C, "nginx_only.dat", seeded_bytes("cta:nginx_only", 5001), rses=(RSE_NGINX,))
    lost = b.file(C, "no_replica.dat", b"registered but no replica anywhere\n", rses=())
    b.collection(C, "partial_ds", "DATASET", [xo, ngo, lost])
    b.file(C, "README.txt", b"cta scope top-level file\n")
    # cta:calib.dat (created above) is attached only to user.alice:mixed_ds, a
    # parent in ANOTHER scope, so it is still top-level in cta.

    # ---- lsst: unicode, spaces, FITS, names with '/' (flavour 41 only) -------
    L = "lsst"
    fits = fits_bytes()
    omega = b.file(L, "Ωmega data.fits", fits)
    img = b.file(L, "image.fits", fits_bytes(128, 16))
    spaces = b.file(L, "file with spaces.dat", b"a name with spaces\n")
    b.collection(L, "images", "DATASET", [omega, img, spaces])
    s1 = b.file(L, "run1/raw/evt 001.dat", seeded_bytes("lsst:evt1", 1500), flavours=ONLY_41)
    s2 = b.file(L, "run1/raw/evt 002.dat", seeded_bytes("lsst:evt2", 1501), flavours=ONLY_41)
    s3 = b.file(L, "run1/calib.dat", seeded_bytes("lsst:run1calib", 99), flavours=ONLY_41)
    b.collection(L, "slashy", "DATASET", [s1, s2, s3], flavours=ONLY_41)
    if profile in ("demo", "bench"):
        survey = b.file(L, "survey_300M.bin", seeded_bytes("lsst:survey", 300 * MiB + 11))
        b.collection(L, "survey_ds", "DATASET", [survey])

    flat = None
    if profile == "bench":
        flat = _add_bench(b, bench_sparse)

    # ---- catalogue ------------------------------------------------------------
    issuer = JwtIssuer(os.path.join(out_dir, "issuer"))
    lake = {
        "format": "ruciofs-lake/1",
        "generator": {"version": GEN_VERSION, "profile": profile},
        "vo": "def",
        "token_lifetime": 3600,
        "server_version": {"1.31": "1.31.7", "41": "41.0.0"},
        "oidc": {"expected_audience": "rucio", "expected_scope": "openid profile",
                 "issuers": {DEFAULT_ISSUER: issuer.lake_entry()}},
        "accounts": {
            "root": {"type": "SERVICE", "email": "root@ruciofs.test"},
            "alice": {"type": "USER", "email": "alice@ruciofs.test"},
            "bob": {"type": "USER", "email": "bob@ruciofs.test"},
        },
        "identities": [
            {"type": "USERPASS", "identity": "root", "password": "root-secret", "accounts": ["root"], "default": "root"},
            {"type": "USERPASS", "identity": "alice", "password": "alice-secret", "accounts": ["alice"], "default": "alice"},
            {"type": "USERPASS", "identity": "bob", "password": "bob-secret", "accounts": ["bob"], "default": "bob"},
            # one identity, two accounts, no default: the 206 case of /auth/userpass
            {"type": "USERPASS", "identity": "shared", "password": "shared-secret", "accounts": ["alice", "bob"]},
            {"type": "OIDC", "identity": "SUB=alice, ISS=%s" % DEFAULT_ISSUER, "accounts": ["alice"], "default": "alice"},
            {"type": "OIDC", "identity": "SUB=bob, ISS=%s" % DEFAULT_ISSUER, "accounts": ["bob"], "default": "bob"},
        ],
        "scopes": {
            "user.alice": {"account": "alice"}, "user.bob": {"account": "bob"},
            "group.phys": {"account": "root"}, "cta": {"account": "root"},
            "lsst": {"account": "root"}, "empty": {"account": "root"},
        },
        "rses": _rse_definitions(),
        "storage": {
            RSE_NGINX: {"tree": "rse/%s" % RSE_NGINX, "server": "nginx"},
            RSE_XRD: {"tree": "rse/%s" % RSE_XRD, "server": "xrootd"},
        },
        "dids": [b.dids[k] for k in b.order],
    }
    if profile == "bench":
        lake["scopes"][BENCH] = {"account": "root"}
    manifest = b.finish_manifest()
    # make the tree world-readable: xrootd runs as user `xrootd`
    for root, dirs, _files in os.walk(os.path.join(out_dir, "rse")):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
    os.chmod(os.path.join(out_dir, "rse"), 0o755)
    with open(os.path.join(out_dir, "lake.json"), "w", encoding="utf-8") as f:
        json.dump(lake, f, indent=1, ensure_ascii=False)
    with open(os.path.join(out_dir, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
    if flat is not None:
        with open(os.path.join(out_dir, "flat.json"), "w", encoding="utf-8") as f:
            json.dump(flat, f, indent=1)
    with open(os.path.join(out_dir, ".complete"), "w") as f:
        json.dump({"version": GEN_VERSION, "profile": profile, "seconds": round(time.time() - t0, 2)}, f)
    return os.path.join(out_dir, "lake.json")


def _add_bench(b, sparse):
    """Scope `bench` of profile "bench" (added after everything of "demo", so
    the demo DIDs keep their dates). `sparse` is the started SparseWriter of
    bench:sparse_10g.bin. Returns the content of flat.json."""
    S = BENCH
    flat_root = os.path.join(b.out, "rse", RSE_NGINX, "rucio", FLAT_DIR)
    dirs = {}

    def link_flat(sub, did):
        d = os.path.join(flat_root, sub)
        b.makedirs(d)
        os.link(b.files[did]["local_path"], os.path.join(d, did[1]))

    def small_file(name, lo, hi):
        rng = random.Random("%s:%s" % (S, name))
        return b.file(S, name, rng.randbytes(rng.randint(lo, hi)))

    big = b.file(S, "big_1G.bin", writer=SeededWriter("bench:big_1G", BENCH_BIG_SIZE))
    b.collection(S, "big_ds", "DATASET", [big])
    link_flat("big", big)
    dirs["big"] = {"dataset": "%s:big_ds" % S, "count": 1, "pattern": "big_1G.bin", "bytes": BENCH_BIG_SIZE}

    many = [small_file("m_%05d.dat" % i, 1024, 4096) for i in range(BENCH_MANY)]
    b.collection(S, "many_10k", "DATASET", many)
    for did in many:
        link_flat("many_10k", did)
    dirs["many_10k"] = {"dataset": "%s:many_10k" % S, "count": len(many), "pattern": "m_%05d.dat",
                        "bytes": sum(b.files[d]["size"] for d in many)}

    small = [small_file("s_%04d.dat" % i, 2048, 64 * 1024) for i in range(BENCH_SMALL)]
    b.collection(S, "small_2k", "DATASET", small)
    for did in small:
        link_flat("small_2k", did)
    dirs["small_2k"] = {"dataset": "%s:small_2k" % S, "count": len(small), "pattern": "s_%04d.dat",
                        "bytes": sum(b.files[d]["size"] for d in small)}

    huge = b.file(S, "sparse_10g.bin", writer=sparse, rses=(RSE_NGINX,))
    b.collection(S, "huge10_ds", "DATASET", [huge])

    return {
        "root": flat_root,
        "rse": RSE_NGINX,
        "url_path": "/rucio/%s/" % FLAT_DIR,
        "about": "flat/<dir>/<name> is a hard link of the replica of DID %s:<name> "
                 "(size and checksums in manifest.json); the URL path is relative to the "
                 "NGINX_DISK server root, e.g. $NGINX_URL/%s/ (nginx autoindex lists it)" % (S, FLAT_DIR),
        "dirs": dirs,
    }


def is_complete(out_dir, profile):
    """True if out_dir holds a finished lake of this profile and generator version."""
    try:
        with open(os.path.join(out_dir, ".complete")) as f:
            stamp = json.load(f)
    except (OSError, ValueError):
        return False
    return stamp.get("version") == GEN_VERSION and stamp.get("profile") == profile


def main(argv=None):
    ap = argparse.ArgumentParser(description="Generate a ruciofs sample lake.")
    ap.add_argument("--out", required=True)
    ap.add_argument("--profile", choices=PROFILES, default="test")
    ap.add_argument("--force", action="store_true", help="delete DIR first if it exists")
    a = ap.parse_args(argv)
    if a.force and os.path.exists(a.out):
        shutil.rmtree(a.out)
    t0 = time.time()
    path = make_lake(a.out, a.profile)
    print("lake written to %s in %.1fs" % (path, time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
