#!/usr/bin/python3
"""A test token issuer that signs REAL RS256 JWTs (WLCG common JWT profile).

Why real signatures: ruciofs must send the IAM access token verbatim as
X-Rucio-Auth-Token (and as "Authorization: Bearer" towards storage); the
Rucio emulator verifies the RS256 signature exactly like Rucio does with the
issuer's JWKS, so a forged or tampered token must fail in the tests.

Only the Python standard library and the `openssl` command line tool are used:
  * the RSA key is generated with `openssl genpkey` (kept in a PEM file so that
    the same key survives between test sessions when a key path is reused),
  * signatures are made with `openssl dgst -sha256 -sign` (RSASSA-PKCS1-v1_5),
  * the public key (n, e) is read back with `openssl rsa -noout -modulus/-text`.

Library use:
    iss = JwtIssuer("/tmp/work/issuer")           # creates/reuses key.pem there
    tok = iss.mint("alice", lifetime=600)
    iss.jwks()          # {"keys": [{"kty": "RSA", "n": ..., "e": ..., "kid": ...}]}
    iss.public_numbers()  # (n, e) as Python ints, for the lake JSON

CLI:
    python3 jwt_issuer.py mint --key-dir DIR --sub alice [--scope S] [--aud A]
                               [--lifetime SEC] [--group /escape/cta ...]
                               [--issuer URL] [--claim k=v ...]
    python3 jwt_issuer.py jwks --key-dir DIR
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


def decode_unverified(token: str):
    """(header, payload) of a compact JWS without checking anything."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS (need 3 dot-separated parts)")
    return json.loads(b64url_decode(parts[0])), json.loads(b64url_decode(parts[1]))


class JwtIssuer:
    """An RS256 issuer backed by a PEM key in `key_dir` (created if missing)."""

    def __init__(self, key_dir, issuer=DEFAULT_ISSUER, kid=None, bits=2048):
        self.key_dir = os.path.abspath(key_dir)
        self.issuer = issuer
        self.key_path = os.path.join(self.key_dir, "key.pem")
        os.makedirs(self.key_dir, exist_ok=True)
        if not os.path.exists(self.key_path):
            tmp = self.key_path + ".tmp"
            subprocess.run(["openssl", "genpkey", "-algorithm", "RSA",
                            "-pkeyopt", "rsa_keygen_bits:%d" % bits, "-out", tmp],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.key_path)  # atomic: concurrent users never see half a key
        self.n, self.e = self._read_public_numbers()
        # kid derived from the key (RFC 7638-like thumbprint), so it is stable
        # for a reused key and different for a new one.
        self.kid = kid or hashlib.sha256(
            json.dumps({"e": int_to_b64url(self.e), "kty": "RSA", "n": int_to_b64url(self.n)},
                       separators=(",", ":"), sort_keys=True).encode()).hexdigest()[:16]

    def _read_public_numbers(self):
        mod = subprocess.run(["openssl", "rsa", "-in", self.key_path, "-noout", "-modulus"],
                             check=True, capture_output=True, text=True).stdout
        n = int(mod.strip().split("=", 1)[1], 16)
        txt = subprocess.run(["openssl", "rsa", "-in", self.key_path, "-noout", "-text"],
                             check=True, capture_output=True, text=True).stdout
        m = re.search(r"publicExponent:\s*(\d+)", txt)
        if not m:
            raise RuntimeError("cannot read RSA public exponent from openssl output")
        return n, int(m.group(1))

    # -- public key views -------------------------------------------------
    def public_numbers(self):
        return self.n, self.e

    def jwk(self):
        return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                "n": int_to_b64url(self.n), "e": int_to_b64url(self.e)}

    def jwks(self):
        return {"keys": [self.jwk()]}

    def lake_entry(self):
        """The issuer record for the lake JSON ("oidc" -> "issuers" -> iss)."""
        return {"kid": self.kid, "n": str(self.n), "e": self.e}

    # -- signing ------------------------------------------------------------
    def sign(self, signing_input: bytes) -> bytes:
        return subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key_path],
                              input=signing_input, check=True, capture_output=True).stdout

    def encode(self, payload: dict, header: dict = None) -> str:
        hdr = {"kid": self.kid, "alg": "RS256", "typ": "JWT"}
        if header:
            hdr.update(header)
        signing_input = (b64url_encode(json.dumps(hdr, separators=(",", ":")).encode()) + "." +
                         b64url_encode(json.dumps(payload, separators=(",", ":")).encode()))
        sig = self.sign(signing_input.encode("ascii"))
        return signing_input + "." + b64url_encode(sig)

    def mint(self, sub, scope="openid profile storage.read:/", groups=("/escape/cta",),
             aud="rucio", lifetime=3600, **extra):
        """A WLCG-profile access token like INDIGO IAM issues.

        `lifetime` may be negative to get an already expired token. Any keyword
        in `extra` overrides/adds a claim (e.g. iss="https://evil/", nbf=...);
        a claim set to None is removed (e.g. scope=None for a group-only token).
        """
        now = int(time.time())
        payload = {
            "wlcg.ver": "1.0",
            "sub": sub,
            "aud": aud,
            "nbf": now,
            "scope": scope,
            "iss": self.issuer,
            "exp": now + int(lifetime),
            "iat": now,
            "jti": str(uuid.uuid4()),
            "wlcg.groups": list(groups) if groups is not None else None,
        }
        payload.update(extra)
        payload = {k: v for k, v in payload.items() if v is not None}
        return self.encode(payload)

    def verify(self, token: str) -> dict:
        """Check our own signature (used by the fixture self-test)."""
        h, p = decode_unverified(token)
        parts = token.split(".")
        if h.get("alg") != "RS256":
            raise ValueError("alg must be RS256")
        if not rs256_verify((parts[0] + "." + parts[1]).encode(), b64url_decode(parts[2]), self.n, self.e):
            raise ValueError("bad signature")
        return p


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
    j = sub.add_parser("jwks", help="print the JWKS")
    j.add_argument("--key-dir", required=True)
    j.add_argument("--issuer", default=DEFAULT_ISSUER)
    d = sub.add_parser("decode", help="print header and payload (unverified)")
    d.add_argument("token")
    a = ap.parse_args(argv)
    if a.cmd == "decode":
        h, p = decode_unverified(a.token)
        print(json.dumps({"header": h, "payload": p}, indent=1))
        return 0
    iss = JwtIssuer(a.key_dir, issuer=a.issuer)
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
    print(iss.mint(a.sub, scope=a.scope, groups=groups, aud=a.aud, lifetime=a.lifetime, **extra))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
