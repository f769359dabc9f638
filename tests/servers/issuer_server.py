#!/usr/bin/python3
"""OIDC discovery and JWKS of the tests' token issuers, over HTTPS on 127.0.0.1.

    python3 issuer_server.py --port 0 --port-file F --tls-cert C --tls-key K
                             [--config CONF.json] [--log REQLOG]

What an INDIGO IAM instance publishes for token validation, and nothing
else (tokens are minted by the test itself with jwt_issuer.JwtIssuer; no
login, no token endpoint). Standard library only, one thread per
connection (httpbase), listening on 127.0.0.1 only.

Issuers: one server can publish several issuers, each at a path P that
starts and ends with '/' ("/" or "/realms/escape/"). The issuer URL is
https://127.0.0.1:PORT + P, with IAM's trailing slash. For each P:
    GET P.well-known/openid-configuration          discovery (OIDC style)
    GET /.well-known/openid-configuration<P sans final '/'>   (RFC 8414 style,
                                                   for P other than "/")
    GET P.well-known/oauth-authorization-server    (and its RFC 8414 form)
    GET Pjwk                                       the JWKS (IAM's jwks_uri)
Repeated slashes in a request path count as one (a client that appends
"/.well-known/..." to the issuer without stripping its slash still
matches). The discovery document carries "issuer" (exactly the issuer URL)
and "jwks_uri"; everything else: 404 JSON.

CONF.json: {"issuers": {P: {"jwks": {"keys": [JWK, ...]}}, ...}}

Admin routes (never counted, never faulted):
    GET    /_admin/health
    POST   /_admin/issuer  {"path": P, "jwks": {...}}   publish (or replace)
    GET    /_admin/requests  [{"time", "method", "path" (decoded),
             "kind": "discovery"|"jwks"|"other", "issuer" (URL or null),
             "status" (0 = no answer), "ua" (User-Agent or null)}], oldest first
    POST   /_admin/reset     clear the request log
    POST   /_admin/fault  {"match": REGEX, "mode": MODE, "count"?: N, ...}
             REGEX is re.search()ed on the decoded path. MODE:
             status {status=503, body?} | malformed (200, invalid JSON) |
             hang (no answer until the client leaves) | drop (close at once) |
             delay {seconds=5} (then the normal answer) | none
    DELETE /_admin/fault     clear all faults;  GET /_admin/faults

SIGTERM/SIGINT stop the server at once (httpbase.serve).
"""

import argparse
import json
import os
import re
import sys
import threading
import time
from urllib.parse import unquote

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import httpbase  # noqa: E402
from httpbase import ClientGone  # noqa: E402

REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
FAULT_MODES = ("status", "malformed", "hang", "drop", "delay", "none")
MAX_LOG = 100000
DISCOVERY_SUFFIXES = (".well-known/openid-configuration", ".well-known/oauth-authorization-server")


def norm_issuer_path(p):
    p = "/" + str(p).strip("/")
    return p if p == "/" else p + "/"


class Issuers:
    """Issuer path -> JWKS, and the routing of request paths to them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.jwks = {}

    def set(self, path, jwks):
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise ValueError("jwks must be {\"keys\": [...]}")
        with self.lock:
            self.jwks[norm_issuer_path(path)] = jwks

    def route(self, path):
        """(kind, issuer path) for a request path; kind None = no route."""
        path = re.sub("/+", "/", path)
        with self.lock:
            paths = list(self.jwks)
        for p in paths:
            if path == p + "jwk":
                return "jwks", p
            for suffix in DISCOVERY_SUFFIXES:
                if path == p + suffix or (p != "/" and path == "/" + suffix + p.rstrip("/")):
                    return "discovery", p
        return None, None

    def get(self, p):
        with self.lock:
            return self.jwks[p]


class Faults(httpbase.FaultTable):
    def add(self, spec):
        if not isinstance(spec, dict) or spec.get("mode") not in FAULT_MODES:
            raise ValueError("mode must be one of %s" % ", ".join(FAULT_MODES))
        f = dict(spec)
        f["match"] = str(f.get("match", ""))
        if f["mode"] == "status":
            f["status"] = int(f.get("status", 503))
        if f["mode"] == "delay":
            f["seconds"] = float(f.get("seconds", 5))
        count = f.get("count")
        f["count"] = None if count is None else int(count)
        return self._append(f, _rx=re.compile(f["match"]))


class Handler(httpbase.Handler):
    server_version = "ruciofs-test-issuer"
    reasons = REASONS

    def _read_body(self):
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ClientGone()
        if n < 0 or n > 1024 * 1024:
            raise ClientGone()
        data = self.rfile.read(n) if n else b""
        if len(data) != n:
            raise ClientGone()
        return data

    def _json(self, status, obj):
        body = (obj if isinstance(obj, (bytes, str)) else json.dumps(obj, indent=1) + "\n")
        body = body.encode() if isinstance(body, str) else body
        self._write_head(status, [("Content-Type", "application/json"), ("Content-Length", "%d" % len(body))])
        if self.command != "HEAD":
            self.wfile.write(body)

    def _base(self):
        return "https://127.0.0.1:%d" % self.server.server_address[1] if self.server.ssl_ctx else \
            "http://127.0.0.1:%d" % self.server.server_address[1]

    def _serve(self):
        raw = self.path.split("?", 1)[0]
        path = unquote(raw, errors="replace")
        srv = self.server
        if path.startswith("/_admin/"):
            self._admin(path)
            return
        kind, ip = srv.issuers.route(path)
        rec = {"time": round(time.time(), 6), "method": self.command, "path": path, "kind": kind or "other",
               "issuer": self._base() + ip if ip else None, "status": 0, "ua": self.headers.get("User-Agent")}
        try:
            self._read_body()
            fault = srv.faults.take(path)
            mode = fault["mode"] if fault else None
            if mode == "drop":
                self._abort()
                return
            if mode == "hang":
                self._wait(None)
                self._abort()
                return
            if mode == "delay" and not self._wait(fault["seconds"]):
                self._abort()
                return
            if mode == "status":
                rec["status"] = fault["status"]
                self._json(fault["status"], fault.get("body", '{"error": "injected"}\n'))
                return
            if kind is None:
                rec["status"] = 404
                self._json(404, {"error": "not found"})
                return
            if self.command not in ("GET", "HEAD"):
                rec["status"] = 405
                self._json(405, {"error": "method not allowed"})
                return
            rec["status"] = 200
            if mode == "malformed":
                self._json(200, b'{"keys": [ {"kty": "RSA", \xff')
                return
            self._json(200, self._document(kind, ip))
        except (OSError, ClientGone):
            self.close_connection = True
            raise ClientGone()
        finally:
            srv.log.add(rec)

    def _document(self, kind, ip):
        if kind == "jwks":
            return self.server.issuers.get(ip)
        iss = self._base() + ip
        root = iss.rstrip("/")
        algs = sorted({k.get("alg") for k in self.server.issuers.get(ip)["keys"] if k.get("alg")})
        return {"issuer": iss, "jwks_uri": root + "/jwk", "authorization_endpoint": root + "/authorize",
                "token_endpoint": root + "/token", "userinfo_endpoint": root + "/userinfo",
                "response_types_supported": ["code", "token"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": algs or ["RS256"],
                "scopes_supported": ["openid", "profile", "email", "offline_access", "wlcg", "wlcg.groups",
                                     "storage.read:/", "storage.create:/", "storage.modify:/"],
                "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "jti", "scope", "wlcg.ver",
                                     "wlcg.groups", "groups"]}

    def _admin(self, path):
        srv, m = self.server, self.command
        try:
            body = self._read_body()
            spec = json.loads(body) if body else {}
            if path == "/_admin/health" and m == "GET":
                return self._json(200, {"ok": True, "pid": os.getpid(), "issuers": sorted(srv.issuers.jwks)})
            if path == "/_admin/issuer" and m == "POST":
                srv.issuers.set(spec["path"], spec["jwks"])
                return self._json(201, {"issuer": self._base() + norm_issuer_path(spec["path"])})
            if path == "/_admin/requests" and m == "GET":
                return self._json(200, srv.log.snapshot())
            if path == "/_admin/reset" and m == "POST":
                srv.log.reset()
                return self._json(200, {"ok": True})
            if path == "/_admin/fault" and m == "POST":
                return self._json(201, {"id": srv.faults.add(spec)})
            if path in ("/_admin/fault", "/_admin/faults") and m == "DELETE":
                srv.faults.clear()
                return self._json(200, {"ok": True})
            if path == "/_admin/faults" and m == "GET":
                return self._json(200, srv.faults.listing())
            return self._json(404, {"error": "no such admin route"})
        except (KeyError, TypeError, ValueError, re.error) as e:
            return self._json(400, {"error": "%s: %s" % (type(e).__name__, e)})


class Server(httpbase.Server):
    request_queue_size = 256

    def __init__(self, port, issuers, log, ssl_ctx=None):
        self.issuers, self.log = issuers, log
        self.faults = Faults()
        super().__init__(("127.0.0.1", port), Handler, ssl_ctx)


def main(argv=None):
    ap = argparse.ArgumentParser(description="OIDC discovery + JWKS of the ruciofs test issuers")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--config", help='{"issuers": {PATH: {"jwks": {...}}}}')
    ap.add_argument("--log", help="append one JSON line per request")
    a = ap.parse_args(argv)
    issuers = Issuers()
    if a.config:
        with open(a.config, encoding="utf-8") as f:
            for p, spec in json.load(f).get("issuers", {}).items():
                issuers.set(p, spec["jwks"])
    ctx = httpbase.tls_context(a.tls_cert, a.tls_key)
    server = Server(a.port, issuers, httpbase.RequestLog(a.log, MAX_LOG), ctx)
    httpbase.serve(server, "issuer server listening on %s://127.0.0.1:%d"
                   % ("https" if ctx else "http", server.server_address[1]), a.port_file)


if __name__ == "__main__":
    main()
