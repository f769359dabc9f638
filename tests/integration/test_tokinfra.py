"""The real parts the per-caller tests stand on (issue 17) do their job:
the issuer serves discovery and JWKS over verified HTTPS, the token store
(xrootd + scitokens) enforces tokens for real, the Rucio emulator accepts
the issuer's tokens and nothing forged, and the local-user fixture leaves
token files as discovery wants them and nothing behind."""
import json
import os
import time

import pytest

import tokinfra
from jwt_issuer import verify_jws
from localusers import LocalUsers, make_traversable

ALICE_FILE = ("user.alice", "notes.txt")    # 6800 bytes
BOB_FILE = ("user.bob", "bob1.dat")
CTA_FILE = ("cta", "calib.dat")             # granted to wlcg.groups /escape/cta


def file_bytes(lake, did, start, end):
    with open(lake.files[did]["local_path"], "rb") as f:
        f.seek(start)
        return f.read(end - start + 1)


def issuer_named(lake, name, path):
    return lake.issuers.get(name) or lake.start_issuer(name=name, path=path)


# ---------------------------------------------------------------- issuer
def test_issuer_serves_discovery_and_jwks_over_https(toklake):
    lake, iss = toklake.lake, toklake.issuer
    assert iss.url == "https://127.0.0.1:%d/" % iss.port      # IAM's trailing slash
    status, _, body = tokinfra.curl(iss.discovery_url, ca_cert=lake.ca_cert)
    assert status == 200
    doc = json.loads(body)
    assert doc["issuer"] == iss.url and doc["jwks_uri"] == iss.jwks_url
    # a client that glues "/.well-known/..." to the issuer with its slash
    status, _, body = tokinfra.curl(iss.url + "/.well-known/openid-configuration", ca_cert=lake.ca_cert)
    assert status == 200 and json.loads(body)["issuer"] == iss.url
    status, _, body = tokinfra.curl(doc["jwks_uri"], ca_cert=lake.ca_cert)
    keys = json.loads(body)["keys"]
    assert status == 200 and sorted(k["kty"] for k in keys) == ["EC", "RSA"]
    assert {k["kid"] for k in keys} == set(iss.kids().values()) and len(set(iss.kids().values())) == 2
    for alg in ("RS256", "ES256"):
        assert verify_jws(iss.mint("alice", alg=alg), keys)["sub"] == "alice"
    # TLS is real: the system store alone does not know the test CA
    assert tokinfra.curl(iss.discovery_url)[0] == 0


def test_issuer_counts_requests_by_user_agent_and_injects_faults(toklake):
    lake, iss = toklake.lake, toklake.issuer
    iss.reset()
    ua = ["User-Agent: probe/1.0"]
    for _ in range(2):
        assert tokinfra.curl(iss.discovery_url, ca_cert=lake.ca_cert, headers=ua)[0] == 200
    assert tokinfra.curl(iss.jwks_url, ca_cert=lake.ca_cert, headers=ua)[0] == 200
    assert tokinfra.curl(iss.url + "nothing", ca_cert=lake.ca_cert)[0] == 404
    assert iss.counts(ua="probe/") == {"discovery": 2, "jwks": 1, "other": 0}
    assert iss.counts() == {"discovery": 2, "jwks": 1, "other": 1}
    assert [r["kind"] for r in iss.requests(ua="curl/")] == ["other"]
    iss.set_fault(r"/jwk$", "status", status=503, count=1)
    try:
        assert tokinfra.curl(iss.jwks_url, ca_cert=lake.ca_cert)[0] == 503
        assert tokinfra.curl(iss.jwks_url, ca_cert=lake.ca_cert)[0] == 200     # count=1 used up
        iss.set_fault("", "drop")
        assert tokinfra.curl(iss.discovery_url, ca_cert=lake.ca_cert)[0] == 0
    finally:
        iss.clear_faults()


def test_issuer_with_a_path_answers_both_discovery_forms(toklake):
    lake = toklake.lake
    iss = issuer_named(lake, "issuer-realm", "/realms/escape/")
    assert iss.url.endswith(":%d/realms/escape/" % iss.port)
    rfc8414 = "https://127.0.0.1:%d/.well-known/openid-configuration/realms/escape" % iss.port
    for url in (iss.discovery_url, rfc8414):
        status, _, body = tokinfra.curl(url, ca_cert=lake.ca_cert)
        assert status == 200 and json.loads(body)["issuer"] == iss.url, url
    assert json.loads(tokinfra.curl(iss.jwks_url, ca_cert=lake.ca_cert)[2]) == iss.jwks()


# ---------------------------------------------------------------- storage
@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_store_serves_a_range_to_a_good_token(toklake, alg):
    lake, store = toklake.lake, toklake.store
    sub = "alice-" + alg.lower()
    tok = toklake.token(sub, read=[toklake.user_scope("user.alice")], alg=alg)
    status, hdrs, body = store.get(*ALICE_FILE, token=tok, range_="100-199")
    assert status == 206, store.log_text()[-3000:]
    assert hdrs["content-range"] == "bytes 100-199/6800"
    assert body == file_bytes(lake, ALICE_FILE, 100, 199)
    opened = store.opens(path_contains="notes.txt", subject=sub)
    assert opened and all(r["granted"] for r in opened)
    assert opened[-1]["issuer"] == toklake.issuer.url


def _bad_tokens(t, sub="alice"):
    """Tokens for @sub that storage and catalogue must refuse, each for one
    reason (the claims are otherwise those of a good token)."""
    iss = t.issuer
    good = dict(read=[t.user_scope("user.alice")])
    wide = dict(scope="openid profile storage.read:/", aud=tokinfra.ANY_AUD, groups=None)
    now = int(time.time())
    return {
        "none": None,
        "wrong scope": t.token(sub, read=[t.user_scope("user.bob")]),
        "expired": t.token(sub, lifetime=-120, **good),
        "nbf in the future": t.token(sub, nbf=now + 3600, **good),
        "wrong iss": t.token(sub, iss="https://127.0.0.1:1/", **good),
        "wrong aud": t.token(sub, aud="https://elsewhere.test", **good),
        "foreign RSA key, our kid": iss.forge_foreign_key(sub, **wide),
        "foreign EC key, our kid": iss.forge_foreign_key(sub, alg="ES256", **wide),
        "tampered scope": iss.tamper(t.token(sub, read=[t.user_scope("user.bob")]), scope=wide["scope"]),
        "alg none": iss.forge_alg_none(sub, **wide),
        "HS256 keyed with the public key": iss.forge_hs256_pubkey(sub, **wide),
        "unknown kid": iss.forge_unknown_kid(sub, **wide),
        "garbage": "not.a.token",
    }


def test_store_refuses_every_bad_token(toklake):
    store = toklake.store
    for label, tok in _bad_tokens(toklake).items():
        mark = len(store.opens())
        status, _, body = store.get(*ALICE_FILE, token=tok, range_="0-99")
        assert status in (401, 403), (label, status, body[:200])
        assert body != file_bytes(toklake.lake, ALICE_FILE, 0, 99), label
        seen = store.opens()[mark:]
        assert seen and not any(r["granted"] for r in seen), (label, seen)


def test_store_grants_by_wlcg_groups_through_its_authdb(toklake):
    lake, store = toklake.lake, toklake.store
    cta = toklake.token("carol", groups=["/escape/cta"])         # no storage.* scope
    status, _, body = store.get(*CTA_FILE, token=cta, range_="0-15")
    assert status == 206 and body == file_bytes(lake, CTA_FILE, 0, 15)
    assert store.get(*ALICE_FILE, token=cta, range_="0-15")[0] == 403
    assert store.opens(path_contains="calib.dat", subject="carol")[-1]["groups"] == ["/escape/cta"]
    # what xrootd 5.5.3 cannot do (README.md, "Token-enforcing storage")
    no_scope_claim = toklake.token("carol-noscope", groups=["/escape/cta"], scope=None)
    assert store.get(*CTA_FILE, token=no_scope_claim, range_="0-15")[0] == 403
    assert "'scope' claim is mandatory" in store.log_text()
    iam_groups = toklake.token("carol-iam", iam_groups=["escape/cta", "/escape/cta"])
    assert store.get(*CTA_FILE, token=iam_groups, range_="0-15")[0] == 403


def test_store_fetches_keys_over_verified_tls(toklake):
    """Without the test CA in its bundle the same store software cannot
    fetch the issuer's keys: the HTTPS check scitokens-cpp makes is real."""
    lake, iss = toklake.lake, toklake.issuer
    store = lake.start_token_store(iss, rse="XRD_TOKEN_NOCA", trust="none")
    try:
        tok = toklake.token("alice-noca", read=[toklake.user_scope("user.alice")])
        iss.reset()
        assert store.get(*ALICE_FILE, token=tok, range_="0-9")[0] == 403
        assert "Failed to deserialize SciToken" in store.log_text()
        assert iss.counts() == {"discovery": 0, "jwks": 0, "other": 0}   # no handshake completed
        # the trusting store fetched the keys once, without a User-Agent
        # (scitokens-cpp's libcurl sends none), and keeps them in its cache
        assert os.path.exists(os.path.join(toklake.store.workdir, "cache", "scitokens", "scitokens_cpp.sqllite"))
    finally:
        store.stop()
        lake.token_stores.pop("XRD_TOKEN_NOCA", None)


# ---------------------------------------------------------------- catalogue
def _replicas(lake, token):
    return tokinfra.curl(lake.rucio_host + "/replicas/list", ca_cert=lake.ca_cert,
                         headers=["X-Rucio-Auth-Token: " + token, "Content-Type: application/json"],
                         data={"dids": [{"scope": ALICE_FILE[0], "name": ALICE_FILE[1]}], "schemes": ["https"]})


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_emulator_accepts_the_issuers_tokens(toklake, alg):
    lake, store = toklake.lake, toklake.store
    status, _, body = _replicas(lake, toklake.token("alice", alg=alg))
    assert status == 200, body
    pfns = [p for line in body.decode().splitlines() if line for p in json.loads(line)["pfns"]]
    assert pfns == ["https://127.0.0.1:%d%s" % (store.http_port, store.storage_path(*ALICE_FILE))]
    status, _, body = tokinfra.curl(lake.rucio_host + "/auth/validate", ca_cert=lake.ca_cert,
                                    headers=["X-Rucio-Auth-Token: " + toklake.token("bob", alg=alg)])
    assert status == 200 and b"'account': 'bob'" in body


def test_emulator_refuses_forged_and_foreign_tokens(toklake):
    lake = toklake.lake
    bad = {k: v for k, v in _bad_tokens(toklake).items() if v is not None and k != "wrong scope"}
    bad["unknown subject"] = toklake.token("mallory")
    bad["tampered subject"] = toklake.issuer.tamper(toklake.token("mallory"), sub="alice")
    for label, tok in bad.items():
        assert _replicas(lake, tok)[0] == 401, label


def test_issuer_key_rotation_reaches_the_emulator(toklake):
    lake = toklake.lake
    iss = issuer_named(lake, "issuer-rot", "/")
    lake.trust_issuer(iss)
    lake.register_oidc_user("dave", iss)
    old = iss.keys["RS256"]
    assert _replicas(lake, iss.mint("dave", aud=tokinfra.ANY_AUD))[0] == 200
    new_kid = iss.rotate("RS256", keep_old=False)
    served = {k["kid"] for k in json.loads(tokinfra.curl(iss.jwks_url, ca_cert=lake.ca_cert)[2])["keys"]}
    assert new_kid in served and old.kid not in served
    assert _replicas(lake, iss.mint("dave", aud=tokinfra.ANY_AUD))[0] == 200
    # a token still signed by the withdrawn key (never seen before) is refused
    assert _replicas(lake, iss.encode(iss.claims("dave", aud=tokinfra.ANY_AUD), key=old))[0] == 401


# ---------------------------------------------------------------- local users
def test_local_users_get_token_files_as_discovery_wants(toklake, local_users):
    lake, store = toklake.lake, toklake.store
    a, b = local_users.add(), local_users.add()
    assert a.uid != b.uid and a.run(["id", "-u"], text=True).stdout.strip() == str(a.uid)
    tok = toklake.token("alice", read=[toklake.user_scope("user.alice")])
    path = a.write_token(tok)
    assert path == "/run/user/%d/bt_u%d" % (a.uid, a.uid)
    st, dst = os.lstat(path), os.lstat(os.path.dirname(path))
    assert (st.st_uid, st.st_gid, st.st_mode) == (a.uid, a.gid, 0o100600)
    assert (dst.st_uid, dst.st_mode) == (a.uid, 0o040700)
    tmp = b.write_token(tok, where="tmp")
    st = os.lstat(tmp)
    assert tmp == "/tmp/bt_u%d" % b.uid and (st.st_uid, st.st_mode) == (b.uid, 0o100600)
    loose = b.write_token(tok, where="tmp", mode=0o644, owner=a.uid)
    st = os.lstat(loose)
    assert (st.st_uid, st.st_mode) == (a.uid, 0o100644)
    assert a.run(["cat", path], text=True).stdout.strip() == tok
    assert b.run(["cat", path]).returncode != 0                 # 0700 dir, 0600 file
    # the user reads the token store with the token from their own file
    make_traversable(os.path.dirname(lake.ca_cert))
    r = a.run(["sh", "-c", 'exec curl -sS --cacert "$1" -r 0-9 -H "Authorization: Bearer $(cat '
               '"$XDG_RUNTIME_DIR/bt_u$(id -u)")" "$2"', "sh", lake.ca_cert, store.url(*ALICE_FILE)])
    assert r.stdout == file_bytes(lake, ALICE_FILE, 0, 9), r.stderr


def test_local_users_are_removed_even_when_the_test_fails():
    names, paths = [], []
    with pytest.raises(RuntimeError, match="the test failed"):
        with LocalUsers() as users:
            g = users.add_group()
            u = users.add(groups=[g])
            names += [u.name, g]
            paths += [u.write_token("x"), u.write_token("y", where="tmp"), u.runtime_dir]
            sleeper = u.popen(["sleep", "300"])
            raise RuntimeError("the test failed")
    assert not any(LocalUsers.exists(n) for n in names)
    assert not any(os.path.lexists(p) for p in paths)
    assert sleeper.poll() is not None


def test_store_can_trust_a_seeded_key_cache_instead(toklake):
    """The fallback for hosts without mount namespaces: scitokens-cpp's own
    key cache holds the issuer's JWKS, so it validates without a fetch."""
    lake, iss = toklake.lake, toklake.issuer
    store = lake.start_token_store(iss, rse="XRD_TOKEN_SEEDED", trust="keycache")
    try:
        iss.reset()
        tok = toklake.token("alice-seeded", read=[toklake.user_scope("user.alice")], alg="ES256")
        status, _, body = store.get(*ALICE_FILE, token=tok, range_="0-9")
        assert status == 206 and body == file_bytes(lake, ALICE_FILE, 0, 9)
        assert store.get(*ALICE_FILE, token=iss.forge_unknown_kid("alice-seeded", scope="storage.read:/",
                                                                  aud=tokinfra.ANY_AUD), range_="0-9")[0] == 403
        assert iss.counts(ua="") == {"discovery": 0, "jwks": 0, "other": 0}
    finally:
        store.stop()
        lake.token_stores.pop("XRD_TOKEN_SEEDED", None)


def test_store_sees_a_rotated_key_only_once_its_key_cache_is_emptied(toklake):
    """scitokens-cpp 0.7.3 does not refetch the JWKS for an unknown kid
    before its next_update (600 s): after a rotation, restart the store with
    forget_keys=True."""
    lake = toklake.lake
    iss = issuer_named(lake, "issuer-rot-store", "/")
    store = lake.start_token_store(iss, rse="XRD_TOKEN_ROT")
    try:
        read = dict(scope="openid profile storage.read:/user/alice", aud=tokinfra.ANY_AUD, groups=None)
        assert store.get(*ALICE_FILE, token=iss.mint("alice", alg="ES256", **read), range_="0-9")[0] == 206
        iss.rotate("ES256")
        fresh = iss.mint("alice", alg="ES256", **read)
        assert store.get(*ALICE_FILE, token=fresh, range_="0-9")[0] == 403
        assert "Key ID is not published by the issuer" in store.log_text()
        store.restart(forget_keys=True)
        assert store.get(*ALICE_FILE, token=fresh, range_="0-9")[0] == 206
    finally:
        store.stop()
        lake.token_stores.pop("XRD_TOKEN_ROT", None)
