#!/usr/bin/python3
"""A test token issuer that signs REAL JWTs (WLCG common JWT profile):
RS256 with an RSA key and, on request, ES256 with a P-256 key.

Why real signatures: ruciofs must send the IAM access token verbatim as
X-Rucio-Auth-Token (and as "Authorization: Bearer" towards storage); the
Rucio emulator verifies the signature exactly like Rucio does with the
issuer's JWKS, so a forged or tampered token must fail in the tests.

Only the Python standard library and the `openssl` command line tool are used:
  * keys are generated with `openssl genpkey` (kept in PEM files so that the
    same keys survive between test sessions when a key dir is reused),
  * signatures are made with `openssl dgst -sha256 -sign` (RSASSA-PKCS1-v1_5
    for RS256; for ES256 the DER ECDSA signature is turned into the raw
    R||S the JWS format wants),
  * the public numbers are read back with `openssl rsa`/`openssl pkey`.
Verification (rs256_verify, es256_verify, verify_jws) is pure Python, shared
with the emulator.

Library use:
    iss = JwtIssuer("/tmp/work/issuer")           # creates/reuses key.pem there
    tok = iss.mint("alice", lifetime=600)
    iss.jwks()          # {"keys": [{"kty": "RSA", "n": ..., "e": ..., "kid": ...}]}
    iss.public_numbers()  # (n, e) as Python ints, for the lake JSON

    iss = JwtIssuer(dir, issuer="https://127.0.0.1:8443/", algs=("RS256", "ES256"))
    iss.mint("alice", alg="ES256", scope="storage.read:/user/alice")
    iss.mint("alice", lifetime=-60)                 # expired
    iss.mint("alice", nbf=int(time.time()) + 3600)  # not yet valid
    iss.mint("alice", iss="https://evil.test/")     # wrong issuer
    iss.mint("alice", groups=None, iam_groups=["escape", "escape/cta"])
    iss.forge_alg_none("alice")                     # "alg": "none", no signature
    iss.forge_hs256_pubkey("alice")                 # HMAC keyed with the RSA public PEM
    iss.forge_foreign_key("alice", alg="ES256")     # our kid, another key's signature
    iss.forge_unknown_kid("alice")                  # valid signature, unpublished kid
    iss.tamper(tok, scope="storage.read:/")         # payload changed, signature kept

CLI:
    python3 jwt_issuer.py mint --key-dir DIR --sub alice [--scope S] [--aud A]
                               [--lifetime SEC] [--group /escape/cta ...]
                               [--issuer URL] [--alg RS256|ES256] [--claim k=v ...]
    python3 jwt_issuer.py jwks --key-dir DIR [--alg ...]
    python3 jwt_issuer.py decode TOKEN
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
import uuid

# IAM publishes its issuer with a trailing slash; keep it so clients must
# compare `iss` exactly (see storage-and-tokens.md section 4).
DEFAULT_ISSUER = "https://iam.ruciofs.test/"

# DER prefix of the DigestInfo for SHA-256 (RFC 8017, section 9.2, note 1).
SHA256_DIGESTINFO_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if isinstance(text, str):
        text = text.encode("ascii")
    return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))


def int_to_b64url(value: int) -> str:
    return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def rs256_verify(signing_input: bytes, signature: bytes, n: int, e: int) -> bool:
    """Pure-Python RSASSA-PKCS1-v1_5 / SHA-256 verification (what Rucio's
    validate_jwt does through its JOSE library). Shared with the emulator so
    the two can never disagree."""
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= n:
        return False
    em = pow(s, e, n).to_bytes(k, "big")
    t = SHA256_DIGESTINFO_PREFIX + hashlib.sha256(signing_input).digest()
    if k < len(t) + 11:
        return False
    expected = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return hmac.compare_digest(em, expected)


# NIST P-256 (FIPS 186-4, D.1.2.3): the only curve ES256 uses.
P256_P = 2 ** 256 - 2 ** 224 + 2 ** 192 + 2 ** 96 - 1
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
P256_G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
          0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)


def _p256_on_curve(pt):
    x, y = pt
    return 0 <= x < P256_P and 0 <= y < P256_P and (y * y - (x * x * x - 3 * x + P256_B)) % P256_P == 0


def _p256_add(a, b):
    """Affine point addition (None = the point at infinity)."""
    if a is None:
        return b
    if b is None:
        return a
    (x1, y1), (x2, y2) = a, b
    if x1 == x2:
        if (y1 + y2) % P256_P == 0:
            return None
        lam = (3 * x1 * x1 - 3) * pow(2 * y1, -1, P256_P) % P256_P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, P256_P) % P256_P
    x3 = (lam * lam - x1 - x2) % P256_P
    return x3, (lam * (x1 - x3) - y1) % P256_P


def _p256_mul(k, pt):
    acc = None
    while k:
        if k & 1:
            acc = _p256_add(acc, pt)
        pt = _p256_add(pt, pt)
        k >>= 1
    return acc


def es256_verify(signing_input: bytes, signature: bytes, x: int, y: int) -> bool:
    """Pure-Python ECDSA P-256 / SHA-256 verification of a JWS signature
    (raw R||S, 64 bytes: RFC 7518 section 3.4). Slow (a few ms), which is
    fine for tests."""
    if len(signature) != 64 or not _p256_on_curve((x, y)):
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (1 <= r < P256_N and 1 <= s < P256_N):
        return False
    e = int.from_bytes(hashlib.sha256(signing_input).digest(), "big")
    w = pow(s, -1, P256_N)
    pt = _p256_add(_p256_mul(e * w % P256_N, P256_G), _p256_mul(r * w % P256_N, (x, y)))
    return pt is not None and pt[0] % P256_N == r


def _der_ecdsa_to_raw(der: bytes) -> bytes:
    """openssl's DER ECDSA-Sig-Value (SEQUENCE {INTEGER r, INTEGER s}) into
    the 64-byte R||S of JWS."""
    if len(der) < 8 or der[0] != 0x30:
        raise ValueError("not a DER ECDSA signature")
    pos = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        if der[pos] != 0x02:
            raise ValueError("not a DER INTEGER")
        n = der[pos + 1]
        out += int.from_bytes(der[pos + 2:pos + 2 + n], "big").to_bytes(32, "big")
        pos += 2 + n
    return out


def decode_unverified(token: str):
    """(header, payload) of a compact JWS without checking anything."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS (need 3 dot-separated parts)")
    return json.loads(b64url_decode(parts[0])), json.loads(b64url_decode(parts[1]))


def jwk_verify(jwk: dict, alg: str, signing_input: bytes, signature: bytes) -> bool:
    """Verify with one JWK, the algorithm pinned to the key type: RSA keys
    only RS256, P-256 keys only ES256 (never 'none', never HMAC)."""
    try:
        if alg == "RS256" and jwk.get("kty") == "RSA":
            n = int.from_bytes(b64url_decode(jwk["n"]), "big")
            e = int.from_bytes(b64url_decode(jwk["e"]), "big")
            return rs256_verify(signing_input, signature, n, e)
        if alg == "ES256" and jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
            x = int.from_bytes(b64url_decode(jwk["x"]), "big")
            y = int.from_bytes(b64url_decode(jwk["y"]), "big")
            return es256_verify(signing_input, signature, x, y)
    except (KeyError, TypeError, ValueError):
        return False
    return False


def verify_jws(token: str, keys) -> dict:
    """Check a compact JWS against a list of JWKs (a JWKS's "keys"): RS256 or
    ES256 only, `kid` looked up when present (else every key of the pinned
    type is tried). Returns the payload; raises ValueError with the reason.
    Claims (exp, iss, aud, ...) are NOT checked here."""
    try:
        h64, p64, s64 = token.split(".")
        header = json.loads(b64url_decode(h64))
        payload = json.loads(b64url_decode(p64))
        sig = b64url_decode(s64)
    except (ValueError, TypeError, UnicodeDecodeError):
        raise ValueError("malformed JWS")
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise ValueError("header or payload is not a JSON object")
    alg = header.get("alg")
    if alg not in ("RS256", "ES256"):
        raise ValueError("algorithm %r not accepted" % alg)
    kid = header.get("kid")
    cands = [k for k in keys if isinstance(k, dict) and (kid is None or k.get("kid") == kid)]
    if not cands:
        raise ValueError("unknown kid")
    si = (h64 + "." + p64).encode("ascii")
    if not any(jwk_verify(k, alg, si, sig) for k in cands):
        raise ValueError("bad signature")
    return payload


def _run_openssl(*args, **kw):
    return subprocess.run(["openssl"] + list(args), check=True, capture_output=True, **kw).stdout


def _new_key(path, algorithm_args):
    """Generate a PEM private key at `path` unless it exists (atomic: a
    concurrent user never sees half a key)."""
    if os.path.exists(path):
        return
    tmp = "%s.tmp%d" % (path, os.getpid())
    subprocess.run(["openssl", "genpkey"] + algorithm_args + ["-out", tmp],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _thumbprint(members):
    """kid derived from the key (RFC 7638-like thumbprint): stable for a
    reused key, different for a new one."""
    return hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).hexdigest()[:16]


class RsaKey:
    """An RSA private key in a PEM file, signing RS256."""

    alg, kty = "RS256", "RSA"

    def __init__(self, path, bits=2048, kid=None):
        self.path = path
        _new_key(path, ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%d" % bits])
        mod = _run_openssl("rsa", "-in", path, "-noout", "-modulus", text=True)
        self.n = int(mod.strip().split("=", 1)[1], 16)
        txt = _run_openssl("rsa", "-in", path, "-noout", "-text", text=True)
        m = re.search(r"publicExponent:\s*(\d+)", txt)
        if not m:
            raise RuntimeError("cannot read RSA public exponent from openssl output")
        self.e = int(m.group(1))
        self.kid = kid or _thumbprint({"e": int_to_b64url(self.e), "kty": "RSA", "n": int_to_b64url(self.n)})

    def jwk(self):
        return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                "n": int_to_b64url(self.n), "e": int_to_b64url(self.e)}

    def public_pem(self) -> bytes:
        """SubjectPublicKeyInfo PEM ("-----BEGIN PUBLIC KEY-----")."""
        return _run_openssl("pkey", "-in", self.path, "-pubout")

    def sign(self, signing_input: bytes) -> bytes:
        return _run_openssl("dgst", "-sha256", "-sign", self.path, input=signing_input)


class EcKey:
    """A P-256 private key in a PEM file, signing ES256."""

    alg, kty = "ES256", "EC"

    def __init__(self, path, kid=None):
        self.path = path
        _new_key(path, ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
        der = _run_openssl("pkey", "-in", path, "-pubout", "-outform", "DER")
        point = der[-65:]     # SubjectPublicKeyInfo ends with the uncompressed point 04||X||Y
        if point[0] != 4:
            raise RuntimeError("unexpected EC public key encoding")
        self.x, self.y = int.from_bytes(point[1:33], "big"), int.from_bytes(point[33:], "big")
        self.kid = kid or _thumbprint({"crv": "P-256", "kty": "EC", "x": self._b64(self.x), "y": self._b64(self.y)})

    @staticmethod
    def _b64(v):
        return b64url_encode(v.to_bytes(32, "big"))   # fixed length (RFC 7518 section 6.2.1.2)

    def jwk(self):
        return {"kty": "EC", "alg": "ES256", "use": "sig", "crv": "P-256", "kid": self.kid,
                "x": self._b64(self.x), "y": self._b64(self.y)}

    def public_pem(self) -> bytes:
        return _run_openssl("pkey", "-in", self.path, "-pubout")

    def sign(self, signing_input: bytes) -> bytes:
        return _der_ecdsa_to_raw(_run_openssl("dgst", "-sha256", "-sign", self.path, input=signing_input))


class JwtIssuer:
    """An issuer backed by PEM keys in `key_dir` (created if missing):
    key.pem (RSA, RS256; always) and ec_key.pem (P-256, ES256; when "ES256"
    is in `algs`). Both are published in jwks(). Keys that are never
    published (for forgeries) live in rogue-*.pem beside them."""

    def __init__(self, key_dir, issuer=DEFAULT_ISSUER, kid=None, bits=2048, algs=("RS256",)):
        self.key_dir = os.path.abspath(key_dir)
        self.issuer = issuer
        os.makedirs(self.key_dir, exist_ok=True)
        self.rsa = RsaKey(os.path.join(self.key_dir, "key.pem"), bits, kid)
        self.keys = {"RS256": self.rsa}
        if "ES256" in algs:
            self.keys["ES256"] = EcKey(os.path.join(self.key_dir, "ec_key.pem"))
        self._rogues = {}
        # the RSA key's view kept for older callers
        self.key_path, self.n, self.e, self.kid = self.rsa.path, self.rsa.n, self.rsa.e, self.rsa.kid

    # -- public key views -------------------------------------------------
    def public_numbers(self):
        return self.n, self.e

    def jwk(self, alg="RS256"):
        return self.keys[alg].jwk()

    def jwks(self):
        return {"keys": [k.jwk() for k in self.keys.values()]}

    def kids(self):
        """{alg: kid} of the published keys."""
        return {alg: k.kid for alg, k in self.keys.items()}

    def lake_entry(self):
        """The issuer record for the lake JSON ("oidc" -> "issuers" -> iss)."""
        return {"kid": self.kid, "n": str(self.n), "e": self.e}

    def rogue(self, alg="RS256"):
        """A key of the same type that is never published (forgeries)."""
        if alg not in self._rogues:
            path = os.path.join(self.key_dir, "rogue-%s.pem" % alg.lower())
            self._rogues[alg] = RsaKey(path) if alg == "RS256" else EcKey(path)
        return self._rogues[alg]

    # -- signing ------------------------------------------------------------
    def sign(self, signing_input: bytes, alg="RS256") -> bytes:
        return self.keys[alg].sign(signing_input)

    @staticmethod
    def _signing_input(header, payload):
        return (b64url_encode(json.dumps(header, separators=(",", ":")).encode()) + "." +
                b64url_encode(json.dumps(payload, separators=(",", ":")).encode()))

    def encode(self, payload: dict, header: dict = None, alg="RS256", key=None) -> str:
        """Sign `payload` with the key of `alg` (or `key`, e.g. a rogue());
        `header` entries override/add to {"kid", "alg", "typ"} (a None value
        removes one, e.g. kid=None)."""
        key = key or self.keys[alg]
        hdr = {"kid": key.kid, "alg": key.alg, "typ": "JWT"}
        hdr.update(header or {})
        hdr = {k: v for k, v in hdr.items() if v is not None}
        si = self._signing_input(hdr, payload)
        return si + "." + b64url_encode(key.sign(si.encode("ascii")))

    def claims(self, sub, scope="openid profile storage.read:/", groups=("/escape/cta",), aud="rucio",
               lifetime=3600, iam_groups=None, **extra):
        """The payload mint() signs (see there)."""
        now = int(time.time())
        payload = {
            "wlcg.ver": "1.0",
            "sub": sub,
            "aud": list(aud) if isinstance(aud, (list, tuple)) else aud,
            "nbf": now,
            "scope": scope,
            "iss": self.issuer,
            "exp": now + int(lifetime),
            "iat": now,
            "jti": str(uuid.uuid4()),
            "wlcg.groups": list(groups) if groups is not None else None,
            "groups": list(iam_groups) if iam_groups is not None else None,
        }
        payload.update(extra)
        return {k: v for k, v in payload.items() if v is not None}

    def mint(self, sub, scope="openid profile storage.read:/", groups=("/escape/cta",), aud="rucio",
             lifetime=3600, alg="RS256", header=None, iam_groups=None, **extra):
        """A WLCG-profile access token like INDIGO IAM issues, signed with
        the key of `alg` ("RS256" or "ES256").

        `lifetime` may be negative to get an already expired token. `aud` may
        be a list. `groups` goes to "wlcg.groups" (WLCG profile, leading
        slash), `iam_groups` to IAM's own "groups" claim (no leading slash).
        Any keyword in `extra` overrides/adds a claim (e.g.
        iss="https://evil/", nbf=...); a claim set to None is removed (e.g.
        scope=None for a group-only token). `header` overrides header
        entries (e.g. {"kid": "nope"})."""
        return self.encode(self.claims(sub, scope, groups, aud, lifetime, iam_groups, **extra), header, alg)

    # -- forgeries (negative tests) -------------------------------------------
    def forge_alg_none(self, sub, **kw):
        """An unsigned token: "alg": "none", empty signature."""
        hdr = {"alg": "none", "typ": "JWT", "kid": self.kid}
        return self._signing_input(hdr, self.claims(sub, **kw)) + "."

    def forge_hs256_pubkey(self, sub, **kw):
        """Algorithm confusion: HS256 keyed with the RSA public key PEM (what a
        verifier that lets the token pick the algorithm would accept)."""
        hdr = {"alg": "HS256", "typ": "JWT", "kid": self.kid}
        si = self._signing_input(hdr, self.claims(sub, **kw))
        mac = hmac.new(self.rsa.public_pem(), si.encode("ascii"), hashlib.sha256).digest()
        return si + "." + b64url_encode(mac)

    def forge_foreign_key(self, sub, alg="RS256", **kw):
        """Our published kid, but signed by a key that is not ours."""
        return self.encode(self.claims(sub, **kw), {"kid": self.keys[alg].kid}, key=self.rogue(alg))

    def forge_unknown_kid(self, sub, alg="RS256", **kw):
        """A good signature by a key whose kid the JWKS does not list."""
        return self.encode(self.claims(sub, **kw), key=self.rogue(alg))

    @staticmethod
    def tamper(token, **claims):
        """The token with claims changed (None removes one), signature kept."""
        h64, p64, s64 = token.split(".")
        payload = json.loads(b64url_decode(p64))
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return h64 + "." + b64url_encode(json.dumps(payload, separators=(",", ":")).encode()) + "." + s64

    def verify(self, token: str) -> dict:
        """Check our own signature (RS256 or ES256, published keys only)."""
        return verify_jws(token, self.jwks()["keys"])


def _main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mint", help="print a signed token")
    m.add_argument("--key-dir", required=True)
    m.add_argument("--issuer", default=DEFAULT_ISSUER)
    m.add_argument("--sub", required=True)
    m.add_argument("--scope", default="openid profile storage.read:/")
    m.add_argument("--aud", default="rucio")
    m.add_argument("--lifetime", type=int, default=3600)
    m.add_argument("--group", action="append", dest="groups")
    m.add_argument("--claim", action="append", default=[], help="extra claim k=v (v parsed as JSON if possible)")
    m.add_argument("--alg", choices=("RS256", "ES256"), default="RS256")
    j = sub.add_parser("jwks", help="print the JWKS")
    j.add_argument("--key-dir", required=True)
    j.add_argument("--issuer", default=DEFAULT_ISSUER)
    j.add_argument("--alg", choices=("RS256", "ES256"), default="RS256", help="ES256: publish the EC key too")
    d = sub.add_parser("decode", help="print header and payload (unverified)")
    d.add_argument("token")
    a = ap.parse_args(argv)
    if a.cmd == "decode":
        h, p = decode_unverified(a.token)
        print(json.dumps({"header": h, "payload": p}, indent=1))
        return 0
    iss = JwtIssuer(a.key_dir, issuer=a.issuer, algs=("RS256", a.alg))
    if a.cmd == "jwks":
        print(json.dumps(iss.jwks(), indent=1))
        return 0
    extra = {}
    for kv in a.claim:
        k, _, v = kv.partition("=")
        try:
            extra[k] = json.loads(v)
        except ValueError:
            extra[k] = v
    groups = a.groups if a.groups is not None else ["/escape/cta"]
    print(iss.mint(a.sub, scope=a.scope, groups=groups, aud=a.aud, lifetime=a.lifetime, alg=a.alg, **extra))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
