"""Observability (issue 19): Prometheus metrics from ruciofs-ctl metrics
and the -o metrics file (strictly parsed, moving with reads, rewritten
atomically), event lines in the log, log levels, and journald's
priority prefixes."""
import json
import os
import re
import subprocess
import time

import pytest

from conftest import TOP_BUILD
from localusers import make_traversable
from rucio_client import find_path, manifest_files, replicated

CTL = os.environ.get("RUCIOFS_CTL_BIN") or os.path.join(TOP_BUILD,
                                                        "ruciofs-ctl")

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge", "histogram")


# ---- a strict parser of the Prometheus text format (0.0.4) ----

def _labels(s, i):
    """Labels from s[i] == '{' to its '}': (dict, index after '}')."""
    assert s[i] == "{"
    i += 1
    labels = {}
    while s[i] != "}":
        m = LABEL.match(s, i)
        assert m, "bad label name at %r" % s[i:]
        name = m.group(0)
        assert not name.startswith("__"), name
        i = m.end()
        assert s[i:i + 2] == '="', "no =\" at %r" % s[i:]
        i += 2
        val = []
        while s[i] != '"':
            if s[i] == "\\":
                esc = s[i + 1]
                assert esc in '\\"n', "bad escape \\%s" % esc
                val.append("\n" if esc == "n" else esc)
                i += 2
            else:
                assert s[i] != "\n"
                val.append(s[i])
                i += 1
        i += 1
        assert name not in labels, "label %s twice" % name
        labels[name] = "".join(val)
        if s[i] == ",":
            i += 1
            assert s[i] != "}", "trailing comma"
        else:
            assert s[i] == "}", "no } at %r" % s[i:]
    return labels, i + 1


def _value(s):
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s.replace("Inf", "inf"))
    assert re.fullmatch(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", s), s
    return float(s)


def _owner(name, fams):
    """The family a sample name belongs to (histograms: its suffixes)."""
    if name in fams and fams[name]["type"] != "histogram":
        return name
    for suf in ("_bucket", "_sum", "_count"):
        base = name[:-len(suf)]
        if name.endswith(suf) and fams.get(base, {}).get("type") == \
                "histogram":
            return base
    raise AssertionError("sample %s of no declared family" % name)


def _check_histogram(fname, fam):
    series = {}
    for name, labels, v in fam["samples"]:
        key = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
        s = series.setdefault(key, {"buckets": [], "sum": None,
                                    "count": None})
        if name.endswith("_bucket"):
            s["buckets"].append((_value(labels["le"]), v))
        elif name.endswith("_sum"):
            s["sum"] = v
        else:
            s["count"] = v
    for key, s in series.items():
        les = [b[0] for b in s["buckets"]]
        counts = [b[1] for b in s["buckets"]]
        assert les == sorted(les) and len(set(les)) == len(les), les
        assert les[-1] == float("inf"), "%s: no +Inf bucket" % fname
        assert counts == sorted(counts), "%s: not cumulative" % fname
        assert s["count"] is not None and s["sum"] is not None
        assert counts[-1] == s["count"], "%s: +Inf != _count" % fname


def parse(text):
    """{family: {"type", "help", "samples": [(name, labels, value)]}};
    fails on anything the format (as ruciofs writes it) does not allow."""
    assert text.endswith("\n"), "not ended by a newline"
    fams, cur = {}, None
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP "):
            name, sep, hlp = line[7:].partition(" ")
            assert sep and NAME.fullmatch(name), line
            assert name not in fams, "HELP of %s twice" % name
            fams[name] = {"type": None, "help": hlp, "samples": []}
            cur = name
        elif line.startswith("# TYPE "):
            name, typ = line[7:].split(" ")
            assert name == cur and fams[name]["type"] is None, line
            assert typ in TYPES, line
            if typ == "counter":
                assert name.endswith("_total"), name
            fams[name]["type"] = typ
        else:
            assert not line.startswith("#"), line
            m = NAME.match(line)
            assert m, "bad sample line %r" % line
            name, i = m.group(0), m.end()
            labels = {}
            if line[i] == "{":
                labels, i = _labels(line, i)
            assert line[i] == " ", "no blank before the value: %r" % line
            v = _value(line[i + 1:])
            fam = _owner(name, fams)
            assert fam == cur, "%s outside its family's block" % name
            if fams[fam]["type"] != "histogram":
                assert "le" not in labels
            fams[fam]["samples"].append((name, labels, v))
    for name, fam in fams.items():
        assert fam["type"], "%s has no TYPE" % name
        if fam["type"] == "histogram":
            _check_histogram(name, fam)
    return fams


def val(fams, name, **labels):
    """Sum of the samples of @name whose labels include @labels."""
    fam = _owner(name, fams)
    return sum(v for n, ls, v in fams[fam]["samples"]
               if n == name and all(ls.get(k) == x
                                    for k, x in labels.items()))


# ---- helpers ----

def ctl_metrics(m):
    r = subprocess.run([CTL, "-m", m.dir, "metrics"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return parse(r.stdout)


def wait_for(cond, what, timeout=15):
    end = time.time() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.time() > end:
            pytest.fail(what)
        time.sleep(0.05)


def read_all(path):
    with open(path, "rb") as fh:
        while fh.read(1 << 20):
            pass


def files_between(lake, lo, hi):
    return [f for f in replicated(lake) if lo <= f["size"] <= hi]


def endpoint_bytes(fams):
    return val(fams, "ruciofs_read_bytes_total", source="endpoint")


def log_lines(m):
    """The mount's log lines, also once it is unmounted."""
    with open(m.log_path, errors="replace") as fh:
        return fh.read().splitlines()


# ---- tests ----

def test_metrics_parse_and_move_with_reads(lake41, mount_factory,
                                           tmp_path):
    """A cold read moves endpoint bytes, misses, read and fetch latency;
    the same file read warm (a new mount of that cache) moves cache bytes
    and hits and fetches nothing. The ctl text and the file both parse."""
    prom = str(tmp_path / "ruciofs.prom")
    f = files_between(lake41, 2 << 20, 64 << 20)[0]
    m = mount_factory(lake41, "passthrough=no", "metrics=" + prom,
                      "metrics_interval=1")
    before = ctl_metrics(m)
    assert before["ruciofs_mounted"]["type"] == "gauge"
    assert val(before, "ruciofs_mounted") == 1
    assert val(before, "ruciofs_offline") == 0
    read_all(find_path(m, f))
    after = ctl_metrics(m)
    assert endpoint_bytes(after) - endpoint_bytes(before) >= f["size"]
    assert val(after, "ruciofs_cache_misses_total") > \
        val(before, "ruciofs_cache_misses_total")
    n = val(after, "ruciofs_read_duration_seconds_count") - \
        val(before, "ruciofs_read_duration_seconds_count")
    assert n >= f["size"] // (1 << 20), n
    assert val(after, "ruciofs_fetch_duration_seconds_count") > \
        val(before, "ruciofs_fetch_duration_seconds_count")
    assert val(after, "ruciofs_identity_read_bytes_total",
               identity="mount") >= f["size"]
    assert val(after, "ruciofs_catalogue_requests_total",
               call="replicas") >= 1
    assert val(after, "ruciofs_cache_size_bytes") > 0
    assert val(after, "ruciofs_cache_quota_bytes") == 10 << 30
    assert val(after, "ruciofs_sessions", state="busy") + \
        val(after, "ruciofs_sessions", state="idle") >= 1
    # the file parses too, and is the same set of families
    wait_for(lambda: os.path.exists(prom), "no metrics file")
    with open(prom) as fh:
        assert set(parse(fh.read())) == set(after)
    assert "event mount: " in m.logtext()
    m.unmount()
    assert any("event unmount: " in l for l in log_lines(m))
    # the file written at unmount says so
    with open(prom) as fh:
        assert val(parse(fh.read()), "ruciofs_mounted") == 0
    assert not os.path.exists(prom + ".tmp")

    m2 = mount_factory(lake41, "passthrough=no", "cache_dir=" + m.cache)
    read_all(find_path(m2, f))
    warm = ctl_metrics(m2)
    assert val(warm, "ruciofs_read_bytes_total", source="cache") >= \
        f["size"]
    assert val(warm, "ruciofs_cache_hits_total") >= f["size"] // (1 << 20)
    assert endpoint_bytes(warm) == 0
    assert val(warm, "ruciofs_cache_misses_total") == 0


def test_metrics_file_rewritten_never_half(lake41, mount_factory, tmp_path):
    """-o metrics: written once mounted, replaced (rename: a new inode)
    every interval, every read of it a whole, parseable text."""
    prom = str(tmp_path / "m.prom")
    m = mount_factory(lake41, "metrics=" + prom, "metrics_interval=1")
    wait_for(lambda: os.path.exists(prom), "no metrics file at mount")
    assert os.stat(prom).st_mode & 0o777 == 0o644
    inodes, reads = set(), 0
    end = time.time() + 3.5
    while time.time() < end or len(inodes) < 3:
        assert time.time() < end + 5, "file not rewritten: %s" % inodes
        with open(prom) as fh:
            inodes.add(os.fstat(fh.fileno()).st_ino)
            text = fh.read()
        fams = parse(text)
        assert "ruciofs_identity_read_bytes_total" in fams  # the last one
        reads += 1
    assert len(inodes) >= 3 and reads > 10
    assert m.alive()


def test_metrics_file_without_a_cache(lake41, mount_factory, tmp_path):
    """-o cache=no has no control socket, but the file has the metrics
    that do not need a cache, and they move."""
    prom = str(tmp_path / "nc.prom")
    f = files_between(lake41, 100000, 4 << 20)[0]
    m = mount_factory(lake41, "cache=no", "metrics=" + prom,
                      "metrics_interval=1")
    read_all(find_path(m, f))

    def moved():
        with open(prom) as fh:
            fams = parse(fh.read())
        return fams if endpoint_bytes(fams) >= f["size"] else None

    fams = wait_for(lambda: os.path.exists(prom) and moved(),
                    "the file's endpoint bytes did not move")
    assert not [n for n in fams if n.startswith("ruciofs_cache_")]
    assert val(fams, "ruciofs_read_duration_seconds_count") >= 1


def test_metrics_file_needs_an_absolute_path_in_a_directory(lake41,
                                                           mount_factory,
                                                           tmp_path):
    for bad, why in (("metrics=rel.prom", "metrics must be the absolute"),
                     ("metrics=%s/none/x.prom" % tmp_path,
                      "metrics: directory '%s/none'" % tmp_path),
                     ("metrics_interval=0", "metrics_interval must be")):
        with pytest.raises(AssertionError) as e:
            mount_factory(lake41, bad)
        assert why in str(e.value)


def test_offline_and_online_events(lake41, mount_factory):
    """The catalogue going away and coming back: one offline and one
    online event (not one per retry), and ruciofs_offline follows."""
    m = mount_factory(lake41, "offline_retry=1", "dir_ttl=1",
                      "connect_timeout=2")
    top = os.listdir(m.dir)
    scope = sorted(top)[0]
    os.listdir(m.path(scope))
    lake41.stop_catalogue()
    try:
        time.sleep(1.2)  # past dir_ttl: the next listing asks
        for _ in range(3):
            try:
                os.listdir(m.path(scope))
            except OSError:
                pass
            time.sleep(1.1)  # past offline_retry: contacts again
        wait_for(lambda: "event offline: " in m.logtext(),
                 "no offline event:\n" + m.logtext())
        assert val(ctl_metrics(m), "ruciofs_offline") == 1
    finally:
        lake41.start_catalogue()

    def online():
        time.sleep(0.3)
        try:
            os.listdir(m.path(scope))
        except OSError:
            pass
        return "event online: " in m.logtext()

    wait_for(online, "no online event:\n" + m.logtext(), timeout=20)
    text = m.logtext()
    assert text.count("event offline: ") == 1, text
    assert text.count("event online: ") == 1, text
    assert val(ctl_metrics(m), "ruciofs_offline") == 0


def test_endpoint_penalty_event_at_warning_level(lake41, mount_factory):
    """An endpoint that dies mid-use: one endpoint-penalty event and the
    last_resort gauge; at log_level=warning no info line at all (not even
    the mount event)."""
    m = mount_factory(lake41, "log_level=warning", "connect_timeout=2",
                      "io_timeout=3")
    files = files_between(lake41, 100000, 4 << 20)[:3]
    lake41.kill_rse("NGINX_DISK")
    try:
        for f in files:
            read_all(find_path(m, f))  # from XRD_DISK
        fams = ctl_metrics(m)
    finally:
        lake41.start_rse("NGINX_DISK")
    text = m.logtext()
    assert re.search(r"^ruciofs: warning: event endpoint-penalty: "
                     r"NGINX_DISK: ", text, re.M), text
    assert text.count("event endpoint-penalty: NGINX_DISK:") == 1, text
    assert val(fams, "ruciofs_endpoint_last_resort",
               endpoint="NGINX_DISK") == 1
    assert val(fams, "ruciofs_endpoint_errors_total",
               endpoint="NGINX_DISK") >= 1
    assert "ruciofs: info:" not in text, text
    assert "event mount:" not in text


def test_evict_event(lake41, mount_factory):
    """A quota smaller than what is read: eviction runs, each one line
    with files and bytes, and the counters."""
    m = mount_factory(lake41, "cache_size=1M", "block_size=64K",
                      "passthrough=no")
    for f in files_between(lake41, 200 << 10, 1 << 20)[:8]:
        read_all(find_path(m, f))

    def evicted():
        return "event evict: " in m.logtext() and \
            val(ctl_metrics(m), "ruciofs_cache_evicted_files_total") > 0

    wait_for(evicted, "no eviction event:\n" + m.logtext())
    line = [l for l in log_lines(m) if "event evict: " in l][0]
    assert re.search(r"event evict: \d+ files, \d+ bytes evicted", line), \
        line
    fams = ctl_metrics(m)
    assert val(fams, "ruciofs_cache_evicted_bytes_total") > 0
    assert val(fams, "ruciofs_cache_size_bytes") <= 1 << 20


def test_journal_stream_priorities(lake41, mount_factory, tmp_path):
    """In the foreground under systemd (stderr is the journal, as
    $JOURNAL_STREAM says) every line carries sd-daemon's "<N>"."""
    sub = tmp_path / "m0"
    sub.mkdir()
    log = sub / "ruciofs.log"
    log.write_text("")
    st = os.stat(str(log))
    m = mount_factory(lake41, env={
        "JOURNAL_STREAM": "%d:%d" % (st.st_dev, st.st_ino)})
    assert m.log_path == str(log)
    m.unmount()
    lines = [l for l in log_lines(m) if l.strip()]
    assert "<6>ruciofs: info: event mount: " in "\n".join(lines)
    assert "<6>ruciofs: info: event unmount: " in "\n".join(lines)
    for l in lines:
        if l.startswith("ruciofs:") or l.startswith("<"):
            assert re.match(r"<[0-7]>ruciofs: (error|warning|info|debug): ",
                            l), l


def test_status_json_version(lake41, mount_factory):
    m = mount_factory(lake41)
    r = subprocess.run([CTL, "-m", m.dir, "status", "--json"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["version"] == 1
    # every field docs/status-json.md documents is there, and no other
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs",
                            "status-json.md")).read()
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", doc, re.M))
    assert set(st) == documented, set(st) ^ documented


def test_reads_counted_per_identity_on_a_shared_mount(toklake,
                                                      mount_factory,
                                                      local_users):
    """On a shared mount each caller reading with their own token is
    counted under their local user name, never anything of the token."""
    lake = toklake.lake
    m = mount_factory(lake, "allow_other",
                      "token_issuer=" + toklake.issuer.url)
    make_traversable(m.dir)
    a = local_users.add()
    token = toklake.token("alice", read=[toklake.user_scope("user.alice")])
    a.write_token(token)
    f = [f for f in manifest_files(lake)
         if (f["scope"], f["name"]) == ("user.alice", "notes.txt")][0]
    p = os.path.join(m.dir, f["paths"][0])
    r = a.run(["cat", p])
    assert r.returncode == 0, r.stderr
    fams = ctl_metrics(m)
    ids = {ls["identity"]: v for n, ls, v in
           fams["ruciofs_identity_read_bytes_total"]["samples"]}
    assert ids.get(a.name) == len(r.stdout), ids
    assert val(fams, "ruciofs_identity_reads_total", identity=a.name) >= 1
    text = subprocess.run([CTL, "-m", m.dir, "metrics"], capture_output=True,
                          text=True, timeout=60).stdout
    assert "uid:" not in text
    assert token.split(".")[2][:16] not in text  # no part of the token
