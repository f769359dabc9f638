"""Shared mounts (issue 17): one root mount with allow_other, each local
user reading with their own IAM token. Real parts: local users created
here, tokens signed by the test issuer (keys over HTTPS), storage that
enforces tokens (xrootd + scitokens, the only replica of these files)."""
import os
import stat
import time

import pytest

from conftest import catalogue_requests
from localusers import make_traversable
from rucio_client import manifest_files

ALICE_FILE = ("user.alice", "notes.txt")
BOB_FILE = ("user.bob", "bob1.dat")


def path_of(m, lake, did):
    f = [f for f in manifest_files(lake) if (f["scope"], f["name"]) == did]
    return os.path.join(m.dir, f[0]["paths"][0])


def local_bytes(lake, did):
    with open(lake.files[did]["local_path"], "rb") as f:
        return f.read()


def shared_mount(toklake, mount_factory, *opts):
    m = mount_factory(toklake.lake, "allow_other",
                      "token_issuer=" + toklake.issuer.url, *opts)
    make_traversable(m.dir)
    return m


def user_with_token(toklake, local_users, sub, scope, **kw):
    u = local_users.add()
    u.write_token(toklake.token(sub, read=[toklake.user_scope(scope)], **kw))
    return u


@pytest.fixture
def two(toklake, mount_factory, local_users):
    """A shared mount and two users: alice may read user.alice's files,
    bob user.bob's."""
    m = shared_mount(toklake, mount_factory)
    a = user_with_token(toklake, local_users, "alice", "user.alice")
    b = user_with_token(toklake, local_users, "bob", "user.bob")
    return m, a, b


def refused(result):
    return result.returncode != 0 and b"Permission denied" in result.stderr


def wait_until(cond, what, timeout=10):
    end = time.time() + timeout
    while not cond():
        if time.time() > end:
            pytest.fail(what)
        time.sleep(0.1)


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_each_caller_reads_with_their_own_token(toklake, mount_factory,
                                                local_users, alg):
    lake, store = toklake.lake, toklake.store
    m = shared_mount(toklake, mount_factory)
    a = user_with_token(toklake, local_users, "alice", "user.alice", alg=alg)
    b = user_with_token(toklake, local_users, "bob", "user.bob", alg=alg)
    alice, bob = path_of(m, lake, ALICE_FILE), path_of(m, lake, BOB_FILE)
    assert a.run(["cat", alice]).stdout == local_bytes(lake, ALICE_FILE)
    assert b.run(["cat", bob]).stdout == local_bytes(lake, BOB_FILE)
    assert refused(b.run(["cat", alice]))
    assert refused(a.run(["cat", bob]))
    # the storage saw each token, and gave bob nothing of alice's
    assert any(r["granted"] for r in
               store.opens(path_contains="notes.txt", subject="alice"))
    assert not any(r["granted"] for r in
                   store.opens(path_contains="notes.txt", subject="bob"))
    # the namespace is shared on purpose: bob sees alice's file's name
    assert b.run(["stat", "-c", "%s", alice]).stdout.strip() == \
        str(len(local_bytes(lake, ALICE_FILE))).encode()
    assert m.alive()


def test_bytes_one_caller_cached_are_not_served_to_another(two):
    m, a, b = two
    lake = m.lake
    alice = path_of(m, lake, ALICE_FILE)
    assert a.run(["cat", alice]).stdout == local_bytes(lake, ALICE_FILE)
    # whole in the cache now (root reads as the mount: it sees the cache)
    wait_until(lambda: float(os.getxattr(alice, "user.ruciofs.cached")) ==
               1.0, "alice's file cached whole")
    r = b.run(["cat", alice])
    assert refused(r) and r.stdout == b""
    r = b.run(["dd", "if=" + alice, "bs=4096", "count=1", "status=none"])
    assert refused(r) and r.stdout == b""
    # and not through mmap either
    r = b.run(["python3", "-c", "import mmap,sys; f=open(sys.argv[1],'rb');"
               "print(mmap.mmap(f.fileno(),0,prot=mmap.PROT_READ)[:8])",
               alice])
    assert refused(r)
    # replica URLs are not the namespace: bob may not see them
    r = b.run(["getfattr", "--only-values", "-n", "user.rucio.replicas",
               alice])
    assert r.returncode != 0
    assert a.run(["getfattr", "--only-values", "-n", "user.rucio.replicas",
                  alice]).stdout.startswith(b"https://127.0.0.1:")


def test_access_and_modes_follow_the_caller(two):
    m, a, b = two
    alice = path_of(m, m.lake, ALICE_FILE)
    assert a.run(["test", "-r", alice]).returncode == 0
    assert b.run(["test", "-r", alice]).returncode == 1
    assert a.run(["test", "-w", alice]).returncode == 1
    assert a.run(["test", "-x", alice]).returncode == 1
    # once the storage said no, bob's ls -l says so too; alice's r--
    assert b.run(["stat", "-c", "%a", alice]).stdout.strip() == b"0"
    assert a.run(["stat", "-c", "%a", alice]).stdout.strip() == b"444"
    d = os.path.dirname(alice)
    assert b.run(["test", "-r", d, "-a", "-x", d]).returncode == 0


def test_a_caller_without_a_token_gets_nothing(two, local_users):
    m, _, _ = two
    c = local_users.add()
    r = c.run(["ls", m.dir])
    assert refused(r) and r.stdout == b""
    assert refused(c.run(["cat", path_of(m, m.lake, ALICE_FILE)]))
    # nor what another caller looked up a moment ago (no kernel caching
    # of names or attributes on a shared mount)
    a = two[1]
    alice = path_of(m, m.lake, ALICE_FILE)
    assert a.run(["stat", alice]).returncode == 0
    assert refused(c.run(["stat", alice]))


def test_anonymous_names_shows_the_namespace_only(toklake, mount_factory,
                                                  local_users):
    m = shared_mount(toklake, mount_factory, "anonymous=names")
    c = local_users.add()
    alice = path_of(m, toklake.lake, ALICE_FILE)
    assert c.run(["stat", alice]).returncode == 0
    assert refused(c.run(["cat", alice]))


@pytest.mark.parametrize("how", ["group readable", "another owner",
                                 "a symlink"])
def test_unsafe_token_files_are_ignored(toklake, mount_factory, local_users,
                                        how):
    m = shared_mount(toklake, mount_factory)
    c, other = local_users.add(), local_users.add()
    tok = toklake.token("alice", read=[toklake.user_scope("user.alice")])
    if how == "group readable":
        path = c.write_token(tok, mode=0o640)
    elif how == "another owner":
        path = c.write_token(tok, owner=other.uid)
    else:
        real = other.write_token(tok, where="tmp")
        c.ensure_runtime_dir()
        path = c.token_path()
        os.symlink(real, path)
    assert refused(c.run(["cat", path_of(m, toklake.lake, ALICE_FILE)]))
    text = m.logtext()
    assert "uid %d" % c.uid in text and path in text
    assert tok not in text


BAD = ["expired", "nbf in the future", "wrong iss", "wrong aud",
       "alg none", "HS256 keyed with the public key",
       "foreign key, our kid", "tampered", "garbage"]


def bad_token(toklake, label):
    t, iss = toklake, toklake.issuer
    good = dict(read=[t.user_scope("user.alice")])
    wide = dict(scope="openid profile storage.read:/")
    return {
        "expired": lambda: t.token("alice", lifetime=-600, **good),
        "nbf in the future": lambda: t.token(
            "alice", nbf=int(time.time()) + 3600, **good),
        "wrong iss": lambda: t.token("alice", iss="https://127.0.0.1:1/",
                                     **good),
        "wrong aud": lambda: t.token("alice", aud="https://elsewhere.test",
                                     **good),
        "alg none": lambda: iss.forge_alg_none("alice", **wide),
        "HS256 keyed with the public key":
            lambda: iss.forge_hs256_pubkey("alice", **wide),
        "foreign key, our kid": lambda: iss.forge_foreign_key("alice",
                                                              **wide),
        "tampered": lambda: iss.tamper(t.token("alice", **good),
                                       scope=wide["scope"]),
        "garbage": lambda: "not.a.token",
    }[label]()


def test_bad_tokens_are_refused_with_a_reason(toklake, mount_factory,
                                              local_users):
    m = shared_mount(toklake, mount_factory)
    alice = path_of(m, toklake.lake, ALICE_FILE)
    toks = []
    for label in BAD:
        u = local_users.add()
        tok = bad_token(toklake, label)
        toks.append(tok)
        u.write_token(tok)
        r = u.run(["cat", alice])
        assert refused(r), label
        text = m.logtext()
        assert "uid %d: token refused:" % u.uid in text, (label, text[-2000:])
    text = m.logtext()
    for tok in toks:
        sig = tok.split(".")[-1]
        assert tok not in text
        assert len(sig) < 16 or sig not in text
    # the mount lives on, for a good token too
    a = user_with_token(toklake, local_users, "alice", "user.alice")
    assert a.run(["cat", alice]).stdout == local_bytes(toklake.lake,
                                                      ALICE_FILE)


def test_a_renewed_token_is_used_without_a_remount(toklake, mount_factory,
                                                   local_users):
    m = shared_mount(toklake, mount_factory)
    alice = path_of(m, toklake.lake, ALICE_FILE)
    u = local_users.add()
    u.write_token(toklake.token("alice", lifetime=-600,
                                read=[toklake.user_scope("user.alice")]))
    assert refused(u.run(["cat", alice]))
    u.write_token(toklake.token("alice",
                                read=[toklake.user_scope("user.alice")]))
    wait_until(lambda: u.run(["cat", alice]).returncode == 0,
               "the renewed token is picked up", timeout=5)


def test_owners_come_from_the_idmap(toklake, mount_factory, local_users,
                                    tmp_path):
    g = local_users.add_group()
    a = local_users.add()
    idmap = tmp_path / "idmap"
    idmap.write_text("# test map\n"
                     "account alice %s\n"
                     "group /escape/alice %s\n"
                     "scope user.alice /escape/alice\n" % (a.name, g))
    m = shared_mount(toklake, mount_factory, "idmap=%s" % idmap)
    a.write_token(toklake.token("alice", groups=["/escape/alice"],
                                read=[toklake.user_scope("user.alice")]))
    alice = path_of(m, toklake.lake, ALICE_FILE)
    out = a.run(["stat", "-c", "%U %G %a", alice], text=True).stdout.split()
    assert out == [a.name, g, "444"], out


def test_a_new_identity_grows_its_own_replica_batches(two, toklake):
    """Replica lists are asked for a directory's files together, in
    batches that grow with each miss (1, 8, 64 files): per identity, so
    bob's first open where alice has read many files asks for his one
    file, not for the batch alice's opens grew to."""
    m, a, b = two
    d = os.path.dirname(path_of(m, toklake.lake, ("user.alice", "zero.bin")))
    names = os.listdir(d)
    assert len(names) >= 8
    paths = [os.path.join(d, n) for n in names]
    for p in paths[:3]:  # batches of 1 and 8: the next is 64
        assert a.run(["cat", p]).returncode == 0
    toklake.lake.reset_counts()
    for p in paths[3:5]:
        b.run(["cat", p])
    # bob's: 1 file (a miss), then 8 (a miss); alice's 64 would hold both
    assert catalogue_requests(toklake.lake, "/replicas/list") == 2


def test_root_without_a_token_reads_as_the_mount(two):
    """root can read the cache directory anyway: without a token of its
    own it reads as the mount (here: what storage gives without one)."""
    m, _, _ = two
    assert sorted(os.listdir(m.dir))
    plain = path_of(m, m.lake, ("cta", "nginx_only.dat"))
    with open(plain, "rb") as f:
        assert f.read() == local_bytes(m.lake, ("cta", "nginx_only.dat"))
    with pytest.raises(OSError):   # the token store gives it nothing
        open(path_of(m, m.lake, ALICE_FILE), "rb").read()


def test_a_shared_mount_needs_issuers(toklake, mount_factory):
    m = mount_factory(toklake.lake, "allow_other", wait=False)
    m.proc.wait(timeout=30)
    assert m.proc.returncode == 1
    text = m.logtext()
    assert "token_issuer=URL" in text and "identity=mount" in text
