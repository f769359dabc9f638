#!/usr/bin/python3
"""Rucio REST server emulator: the catalogue oracle of the ruciofs tests.

    python3 rucio_emulator.py --lake LAKE.json --port 0 --port-file F
                              [--tls-cert C --tls-key K] [--flavour 1.31|41]
                              [--log REQLOG] [--host 127.0.0.1]
                              [--slow SECONDS [--slow-match REGEX]]

Slow catalogue (--slow, POST /_admin/slow, Lake.slow_catalogue): every
request whose decoded path matches REGEX (no REGEX: every request, /ping and
/auth included) is answered only after SECONDS. Each connection has its own
thread and the wait holds no lock, so 20 parallel delayed requests are all
answered after about one delay (test_fixtures.py checks it). A request whose
client hangs up during the wait is dropped. Faults apply after the wait; the
wait is counted like the request (not for /_admin/ routes).

Standard library only (http.server.ThreadingHTTPServer). It follows
/work/shared/docs/rucio-rest.md (the REST contract gathered from the Rucio
sources and from a live 1.31.7 server), in both the "1.31" and the "41"
variants where they differ. When the contract and the live server disagreed,
the live behaviour (section 9) wins, because that is what a client meets.

Served routes (everything else: Flask-like 404 HTML page; wrong method: 405):
    GET  /ping                         no token
    GET  /auth/userpass                no token (200 / 206 multi-account / 401)
    GET  /auth/validate                python-repr body
    GET  /auth/x509[...]               401 "Cannot get DN" (no TLS terminator here)
    GET  /scopes/   (/scopes -> 308)   GET /scopes/{account}/scopes
    GET  /accounts/whoami (303)        GET /accounts/{account}
    GET  /dids/{scope}/ (/dids/{scope} -> 308)   ?name= &recursive=
    GET  /dids/{scope}/dids/search     type, long, limit, filters, legacy args
    GET  /dids/{scope}/{name}          ?dynamic_depth=FILE|DATASET, ?dynamic
    GET  /dids/{scope}/{name}/meta     GET .../dids  .../files  .../parents
    POST /dids/bulkmeta                POST /dids/bulkfiles
    POST /replicas/list                json-stream or metalink
    GET  /rses/ (/rses -> 308)         GET /rses/{rse}  .../protocols  .../attr/
    GET  /rses/{rse}/lfns2pfns
  Real Rucio routes that a read-only emulator does not implement answer
  501 NotImplemented (Rucio error format) so a test notices at once.

Admin routes (no token, not counted, not faultable):
    POST   /_admin/fault  {"match": REGEX, "mode": MODE, "count": N?, ...}
             MODE: malformed | oversized (size=bytes, default 80 MiB) | hang |
                   status500 | status503 | status (status=, body=) |
                   truncated | drop | delay (seconds=, then normal answer) | none
             REGEX is re.search()ed against the DECODED request path.
    DELETE /_admin/fault               clear all faults
    GET    /_admin/faults              list active faults
    GET    /_admin/requests            {"total", "by_route", "by_path"}
    POST   /_admin/reset_counts
    POST   /_admin/attach   {"scope","name","dids":[{"scope","name"}]}
    POST   /_admin/detach   {"scope","name","dids":[...]}
    POST   /_admin/add_did  {"scope","name","type":"DATASET"|"CONTAINER","is_open":true}
    POST   /_admin/config   {"token_lifetime": s, "expected_audience": a, "expected_scope": s}
    POST   /_admin/expire_tokens       every issued/cached token expires now
    POST   /_admin/oidc_issuer {"issuer": ISS, "jwks": {"keys": [JWK, ...]}}
                             trust ISS (exactly as in `iss`) with these keys
                             (RS256 RSA and ES256 P-256; replaces its keys)
    POST   /_admin/account  {"account": NAME, "type"?: "USER", "email"?, "scope"?}
                             (a scope owned by the account, if given)
    POST   /_admin/identity {"type": "OIDC", "identity": "SUB=<sub>, ISS=<iss>",
                             "accounts": [NAME, ...], "default"?: NAME}
                             (replaces the same type+identity; accounts must exist)
    POST   /_admin/rse      {"rse": NAME, "availability_read": bool, ...,
                             "ports": {"https": N},  (PFNs then use port N)
                             "priorities": {"https": N}}  (read priority, both domains)
    POST   /_admin/add_rse  {"rse": NAME, "protocols": [{"scheme","hostname","port",
                             "prefix"?, "priority"?}], "attributes": {...}?}
                             (attribute simulate_multirange: PFNs get Rucio's
                             "&#multirange=false&nconnections=N" suffix)
    POST   /_admin/add_rses {"rses": [{"rse","protocols","attributes"?}, ...],
                             "exist_ok"?: bool}  -> {"created": [names]}
    POST   /_admin/replica  {"scope","name","rse","state"?: "AVAILABLE", "remove"?: bool}
    POST   /_admin/replicas {"replicas": [{"scope","name","rse","state"?,"remove"?}, ...]}
    POST   /_admin/slow     {"seconds": S, "match": REGEX?}  (S = 0: off)   GET: current
    POST   /_admin/add_file {lake-JSON file entry ("meta" overrides any column,
                             e.g. a malformed "bytes"), "parent"?: [scope, name]}
    GET    /_admin/health

Lake JSON schema (written by lakegen.py, ports filled in by lake.py):
{
  "format": "ruciofs-lake/1",
  "vo": "def",
  "token_lifetime": 3600,                       # seconds, userpass tokens
  "server_version": {"1.31": "1.31.7", "41": "41.0.0"},   # /ping
  "oidc": {"expected_audience": "rucio", "expected_scope": "openid profile",
           "issuers": {"<iss exactly as in the token>":
                       {"kid": "...", "n": "<decimal str or int>", "e": 65537}
                       or a JWKS {"keys": [JWK, ...]} (RSA and P-256 EC)}},
  "accounts": {"alice": {"type": "USER", "email": "..."}, ...},
  "identities": [
     {"type": "USERPASS", "identity": "alice", "password": "alice-secret",
      "accounts": ["alice"], "default": "alice"},         # no "default" and
     {"type": "OIDC", "identity": "SUB=alice, ISS=<iss>",  # >1 account => 206
      "accounts": ["alice"], "default": "alice"}],
  "scopes": {"user.alice": {"account": "alice"}, ...},
  "rses": {"NGINX_DISK": {
      "id": "<hex32>", "rse_type": "DISK", "deterministic": true,
      "volatile": false, "staging_area": false, "availability_read": true,
      "availability_write": true, "availability_delete": true,
      "lfn2pfn_algorithm": "hash", "verify_checksum": true, "sign_url": null,
      "credentials": null, "qos_class": null, "city": ..., (other rse columns)
      "attributes": {"NGINX_DISK": true, "site": "SITE_NGINX", ...},
      "protocols": [{"scheme": "https", "hostname": "127.0.0.1", "port": 443,
                     "prefix": "/rucio", "impl": "rucio.rse.protocols.webdav.Default",
                     "domains": {"lan": {"read": 1, "write": 1, "delete": 1},
                                 "wan": {"read": 1, ...}},
                     "extended_attributes": null}]}},
  "storage": {...}                              # used by lake.py only
  "dids": [                                     # order irrelevant
     {"scope", "name", "type": "FILE", "account", "bytes", "adler32", "md5",
      "guid" (32 hex), "created_at": "2025-03-01T08:07:00Z", "updated_at",
      "replicas": {"NGINX_DISK": "AVAILABLE", ...},    # rse -> replica state
      "flavours": ["41"]?,                      # absent = all flavours
      "meta": {column: value}?},                # overrides of dids columns
     {"scope", "name", "type": "DATASET"|"CONTAINER", "account",
      "is_open": bool, "created_at", "updated_at",
      "children": [["scope", "name"], ...], "flavours"?, "meta"?}]
}
A DID whose "flavours" does not list the running flavour is invisible (names
with '/' only exist on 41: 1.31 rejects them at registration). Closed
datasets store bytes/length = sum/count of their files; open datasets and
containers store null, like Rucio.

Faithfulness notes (deliberate):
  * The path is percent-decoded (NOT '+'-decoded, like WSGI) before routing;
    scope/name are split with '/([^/]+)/(.*)' on 41 and greedy '/(.*)/(.*)'
    on 1.31. Query strings are form-decoded ('+' is a space), like Flask.
  * JSON bodies use json.dumps defaults (", ", ": ", ensure_ascii) like
    Rucio's render_json; /ping, /scopes/ and /accounts are compact + "\\n"
    like Flask's jsonify.
  * Reason phrases are upper case like Werkzeug ("404 NOT FOUND").
"""

import argparse
import ast
import datetime
import hashlib
import itertools
import json
import os
import random
import re
import sys
import threading
import time
import traceback
import uuid
from urllib.parse import parse_qs, quote, unquote
from xml.sax.saxutils import escape as xml_escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import httpbase  # noqa: E402
from httpbase import STOP, ClientGone  # noqa: E402
from jwt_issuer import decode_unverified, int_to_b64url, verify_jws  # noqa: E402

STREAM = "application/x-json-stream"
JSON = "application/json"
OCTET = "application/octet-stream"
METALINK = "application/metalink4+xml"
HTML = "text/html; charset=utf-8"

MAX_BODY = 32 * 1024 * 1024
ALL_FLAVOURS = ("1.31", "41")
SCOPE_NAME_REGEXP = {"41": r"/([^/]+)/(.*)", "1.31": r"/(.*)/(.*)"}
SORT_ALGORITHMS = {"41": ("geoip", "custom_table", "random"),
                   "1.31": ("geoip", "custom_table", "closeness", "dynamic", "ranking", "random")}
SUPPORTED_PROTOCOLS = ["root", "davs", "http", "https", "file", "storm", "srm+https", "scp",
                       "rsync", "rclone", "magnet"]

# Werkzeug's status lines (upper-cased phrases).
REASONS = {200: "OK", 201: "CREATED", 206: "PARTIAL CONTENT", 303: "SEE OTHER",
           308: "PERMANENT REDIRECT", 400: "BAD REQUEST", 401: "UNAUTHORIZED", 404: "NOT FOUND",
           405: "METHOD NOT ALLOWED", 406: "NOT ACCEPTABLE", 409: "CONFLICT",
           411: "LENGTH REQUIRED", 413: "REQUEST ENTITY TOO LARGE", 500: "INTERNAL SERVER ERROR",
           501: "NOT IMPLEMENTED", 502: "BAD GATEWAY", 503: "SERVICE UNAVAILABLE",
           504: "GATEWAY TIMEOUT"}

# Columns of Rucio's `dids` table, in model order: /meta returns all of them
# (42 keys on 1.31, as observed live).
DID_COLUMNS = ["scope", "name", "account", "did_type", "is_open", "monotonic", "hidden", "obsolete",
               "complete", "is_new", "availability", "suppressed", "bytes", "length", "md5",
               "adler32", "expired_at", "purge_replicas", "deleted_at", "events", "guid",
               "project", "datatype", "run_number", "stream_name", "prod_step", "version",
               "campaign", "task_id", "panda_id", "lumiblocknr", "provenance", "phys_group",
               "transient", "accessed_at", "closed_at", "eol_at", "is_archive", "constituent",
               "access_cnt", "created_at", "updated_at"]


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------
def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def rfc1123(dt):
    """Rucio's APIEncoder date format (always 'UTC', not 'GMT')."""
    return None if dt is None else dt.strftime("%a, %d %b %Y %H:%M:%S UTC")


def parse_time(text):
    """ISO 8601 ('2025-03-01T08:00:00Z') or RFC-1123 ('Sat, 01 Mar 2025 08:00:00 UTC')
    into a naive UTC datetime."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return datetime.datetime.utcfromtimestamp(text)
    t = text.strip()
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%fZ",
                "%Y-%m-%dT%H:%M:%S.%f", "%a, %d %b %Y %H:%M:%S UTC", "%a, %d %b %Y %H:%M:%S GMT",
                "%Y-%m-%d"):
        try:
            return datetime.datetime.strptime(t, fmt)
        except ValueError:
            pass
    raise ValueError("cannot parse date %r" % text)


def render_json(obj):
    """Rucio's render_json: json.dumps with default separators and ensure_ascii."""
    return json.dumps(obj)


def jsonify(obj):
    """Flask's jsonify (production): compact, sorted keys, trailing newline."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True) + "\n"


def lfn2path(scope, name):
    h = hashlib.md5(("%s:%s" % (scope, name)).encode("utf-8")).hexdigest()
    if scope.startswith("user") or scope.startswith("group"):
        scope = scope.replace(".", "/")
    return "%s/%s/%s/%s" % (scope, h[0:2], h[2:4], name)


def protocol_pfn(proto, scope, name):
    """RSEProtocol.lfns2pfns: scheme://host:port + prefix(/.../) + hash path.
    The name is NOT URL-encoded (Rucio does not either)."""
    prefix = proto.get("prefix") or ""
    if not prefix.startswith("/"):
        prefix = "/" + prefix
    if not prefix.endswith("/"):
        prefix += "/"
    path = lfn2path(scope, name)
    if path.startswith("/"):
        path = path[1:]
    return "%s://%s:%s%s%s" % (proto["scheme"], proto["hostname"], proto["port"], prefix, path)


def multirange_suffix(cat, rse, pfn):
    """Rucio appends this to every PFN of an RSE whose attribute
    simulate_multirange is set (core/replica.py, _build_list_replicas_pfn):
    clients must strip the fragment before a request."""
    n = cat.rses[rse].get("attributes", {}).get("simulate_multirange")
    if n is None:
        return pfn
    try:
        n = int(n)
    except ValueError:
        n = 1
    return pfn + "&#multirange=false&nconnections=%d" % (n if n > 0 else 1)


class RucioError(Exception):
    """An error that becomes generate_http_error_flask(status, cls, msg)."""

    def __init__(self, status, cls, msg):
        super().__init__(msg)
        self.status, self.cls, self.msg = status, cls, msg


# --------------------------------------------------------------------------
# responses
# --------------------------------------------------------------------------
class Response:
    def __init__(self, status, body=b"", content_type=None, headers=None):
        self.status = status
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.headers = list(headers or [])
        if content_type:
            self.headers.insert(0, ("Content-Type", content_type))


class StreamResponse:
    """x-json-stream answer. `first` was already produced (try_stream's peek),
    so errors in the generator's set-up became proper error responses."""

    def __init__(self, first, rest, content_type=STREAM, headers=None):
        self.status = 200
        self.first, self.rest = first, rest
        self.headers = [("Content-Type", content_type)] + list(headers or [])


def error_response(status, cls, msg, headers=None):
    """generate_http_error_flask: JSON body, octet-stream content type, and
    ExceptionClass/ExceptionMessage headers (newlines -> spaces, message cut
    to 125 characters + '...')."""
    msg = str(msg)
    one_line = msg.replace("\n", " ").replace("\r", " ")
    if len(one_line) > 125:
        one_line = one_line[:125] + "..."
    hdrs = list(headers or []) + [("ExceptionClass", cls.replace("\n", " ")), ("ExceptionMessage", one_line)]
    body = render_json({"ExceptionClass": cls, "ExceptionMessage": msg})
    return Response(status, body, OCTET, hdrs)


def try_stream(iterable, content_type=STREAM, headers=None):
    it = iter(iterable)
    try:
        first = next(it)
    except StopIteration:
        return Response(200, b"", content_type, headers)
    return StreamResponse(first, it, content_type, headers)


def html_page(status, title, text):
    return ('<!doctype html>\n<html lang=en>\n<title>%d %s</title>\n<h1>%s</h1>\n<p>%s</p>\n'
            % (status, title, title, text))


def not_found():
    return Response(404, html_page(404, "Not Found",
                                   "The requested URL was not found on the server. If you entered the URL "
                                   "manually please check your spelling and try again."), HTML)


def method_not_allowed(allowed):
    return Response(405, html_page(405, "Method Not Allowed", "The method is not allowed for the requested URL."),
                    HTML, [("Allow", ", ".join(sorted(allowed)))])


def redirect(status, location):
    text = ('<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n'
            '<p>You should be redirected automatically to the target URL: <a href="%s">%s</a>. '
            'If not, click the link.\n' % (xml_escape(location), xml_escape(location)))
    return Response(status, text, HTML, [("Location", location)])


# --------------------------------------------------------------------------
# the catalogue
# --------------------------------------------------------------------------
class Catalogue:
    """In-memory DIDs, replicas, RSEs, accounts and identities of a lake."""

    def __init__(self, lake, flavour):
        self.flavour = flavour
        self.lock = threading.RLock()
        self.vo = lake.get("vo", "def")
        self.token_lifetime = int(lake.get("token_lifetime", 3600))
        self.version = lake.get("server_version", {}).get(flavour, {"41": "41.0.0", "1.31": "1.31.7"}[flavour])
        oidc = lake.get("oidc", {})
        self.expected_audience = oidc.get("expected_audience", "rucio")
        self.expected_scope = oidc.get("expected_scope", "openid profile")
        self.issuers = {}     # iss -> list of JWKs (RSA and P-256 EC)
        for iss, key in oidc.get("issuers", {}).items():
            self.set_issuer(iss, key)
        self.accounts = lake.get("accounts", {})
        self.identities = lake.get("identities", [])
        self.scopes = lake.get("scopes", {})
        self.rses = lake.get("rses", {})
        self.load_time = utcnow()
        self.dids = {}
        self.children = {}
        self.parents = {}
        raw_children = {}
        for d in lake.get("dids", []):
            if flavour not in d.get("flavours", ALL_FLAVOURS):
                continue
            key = (d["scope"], d["name"])
            row = self._row(d)
            self.dids[key] = row
            if row["did_type"] != "FILE":
                raw_children[key] = [tuple(c) for c in d.get("children", [])]
        for key, kids in raw_children.items():
            self.children[key] = []
            for c in kids:
                if c in self.dids:          # children hidden by the flavour vanish
                    self._attach_one(key, c)
        for key in self.dids:
            self._restore_stored_sizes(key)

    def set_issuer(self, iss, spec):
        """Trust `iss` with the keys of `spec`: a JWKS ({"keys": [JWK, ...]},
        RS256 and ES256 keys) or the legacy RSA record {"kid", "n", "e"}."""
        if "keys" in spec:
            keys = [dict(k) for k in spec["keys"] if isinstance(k, dict)]
        else:
            keys = [{"kty": "RSA", "kid": spec.get("kid"), "n": int_to_b64url(int(spec["n"])),
                     "e": int_to_b64url(int(spec.get("e", 65537)))}]
            if keys[0]["kid"] is None:
                del keys[0]["kid"]
        with self.lock:
            self.issuers[iss] = keys

    def set_account(self, account, spec):
        with self.lock:
            self.accounts[account] = dict(spec)

    def set_identity(self, ident):
        """Add an identity (lake-JSON form), replacing one of the same type
        and identity string."""
        if not isinstance(ident.get("identity"), str) or not ident.get("type"):
            raise ValueError("an identity needs 'type' and 'identity'")
        for a in ident.get("accounts", []):
            if a not in self.accounts:
                raise RucioError(404, "AccountNotFound", "Account '%s' does not exist" % a)
        with self.lock:
            self.identities = [i for i in self.identities
                               if (i.get("type"), i.get("identity")) != (ident["type"], ident["identity"])]
            self.identities.append(dict(ident))

    def _row(self, d):
        t = d.get("type", "FILE").upper()
        created = parse_time(d.get("created_at")) or self.load_time
        updated = parse_time(d.get("updated_at")) or created
        row = {c: None for c in DID_COLUMNS}
        row.update({
            "scope": d["scope"], "name": d["name"],
            "account": d.get("account") or self.scopes.get(d["scope"], {}).get("account", "root"),
            "did_type": t, "monotonic": False, "hidden": False, "obsolete": False,
            "is_new": True, "availability": "AVAILABLE", "suppressed": False,
            "purge_replicas": True, "transient": False,
            "created_at": created, "updated_at": updated,
        })
        if t == "FILE":
            row.update({"bytes": d.get("bytes"), "adler32": d.get("adler32"), "md5": d.get("md5"),
                        "guid": (d.get("guid") or uuid.uuid4().hex).replace("-", "").lower()})
            row["_replicas"] = dict(d.get("replicas", {}))
        else:
            row["is_open"] = bool(d.get("is_open", t == "CONTAINER"))
            if not row["is_open"]:
                row["closed_at"] = updated
        for k, v in (d.get("meta") or {}).items():
            row[k] = v
        return row

    def _attach_one(self, parent, child):
        kids = self.children.setdefault(parent, [])
        if child not in kids:
            kids.append(child)
        ps = self.parents.setdefault(child, [])
        if parent not in ps:
            ps.append(parent)

    def _restore_stored_sizes(self, key):
        """Closed datasets store bytes/length; open ones and containers store null."""
        row = self.dids[key]
        if row["did_type"] == "DATASET" and not row["is_open"]:
            files = [self.dids[c] for c in self.children.get(key, []) if self.dids[c]["did_type"] == "FILE"]
            row["length"] = len(files)
            row["bytes"] = sum(f["bytes"] or 0 for f in files)
        elif row["did_type"] != "FILE":
            row["length"] = None
            row["bytes"] = None

    # -- lookups ----------------------------------------------------------
    def get(self, scope, name):
        return self.dids.get((scope, name))

    def must_get(self, scope, name):
        row = self.get(scope, name)
        if row is None:
            raise RucioError(404, "DataIdentifierNotFound", "Data identifier '%s:%s' not found" % (scope, name))
        return row

    def kids(self, key):
        with self.lock:
            return sorted(self.children.get(key, []))

    def parent_keys(self, key):
        with self.lock:
            return sorted(self.parents.get(key, []))

    def files_under(self, key, seen=None):
        """Distinct file keys under a DID (the DID itself for a file)."""
        out = []
        seen = set() if seen is None else seen
        stack = [key]
        visited = set()
        while stack:
            k = stack.pop()
            if k in visited:
                continue
            visited.add(k)
            row = self.dids.get(k)
            if row is None:
                continue
            if row["did_type"] == "FILE":
                if k not in seen:
                    seen.add(k)
                    out.append(k)
            else:
                stack.extend(reversed(self.kids(k)))
        return out

    def datasets_under(self, key):
        out, visited, stack = [], set(), list(self.kids(key))
        while stack:
            k = stack.pop()
            if k in visited:
                continue
            visited.add(k)
            row = self.dids.get(k)
            if row is None:
                continue
            if row["did_type"] == "DATASET":
                out.append(k)
            elif row["did_type"] == "CONTAINER":
                stack.extend(self.kids(k))
        return out

    def ancestors(self, key):
        out, visited, stack = [], set(), list(self.parent_keys(key))
        while stack:
            k = stack.pop(0)
            if k in visited:
                continue
            visited.add(k)
            out.append(k)
            stack.extend(self.parent_keys(k))
        return out

    # -- views of a DID row ---------------------------------------------------
    def meta_row(self, row):
        out = {}
        for c in DID_COLUMNS:
            v = row.get(c)
            if isinstance(v, datetime.datetime):
                v = rfc1123(v)
            out[c] = v
        for k, v in row.items():       # extra meta columns from the lake JSON
            if k not in out and not k.startswith("_"):
                out[k] = rfc1123(v) if isinstance(v, datetime.datetime) else v
        return out

    def did_view(self, row, dynamic_depth=None):
        if row["did_type"] == "FILE":
            return {"scope": row["scope"], "name": row["name"], "type": "FILE", "account": row["account"],
                    "bytes": row["bytes"], "length": 1, "md5": row["md5"], "adler32": row["adler32"]}
        length, nbytes = row["length"], row["bytes"]
        key = (row["scope"], row["name"])
        if dynamic_depth == "FILE":
            files = [self.dids[k] for k in self.files_under(key)]
            length, nbytes = len(files), sum(f["bytes"] or 0 for f in files)
        elif dynamic_depth == "DATASET" and row["did_type"] == "CONTAINER":
            dss = [self.dids[k] for k in self.datasets_under(key)]
            # sums the datasets' STORED values: open datasets contribute 0
            length = sum(d["length"] or 0 for d in dss)
            nbytes = sum(d["bytes"] or 0 for d in dss)
        return {"scope": row["scope"], "name": row["name"], "type": row["did_type"], "account": row["account"],
                "open": row["is_open"], "monotonic": row["monotonic"], "expired_at": rfc1123(row["expired_at"]),
                "length": length, "bytes": nbytes}

    # -- runtime changes (admin) -----------------------------------------------
    def attach(self, scope, name, dids, detach=False):
        with self.lock:
            parent = self.must_get(scope, name)
            if parent["did_type"] == "FILE":
                raise RucioError(409, "UnsupportedOperation", "Data identifier '%s:%s' is a file" % (scope, name))
            for d in dids:
                child = (d["scope"], d["name"])
                self.must_get(*child)
                if detach:
                    if child in self.children.get((scope, name), []):
                        self.children[(scope, name)].remove(child)
                        self.parents[child].remove((scope, name))
                else:
                    self._attach_one((scope, name), child)
            parent["updated_at"] = utcnow()
            self._restore_stored_sizes((scope, name))

    def add_collection(self, scope, name, did_type, is_open=True):
        with self.lock:
            if (scope, name) in self.dids:
                raise RucioError(409, "DataIdentifierAlreadyExists", "Data Identifier already exists!")
            if scope not in self.scopes:
                raise RucioError(404, "ScopeNotFound", "Scope '%s' not found" % scope)
            self.dids[(scope, name)] = self._row({"scope": scope, "name": name, "type": did_type,
                                                  "is_open": is_open,
                                                  "created_at": utcnow().strftime("%Y-%m-%dT%H:%M:%S")})
            self.children[(scope, name)] = []
            self._restore_stored_sizes((scope, name))

    def add_file(self, entry, parent=None):
        """A file DID from a lake-JSON entry ("meta" overrides any column,
        so a test can give it a malformed size), attached to @parent."""
        with self.lock:
            key = (entry["scope"], entry["name"])
            if key in self.dids:
                raise RucioError(409, "DataIdentifierAlreadyExists", "Data Identifier already exists!")
            if entry["scope"] not in self.scopes:
                raise RucioError(404, "ScopeNotFound", "Scope '%s' not found" % entry["scope"])
            self.dids[key] = self._row(dict(entry, type="FILE"))
        if parent:
            self.attach(parent[0], parent[1], [{"scope": key[0], "name": key[1]}])

    def set_replica(self, scope, name, rse, state="AVAILABLE", remove=False):
        with self.lock:
            row = self.must_get(scope, name)
            self.must_rse(rse)
            if row["did_type"] != "FILE":
                raise RucioError(409, "UnsupportedOperation", "'%s:%s' is not a file" % (scope, name))
            if remove:
                row["_replicas"].pop(rse, None)
            else:
                row["_replicas"][rse] = state

    def add_rse(self, name, protocols, attributes=None):
        """An RSE at runtime, e.g. a fault-injecting storage server. Each
        protocol: {"scheme", "hostname", "port", "prefix", "priority"?}
        (read/write priority in both domains; lower is better)."""
        with self.lock:
            if name in self.rses:
                raise RucioError(409, "Duplicate", "RSE '%s' already exists" % name)
            protos = []
            for p in protocols:
                prio = int(p.get("priority", 1))
                dom = {"read": prio, "write": prio, "delete": prio}
                protos.append({"scheme": p["scheme"], "hostname": p["hostname"], "port": int(p["port"]),
                               "prefix": p.get("prefix", "/rucio"),
                               "impl": p.get("impl", "rucio.rse.protocols.webdav.Default"),
                               "domains": {"lan": dict(dom), "wan": dict(dom)},
                               "extended_attributes": None})
            attrs = {name: True}
            attrs.update(attributes or {})
            self.rses[name] = {"id": hashlib.md5(name.encode()).hexdigest(), "rse_type": "DISK",
                               "deterministic": True, "volatile": False, "staging_area": False,
                               "availability_read": True, "availability_write": True,
                               "availability_delete": True, "lfn2pfn_algorithm": "hash",
                               "verify_checksum": True, "sign_url": None, "credentials": None,
                               "qos_class": None, "attributes": attrs, "protocols": protos}

    # -- RSEs ---------------------------------------------------------------
    def must_rse(self, rse):
        info = self.rses.get(rse)
        if info is None:
            raise RucioError(404, "RSENotFound", "RSE '%s' cannot be found" % rse)
        return info

    def rse_row(self, name):
        r = self.rses[name]
        avail = 4 * bool(r.get("availability_read", True)) + 2 * bool(r.get("availability_write", True)) + \
            bool(r.get("availability_delete", True))
        out = {"id": r["id"], "rse": name, "vo": self.vo, "rse_type": r.get("rse_type", "DISK"),
               "deterministic": r.get("deterministic", True), "volatile": r.get("volatile", False),
               "staging_area": r.get("staging_area", False)}
        for k in ("city", "region_code", "country_name", "continent", "time_zone", "ISP", "ASN",
                  "longitude", "latitude"):
            out[k] = r.get(k)
        out.update({"availability": avail, "availability_read": r.get("availability_read", True),
                    "availability_write": r.get("availability_write", True),
                    "availability_delete": r.get("availability_delete", True),
                    "usage": None, "qos_class": r.get("qos_class"),
                    "created_at": rfc1123(self.load_time), "updated_at": rfc1123(self.load_time),
                    "deleted": False, "deleted_at": None})
        return out

    def rse_info(self, name):
        """What rsemgr.get_rse_info uses: settings + protocols."""
        r = self.must_rse(name)
        avail = 4 * bool(r.get("availability_read", True)) + 2 * bool(r.get("availability_write", True)) + \
            bool(r.get("availability_delete", True))
        info = {"availability_delete": r.get("availability_delete", True),
                "availability_read": r.get("availability_read", True),
                "availability_write": r.get("availability_write", True),
                "credentials": r.get("credentials"), "deterministic": r.get("deterministic", True),
                "domain": ["lan", "wan"], "id": r["id"], "lfn2pfn_algorithm": r.get("lfn2pfn_algorithm", "hash"),
                "qos_class": r.get("qos_class"), "rse": name, "rse_type": r.get("rse_type", "DISK"),
                "sign_url": r.get("sign_url"), "staging_area": r.get("staging_area", False),
                "verify_checksum": r.get("verify_checksum", True), "volatile": r.get("volatile", False),
                "availability": avail, "protocols": [self.protocol_view(p) for p in r.get("protocols", [])]}
        if self.flavour == "1.31":
            # deprecated keys still present in 1.31
            for op in ("read", "write", "delete", "third_party_copy", "third_party_copy_read",
                       "third_party_copy_write"):
                info["%s_protocol" % op] = 1
        return info

    @staticmethod
    def protocol_view(p):
        return {"hostname": p["hostname"], "scheme": p["scheme"], "port": p["port"], "prefix": p["prefix"],
                "impl": p.get("impl"), "domains": p.get("domains", {}),
                "extended_attributes": p.get("extended_attributes")}

    def select_protocol(self, rse, operation, domain, scheme=None):
        """rsemgr.select_protocol: best (lowest non-zero) priority for the
        operation in the domain, optionally restricted to one scheme."""
        best = None
        for p in self.rses[rse].get("protocols", []):
            if scheme and p["scheme"] != scheme:
                continue
            prio = (p.get("domains", {}).get(domain) or {}).get(operation)
            if not prio:
                continue   # 0 / None = disabled (pre-39 semantics, as in the lake)
            if best is None or prio < best[0]:
                best = (prio, p)
        return best

    # -- RSE expressions (small subset of Rucio's grammar) -----------------------
    def parse_rse_expression(self, expr):
        tokens = re.findall(r"\(|\)|\||&|\\|[^()|&\\]+", expr.replace(" ", ""))
        pos = [0]

        def term_set(tok):
            if tok == "*":
                return set(self.rses)
            m = re.match(r"^([A-Za-z0-9_\-.]+)(=|<|>)(.+)$", tok)
            if m:
                key, op, val = m.groups()
                out = set()
                for n, r in self.rses.items():
                    attrs = dict(r.get("attributes", {}))
                    attrs.setdefault("rse_type", r.get("rse_type", "DISK"))
                    attrs.setdefault("rse", n)
                    if key not in attrs:
                        continue
                    have = attrs[key]
                    if op == "=":
                        if str(have).lower() == val.lower() if isinstance(have, bool) else str(have) == val:
                            out.add(n)
                    else:
                        try:
                            if (float(have) < float(val)) if op == "<" else (float(have) > float(val)):
                                out.add(n)
                        except (TypeError, ValueError):
                            pass
                return out
            return {tok} if tok in self.rses else set()

        def primary():
            if pos[0] >= len(tokens):
                raise RucioError(400, "InvalidRSEExpression", "RSE Expression is invalid: %r" % expr)
            tok = tokens[pos[0]]
            pos[0] += 1
            if tok == "(":
                val = expression()
                if pos[0] >= len(tokens) or tokens[pos[0]] != ")":
                    raise RucioError(400, "InvalidRSEExpression", "RSE Expression is invalid: %r" % expr)
                pos[0] += 1
                return val
            if tok in (")", "|", "&", "\\"):
                raise RucioError(400, "InvalidRSEExpression", "RSE Expression is invalid: %r" % expr)
            return term_set(tok)

        def expression():
            val = primary()
            while pos[0] < len(tokens) and tokens[pos[0]] in ("|", "&", "\\"):
                op = tokens[pos[0]]
                pos[0] += 1
                rhs = primary()
                val = val | rhs if op == "|" else (val & rhs if op == "&" else val - rhs)
            return val

        result = expression()
        if pos[0] != len(tokens):
            raise RucioError(400, "InvalidRSEExpression", "RSE Expression is invalid: %r" % expr)
        if not result:
            raise RucioError(400, "InvalidRSEExpression", "RSE Expression resulted in an empty set.")
        return result


# --------------------------------------------------------------------------
# tokens
# --------------------------------------------------------------------------
class Tokens:
    def __init__(self, cat):
        self.cat = cat
        self.lock = threading.Lock()
        self.table = {}   # token -> auth dict (lifetime = expiry, naive UTC)

    def issue(self, account, identity, appid):
        expires = utcnow() + datetime.timedelta(seconds=self.cat.token_lifetime)
        token = "%s-%s-%s-%s" % (account, identity, appid, uuid.uuid4().hex)
        with self.lock:
            self.table[token] = {"account": account, "identity": identity, "lifetime": expires,
                                 "audience": None, "authz_scope": None, "vo": self.cat.vo}
        return token, expires

    def expire_all(self):
        with self.lock:
            past = utcnow() - datetime.timedelta(seconds=1)
            for auth in self.table.values():
                auth["lifetime"] = past
            self.expired_before = time.time()

    def validate(self, token):
        """core.authentication.validate_auth_token: DB table first, then the
        JWT path for 3 dot-separated parts. None if invalid or expired."""
        if not token:
            return None
        with self.lock:
            auth = self.table.get(token)
        if auth is not None:
            return dict(auth) if auth["lifetime"] > utcnow() else None
        if len(token.split(".")) == 3:
            auth = self._validate_jwt(token)
            if auth is not None:
                with self.lock:
                    self.table[token] = auth   # Rucio stores validated JWTs until exp
                return dict(auth)
        return None

    def _validate_jwt(self, token):
        # The issuer is taken from the unverified payload only to pick its
        # keys; verify_jws pins the algorithm to the key type (RS256 for RSA,
        # ES256 for P-256; never 'none' or HS256-with-the-public-key) and
        # looks the kid up in that issuer's JWKS.
        try:
            iss = decode_unverified(token)[1].get("iss")
        except (ValueError, TypeError, UnicodeDecodeError, AttributeError):
            return None
        keys = self.cat.issuers.get(iss) if isinstance(iss, str) else None
        if keys is None:
            return None
        try:
            claims = verify_jws(token, keys)
        except ValueError:
            return None
        now = time.time()
        exp = claims.get("exp")
        if not isinstance(exp, (int, float)) or exp <= now:
            return None
        nbf = claims.get("nbf")
        if isinstance(nbf, (int, float)) and nbf > now + 60:
            return None
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else ([aud] if isinstance(aud, str) else [])
        if self.cat.expected_audience not in auds:
            return None
        scope = claims.get("scope")
        words = scope.split() if isinstance(scope, str) else []
        if not all(w in words for w in self.cat.expected_scope.split()):
            return None
        identity = "SUB=%s, ISS=%s" % (claims.get("sub"), iss)
        account = None
        for ident in self.cat.identities:
            if ident.get("type") == "OIDC" and ident.get("identity") == identity:
                account = ident.get("default") or (ident.get("accounts") or [None])[0]
                break
        if account is None:
            return None
        return {"account": account, "identity": identity,
                "lifetime": datetime.datetime.utcfromtimestamp(exp),
                "audience": aud if isinstance(aud, str) else " ".join(auds),
                "authz_scope": scope, "vo": self.cat.vo}


# --------------------------------------------------------------------------
# faults and counters
# --------------------------------------------------------------------------
FAULT_MODES = ("malformed", "oversized", "hang", "status500", "status503", "status", "truncated",
               "drop", "delay", "none")


class Faults(httpbase.FaultTable):
    def add(self, spec):
        if not isinstance(spec, dict):
            raise RucioError(400, "TypeError", "body must be a json dictionary")
        mode = spec.get("mode")
        if mode not in FAULT_MODES:
            raise RucioError(400, "ValueError", "mode must be one of %s" % ", ".join(FAULT_MODES))
        try:
            rx = re.compile(spec.get("match", ""))
        except (re.error, TypeError) as e:
            raise RucioError(400, "ValueError", "bad match regex: %s" % e)
        count = spec.get("count")
        return self._append(dict(spec), _rx=rx, count=None if count is None else int(count))


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_route, self.by_path, self.total = {}, {}, 0

    def add(self, method, path, route):
        with self.lock:
            self.total += 1
            k1, k2 = "%s %s" % (method, route), "%s %s" % (method, path)
            self.by_route[k1] = self.by_route.get(k1, 0) + 1
            self.by_path[k2] = self.by_path.get(k2, 0) + 1

    def snapshot(self):
        with self.lock:
            return {"total": self.total, "by_route": dict(self.by_route), "by_path": dict(self.by_path)}

    def reset(self):
        with self.lock:
            self.by_route, self.by_path, self.total = {}, {}, 0


# --------------------------------------------------------------------------
# request and routing
# --------------------------------------------------------------------------
class Request:
    def __init__(self, method, path, query, headers, body, client_ip, host_url):
        self.method, self.path, self.headers, self.body = method, path, headers, body
        self.client_ip, self.host_url, self.query = client_ip, host_url, query
        # Flask/Werkzeug form-decode the query string: '+' is a space.
        self.args = parse_qs(query, keep_blank_values=True, errors="replace")
        self.auth = None

    def arg(self, name, default=None):
        vals = self.args.get(name)
        return vals[0] if vals else default

    def json(self, types=(dict,), optional=False):
        """common.json_parse: 400 ValueError on bad JSON, 400 TypeError on the
        wrong JSON type."""
        text = self.body.decode("utf-8", errors="replace") if self.body else ""
        if optional and not text:
            return {} if dict in types else []
        try:
            val = json.loads(text)
        except ValueError:
            raise RucioError(400, "ValueError", "cannot decode json parameter " +
                             " or ".join("dictionary" if t is dict else t.__name__ for t in types))
        if not isinstance(val, types):
            raise RucioError(400, "TypeError", "body must be a json " +
                             " or ".join("dictionary" if t is dict else t.__name__ for t in types))
        return val


class Route:
    def __init__(self, name, pattern, methods, auth=True, accept=None, redirect_slash=False):
        self.name = name
        self.rx = re.compile(pattern, re.S)
        self.methods = methods          # {"GET": fn}
        self.auth = auth
        self.accept = accept            # {"GET": [types]} or None
        self.redirect_slash = redirect_slash


def accept_ok(accept_header, supported):
    """check_accept_header_wrapper_flask: no Accept (or */*) passes; else some
    supported type must be accepted with q > 0 (parameters are ignored)."""
    if accept_header is None or not accept_header.strip():
        return True
    for part in accept_header.split(","):
        fields = [f.strip() for f in part.split(";")]
        mtype = fields[0].lower()
        if not mtype:
            continue
        q = 1.0
        for f in fields[1:]:
            if f.lower().startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        for s in supported:
            if mtype == "*/*" or mtype == s or (mtype.endswith("/*") and s.startswith(mtype[:-1])):
                return True
    return False


def best_match(accept_header, supported, default):
    if not accept_header:
        return default
    best, best_q = default, -1.0
    for part in accept_header.split(","):
        fields = [f.strip() for f in part.split(";")]
        mtype = fields[0].lower()
        q = 1.0
        for f in fields[1:]:
            if f.lower().startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        for s in supported:
            if (mtype == s or mtype == "*/*") and q > best_q:
                best, best_q = (s if mtype == s else default), q
    return best


class App:
    def __init__(self, lake, flavour, log_path=None):
        self.flavour = flavour
        self.cat = Catalogue(lake, flavour)
        self.tokens = Tokens(self.cat)
        self.faults = Faults()
        self.counts = Counters()
        self.log_lock = threading.Lock()
        self.log_file = open(log_path, "a", encoding="utf-8") if log_path else None
        self.routes = self._routes()
        self.slow = None    # (seconds, compiled regex or None): the slow catalogue

    # -- slow catalogue ---------------------------------------------------------
    def set_slow(self, seconds, match=None):
        """Every matching request waits `seconds` before it is answered."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        try:
            rx = re.compile(match) if match else None
        except re.error as e:
            raise ValueError("bad match regex: %s" % e)
        self.slow = (seconds, rx) if seconds > 0 else None

    def slow_view(self):
        slow = self.slow
        return {"seconds": slow[0] if slow else 0, "match": slow[1].pattern if slow and slow[1] else None}

    def slow_for(self, path):
        slow = self.slow     # one read: a concurrent set_slow() swaps the tuple
        if slow and (slow[1] is None or slow[1].search(path)):
            return slow[0]
        return 0

    # -- logging --------------------------------------------------------------
    def log(self, **kv):
        if not self.log_file:
            return
        kv["t"] = round(time.time(), 3)
        with self.log_lock:
            self.log_file.write(json.dumps(kv, ensure_ascii=False) + "\n")
            self.log_file.flush()

    def close_log(self):
        if self.log_file:
            self.log_file.close()

    # -- routing --------------------------------------------------------------
    def _routes(self):
        S, J, O = [STREAM], [JSON], [OCTET]
        ni = self.not_implemented
        R = Route
        # Order matters: it mimics Werkzeug's preference of static parts over
        # converters, and of specific suffix rules over <path:scope_name>.
        return [
            R("/ping", r"^/ping$", {"GET": self.ping}, auth=False, accept={"GET": J}),
            R("/auth/userpass", r"^/auth/userpass$", {"GET": self.auth_userpass}, auth=False, accept={"GET": O}),
            R("/auth/validate", r"^/auth/validate$", {"GET": self.auth_validate}, auth=False, accept={"GET": O}),
            R("/auth/x509", r"^/auth/(x509|x509_proxy|x509/webui)$", {"GET": self.auth_x509}, auth=False,
              accept={"GET": O}),
            R("/auth/{other}", r"^/auth/(gss|ssh|ssh_challenge_token|saml|oidc|oidc_token|oidc_code|"
                               r"oidc_redirect|oidc_refresh)$", {"GET": ni}, auth=False),
            R("/scopes", r"^/scopes$", {"GET": None}, redirect_slash=True),
            R("/scopes/", r"^/scopes/$", {"GET": self.scopes_list, "POST": ni}, accept={"GET": J}),
            R("/scopes/{account}/scopes", r"^/scopes/([^/]+)/scopes$", {"GET": self.account_scopes},
              accept={"GET": J}),
            R("/accounts/whoami", r"^/accounts/whoami$", {"GET": self.whoami}, accept={"GET": J}),
            R("/accounts/{account}", r"^/accounts/([^/]+)$", {"GET": self.account_info, "POST": ni, "PUT": ni,
                                                              "DELETE": ni}, accept={"GET": J}),
            # --- dids -------------------------------------------------------
            R("/dids", r"^/dids$", {"POST": ni}),
            R("/dids/bulkmeta", r"^/dids/bulkmeta$", {"POST": self.bulkmeta}, accept={"POST": S}),
            R("/dids/bulkfiles", r"^/dids/bulkfiles$", {"POST": self.bulkfiles}, accept={"POST": S}),
            R("/dids/{static}", r"^/dids/(attachments|resurrect|sample|bulkdidsmeta)$", {"POST": ni}),
            R("/dids/new", r"^/dids/new$", {"GET": ni}),
            R("/dids/{scope}", r"^/dids/([^/]+)$", {"GET": None}, redirect_slash=True),
            R("/dids/{scope}/", r"^/dids/([^/]+)/$", {"GET": self.scope_dids}, accept={"GET": S}),
            R("/dids/{scope}/dids/search", r"^/dids/([^/]+)/dids/search$", {"GET": self.search},
              accept={"GET": S}),
            R("/dids/{guid}/guid", r"^/dids/([^/]+)/guid$", {"GET": ni}),
            R("/dids/{scope}/{name}/status", r"^/dids/(.+)/status$", {"PUT": ni, "GET": ni}),
            R("/dids/{scope}/{name}/files", r"^/dids/(.+)/files$", {"GET": self.did_files}, accept={"GET": S}),
            R("/dids/{scope}/{name}/dids/history", r"^/dids/(.+)/dids/history$", {"GET": ni}),
            R("/dids/{scope}/{name}/dids", r"^/dids/(.+)/dids$", {"GET": self.did_content, "POST": ni,
                                                                  "DELETE": ni}, accept={"GET": S}),
            R("/dids/{scope}/{name}/meta", r"^/dids/(.+)/meta$", {"GET": self.did_meta, "POST": ni,
                                                                  "DELETE": ni}, accept={"GET": J}),
            R("/dids/{scope}/{name}/meta/{key}", r"^/dids/(.+)/meta/([^/]+)$", {"POST": ni}),
            R("/dids/{scope}/{name}/rules", r"^/dids/(.+)/rules$", {"GET": ni}),
            R("/dids/{scope}/{name}/parents", r"^/dids/(.+)/parents$", {"GET": self.did_parents},
              accept={"GET": S}),
            R("/dids/{scope}/{name}/associated_rules", r"^/dids/(.+)/associated_rules$", {"GET": ni}),
            R("/dids/{scope}/{name}/follow", r"^/dids/(.+)/follow$", {"GET": ni, "POST": ni, "DELETE": ni}),
            R("/dids/{scope}/{name}", r"^/dids/(.+)$", {"GET": self.did_get, "POST": ni}, accept={"GET": J}),
            # --- replicas -----------------------------------------------------
            R("/replicas/list", r"^/replicas/list$", {"POST": self.replicas_list},
              accept={"POST": [STREAM, METALINK]}),
            R("/replicas", r"^/replicas/?$", {"POST": ni, "PUT": ni, "DELETE": ni}),
            R("/replicas/{scope}/{name}", r"^/replicas/(.+)$", {"GET": ni}),
            # --- rses -----------------------------------------------------------
            R("/rses", r"^/rses$", {"GET": None}, redirect_slash=True),
            R("/rses/", r"^/rses/$", {"GET": self.rses_list}, accept={"GET": S}),
            R("/rses/{rse}/attr", r"^/rses/([^/]+)/attr$", {"GET": None}, redirect_slash=True),
            R("/rses/{rse}/attr/", r"^/rses/([^/]+)/attr/$", {"GET": self.rse_attr}, accept={"GET": J}),
            R("/rses/{rse}/protocols", r"^/rses/([^/]+)/protocols$", {"GET": self.rse_protocols},
              accept={"GET": J}),
            R("/rses/{rse}/lfns2pfns", r"^/rses/([^/]+)/lfns2pfns$", {"GET": self.rse_lfns2pfns},
              accept={"GET": J}),
            R("/rses/{rse}", r"^/rses/([^/]+)$", {"GET": self.rse_get, "POST": ni, "PUT": ni, "DELETE": ni},
              accept={"GET": J}),
            R("/rules", r"^/rules/?.*$", {"GET": ni, "POST": ni, "PUT": ni, "DELETE": ni}),
        ]

    def match(self, method, path):
        """(route, groups) | Response (404/405/308). HEAD routes like GET."""
        want = "GET" if method == "HEAD" else method
        allowed = set()
        for r in self.routes:
            m = r.rx.match(path)
            if not m:
                continue
            if want in r.methods or method == "OPTIONS":
                if r.redirect_slash and want == "GET":
                    return r, None
                if method == "OPTIONS":
                    allowed.update(r.methods)
                    continue
                return r, m.groups()
            allowed.update(r.methods)
        if method == "OPTIONS" and allowed:
            return None, allowed
        if allowed:
            full = set(allowed) | {"OPTIONS"}
            if "GET" in full:
                full.add("HEAD")
            return method_not_allowed(full), None
        return not_found(), None

    def route_name(self, method, path):
        r, _ = self.match(method, path)
        return r.name if isinstance(r, Route) else "<unrouted>"

    def dispatch(self, req):
        r, groups = self.match(req.method, req.path)
        if isinstance(r, Response):
            return r
        if r is None:     # OPTIONS: Rucio answers '' 200 without a token
            allowed = set(groups) | {"OPTIONS"}
            if "GET" in allowed:
                allowed.add("HEAD")
            return Response(200, b"", HTML, [("Allow", ", ".join(sorted(allowed)))])
        if r.redirect_slash:
            loc = req.host_url + quote(req.path + "/", safe="/:@!$&'()*+,;=-._~")
            if req.query:
                loc += "?" + req.query
            return redirect(308, loc)
        want = "GET" if req.method == "HEAD" else req.method
        if r.auth:
            token = req.headers.get("X-Rucio-Auth-Token")
            if not token:
                if self.flavour == "41":
                    return error_response(400, "ValueError", "Token must be set.")
                return error_response(401, "CannotAuthenticate", "Cannot authenticate with given credentials")
            auth = self.tokens.validate(token)
            if auth is None:
                return error_response(401, "CannotAuthenticate", "Cannot authenticate with given credentials")
            req.auth = auth
        supported = (r.accept or {}).get(want)
        if supported and not accept_ok(req.headers.get("Accept"), supported):
            return error_response(406, "UnsupportedRequestedContentType",
                                  "The requested content type %s is not supported. Use %s."
                                  % (req.headers.get("Accept"), str(list(supported))))
        fn = r.methods[want]
        try:
            return fn(req, *groups)
        except RucioError as e:
            return error_response(e.status, e.cls, e.msg)

    def split_scope_name(self, scope_name):
        """parse_scope_name with the flavour's SCOPE_NAME_REGEXP."""
        pattern = SCOPE_NAME_REGEXP[self.flavour]
        m = re.match(pattern, "/" + scope_name, re.S)
        if m is None:
            if self.flavour == "41":
                msg = ("Could not parse '/%s' (scope_name='%s') with pattern '%s' into scope and name."
                       % (scope_name, scope_name, pattern))
            else:
                msg = "cannot parse scope and name"
            raise RucioError(400, "ValueError", msg)
        return m.group(1), m.group(2)

    # -- generic ---------------------------------------------------------------
    def not_implemented(self, req, *groups):
        return error_response(501, "NotImplementedError",
                              "%s %s is a real Rucio route that the ruciofs emulator does not implement"
                              % (req.method, req.path))

    def ping(self, req):
        return Response(200, jsonify({"version": self.cat.version}), JSON)

    # -- auth ------------------------------------------------------------------
    def _auth_headers(self):
        return [("Access-Control-Expose-Headers",
                 "X-Rucio-Auth-Token, X-Rucio-Auth-Token-Expires, X-Rucio-Auth-Account, X-Rucio-Auth-Accounts"),
                ("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate"),
                ("Cache-Control", "post-check=0, pre-check=0"), ("Pragma", "no-cache")]

    def auth_userpass(self, req):
        hdrs = self._auth_headers()
        account = req.headers.get("X-Rucio-Account")
        username = req.headers.get("X-Rucio-Username")
        password = req.headers.get("X-Rucio-Password")
        appid = req.headers.get("X-Rucio-AppID") or "unknown"
        vo = req.headers.get("X-Rucio-VO", "def")
        if not re.match(r"^[a-zA-Z0-9.\-]+$", vo):
            return error_response(400, "RucioException", "VO name '%s' is invalid" % vo, hdrs)
        if not username or not password:
            return error_response(401, "CannotAuthenticate",
                                  "Cannot authenticate without passing all required arguments", hdrs)
        ident = next((i for i in self.cat.identities
                      if i.get("type") == "USERPASS" and i.get("identity") == username), None)
        if not account:
            if ident is None:
                return error_response(401, "IdentityError", "Cannot authenticate. The identity does not exist.",
                                      hdrs)
            if ident.get("password") != password:
                return error_response(401, "IdentityNotFound",
                                      "Cannot authenticate. Username/Password pair does not exist.", hdrs)
            accounts = list(ident.get("accounts", []))
            if len(accounts) > 1:
                if ident.get("default"):
                    accounts = [ident["default"]]
                else:
                    return Response(206, json.dumps(accounts), OCTET,
                                    hdrs + [("X-Rucio-Auth-Accounts", ",".join(accounts))])
            if not accounts:
                return error_response(401, "IdentityError", "Cannot authenticate. The identity does not exist.",
                                      hdrs)
            account = accounts[0]
        elif ident is None or ident.get("password") != password or account not in ident.get("accounts", []):
            return error_response(401, "CannotAuthenticate",
                                  "Cannot authenticate to account %s with given credentials" % account, hdrs)
        token, expires = self.tokens.issue(account, username, appid)
        return Response(200, b"", OCTET, hdrs + [("X-Rucio-Auth-Account", account),
                                                 ("X-Rucio-Auth-Token", token),
                                                 ("X-Rucio-Auth-Token-Expires", rfc1123(expires))])

    def auth_validate(self, req):
        hdrs = self._auth_headers()
        auth = self.tokens.validate(req.headers.get("X-Rucio-Auth-Token"))
        if not auth:
            return error_response(401, "CannotAuthenticate", "Cannot authenticate with given credentials", hdrs)
        return Response(200, repr(auth), OCTET, hdrs)

    def auth_x509(self, req, *_):
        return error_response(401, "CannotAuthenticate", "Cannot get DN", self._auth_headers())

    # -- scopes / accounts ----------------------------------------------------
    def scopes_list(self, req):
        return Response(200, jsonify(sorted(self.cat.scopes)), JSON)

    def account_scopes(self, req, account):
        if account not in self.cat.accounts:
            raise RucioError(404, "AccountNotFound", "Account '%s' does not exist" % account)
        scopes = sorted(s for s, v in self.cat.scopes.items() if v.get("account") == account)
        if not scopes:
            raise RucioError(404, "ScopeNotFound", "no scopes found for account ID '%s'" % account)
        return Response(200, jsonify(scopes), JSON)

    def whoami(self, req):
        return redirect(303, "%s/accounts/%s" % (req.host_url, req.auth["account"]))

    def account_info(self, req, account):
        a = self.cat.accounts.get(account)
        if a is None:
            raise RucioError(404, "AccountNotFound", "Account '%s' does not exist" % account)
        t = self.cat.load_time.strftime("%Y-%m-%dT%H:%M:%S")
        return Response(200, jsonify({"account": account, "account_type": a.get("type", "USER"),
                                      "status": "ACTIVE", "email": a.get("email"), "suspended_at": None,
                                      "deleted_at": None, "created_at": t, "updated_at": t}), JSON)

    # -- dids -------------------------------------------------------------------
    def scope_dids(self, req, scope):
        cat = self.cat
        name = req.arg("name")
        recursive = (req.arg("recursive", "false") or "").lower() in ("true", "1")

        def drill(pkey, level):
            for c in cat.kids(pkey):
                row = cat.get(*c)
                if row is None:
                    continue
                yield render_json({"scope": c[0], "name": c[1], "type": row["did_type"],
                                   "parent": {"scope": pkey[0], "name": pkey[1]}, "level": level + 1}) + "\n"
                if recursive and row["did_type"] != "FILE":
                    yield from drill(c, level + 1)

        def gen():
            if name is None:
                with cat.lock:
                    tops = sorted(k for k in cat.dids if k[0] == scope and
                                  not any(p[0] == scope for p in cat.parents.get(k, [])))
                for k in tops:
                    row = cat.get(*k)
                    if row is None:
                        continue
                    yield render_json({"scope": scope, "name": k[1], "type": row["did_type"], "parent": None,
                                       "level": 0,
                                       "bytes": row["bytes"] if row["did_type"] == "FILE" else None}) + "\n"
                    if recursive and row["did_type"] != "FILE":
                        yield from drill(k, 0)
            else:
                cat.must_get(scope, name)
                yield from drill((scope, name), 0)
        return try_stream(gen())

    def did_get(self, req, scope_name):
        scope, name = self.split_scope_name(scope_name)
        depth = None
        if "dynamic_depth" in req.args:
            depth = (req.arg("dynamic_depth") or "").upper()
            depth = depth if depth in ("FILE", "DATASET") else None
        elif "dynamic" in req.args:
            depth = "FILE"
        row = self.cat.must_get(scope, name)
        return Response(200, render_json(self.cat.did_view(row, depth)), JSON)

    def did_meta(self, req, scope_name):
        scope, name = self.split_scope_name(scope_name)
        plugin = req.arg("plugin", "DID_COLUMN")
        if plugin not in ("DID_COLUMN", "JSON", "ALL"):
            raise RucioError(400, "UnsupportedMetadataPlugin", "Metadata plugin '%s' is not supported" % plugin)
        row = self.cat.must_get(scope, name)
        if plugin == "JSON":
            return Response(200, render_json({k: v for k, v in (row.get("_json_meta") or {}).items()}), JSON)
        return Response(200, render_json(self.cat.meta_row(row)), JSON)

    def bulkmeta(self, req):
        params = req.json()
        if "dids" not in params:
            raise RucioError(400, "KeyError", "'dids' not defined")
        dids = params["dids"]
        if not isinstance(dids, list):
            raise RucioError(400, "TypeError", "'dids' must be a list")

        def gen():
            for d in dids:
                if not isinstance(d, dict) or "name" not in d or "scope" not in d:
                    raise RucioError(400, "InvalidObject", "Provided object does not match schema.")
                row = self.cat.get(d["scope"], d["name"])
                if row is None:
                    continue        # unknown DIDs are skipped, like get_metadata_bulk
                yield render_json(self.cat.meta_row(row)) + "\n"
        return try_stream(gen())

    def did_content(self, req, scope_name):
        scope, name = self.split_scope_name(scope_name)
        cat = self.cat

        def gen():
            for c in cat.kids((scope, name)):
                row = cat.get(*c)
                if row is None:
                    continue
                f = row["did_type"] == "FILE"
                yield render_json({"scope": c[0], "name": c[1], "type": row["did_type"],
                                   "bytes": row["bytes"] if f else None, "adler32": row["adler32"] if f else None,
                                   "md5": row["md5"] if f else None}) + "\n"
        # unknown DID: empty 200 (observed live on 1.31)
        return try_stream(gen())

    def did_files(self, req, scope_name):
        scope, name = self.split_scope_name(scope_name)
        long = "long" in req.args      # presence matters, not the value
        cat = self.cat

        def entry(row):
            e = {"scope": row["scope"], "name": row["name"], "bytes": row["bytes"], "adler32": row["adler32"],
                 "guid": row["guid"].upper() if row["guid"] else None, "events": row["events"]}
            if long:
                e["lumiblocknr"] = row["lumiblocknr"]
            return json.dumps(e) + "\n"

        def gen():
            root = cat.must_get(scope, name)
            if root["did_type"] == "FILE":
                yield entry(root)
                return
            # list_files walks collections with a stack and yields every file
            # of every dataset it meets: a file reachable twice comes twice.
            stack = [(scope, name)]
            visited = set()
            while stack:
                k = stack.pop()
                row = cat.get(*k)
                if row is None or k in visited:
                    continue
                visited.add(k)
                for c in cat.kids(k):
                    crow = cat.get(*c)
                    if crow is None:
                        continue
                    if crow["did_type"] == "FILE":
                        yield entry(crow)
                    else:
                        stack.append(c)
        return try_stream(gen())

    def bulkfiles(self, req):
        params = req.json()
        dids = params.get("dids", [])

        def gen():
            for d in dids:
                if not isinstance(d, dict):
                    continue
                for fk in self.cat.kids((d.get("scope"), d.get("name"))):
                    row = self.cat.get(*fk)
                    if row is None or row["did_type"] != "FILE":
                        continue
                    yield render_json({"parent_scope": d["scope"], "parent_name": d["name"], "scope": fk[0],
                                       "name": fk[1], "bytes": row["bytes"],
                                       "guid": row["guid"].upper() if row["guid"] else None,
                                       "events": row["events"], "adler32": row["adler32"]}) + "\n"
        return try_stream(gen())

    def did_parents(self, req, scope_name):
        scope, name = self.split_scope_name(scope_name)
        cat = self.cat

        def gen():
            for p in cat.parent_keys((scope, name)):
                row = cat.get(*p)
                if row is not None:
                    yield render_json({"scope": p[0], "name": p[1], "type": row["did_type"]}) + "\n"
        return try_stream(gen())

    def search(self, req, scope):
        cat = self.cat
        raw = req.arg("filters")
        if raw is not None:
            try:
                filters = ast.literal_eval(raw)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                raise RucioError(400, "DIDFilterSyntaxError", "Input filters are not valid: %r" % raw)
            if isinstance(filters, dict):
                filters = [filters]
            if not isinstance(filters, list) or not all(isinstance(f, dict) for f in filters):
                raise RucioError(400, "DIDFilterSyntaxError", "Input filters are not valid: %r" % raw)
        else:
            f = {}
            for k, vals in req.args.items():
                if k not in ("type", "limit", "long", "recursive"):
                    f[k] = vals[0]
            filters = [f]
        did_type = (req.arg("type", "collection") or "").lower()
        types = {"all": ("FILE", "DATASET", "CONTAINER"), "collection": ("DATASET", "CONTAINER"),
                 "dataset": ("DATASET",), "container": ("CONTAINER",), "file": ("FILE",)}.get(did_type)
        if types is None:
            raise RucioError(409, "UnsupportedOperation", "Valid type are: all, collection, container, dataset, file")
        limit = req.arg("limit")
        try:
            limit = int(limit) if limit not in (None, "") else None
        except ValueError:
            limit = None
        long = req.arg("long") in ("True", "1")   # Rucio: type=['True', '1'].__contains__

        def match_one(row, flt):
            for key, want in flt.items():
                op = "eq"
                m = re.match(r"^(.*)\.(gt|lt|gte|lte|ne)$", key)
                if m:
                    key, op = m.groups()
                if key in ("created_after", "created_before"):
                    try:
                        limit_t = parse_time(want) if isinstance(want, str) else want
                    except ValueError:
                        raise RucioError(400, "DIDFilterSyntaxError", "bad date %r" % want)
                    if key == "created_after" and not row["created_at"] >= limit_t:
                        return False
                    if key == "created_before" and not row["created_at"] <= limit_t:
                        return False
                    continue
                if key == "type":
                    continue
                if key not in row or key.startswith("_"):
                    return False
                have = row[key]
                if key == "name" and op == "eq" and isinstance(want, str):
                    rx = "^" + re.escape(want).replace(r"\*", ".*").replace("%", ".*") + "$"
                    if not re.match(rx, have, re.S):
                        return False
                    continue
                try:
                    if isinstance(have, (int, float)) and not isinstance(want, (int, float)):
                        want = float(want)
                    ok = {"eq": have == want, "ne": have != want}.get(op)
                    if ok is None:
                        if have is None:
                            return False
                        ok = {"gt": have > want, "lt": have < want, "gte": have >= want, "lte": have <= want}[op]
                except (TypeError, ValueError):
                    return False
                if not ok:
                    return False
            return True

        def gen():
            with cat.lock:
                rows = sorted((r for k, r in cat.dids.items() if k[0] == scope), key=lambda r: r["name"])
            n = 0
            for row in rows:
                if row["did_type"] not in types:
                    continue
                if not any(match_one(row, f) for f in filters):
                    continue
                n += 1
                if limit is not None and n > limit:
                    return
                if long:
                    t = row["did_type"] if self.flavour == "41" else "DIDType." + row["did_type"]
                    yield json.dumps({"scope": row["scope"], "name": row["name"], "did_type": t,
                                      "bytes": row["bytes"], "length": row["length"]}) + "\n"
                else:
                    yield json.dumps(row["name"]) + "\n"
        return try_stream(gen())

    # -- replicas ------------------------------------------------------------------
    def replicas_list(self, req):
        cat = self.cat
        content_type = best_match(req.headers.get("Accept"), [STREAM, METALINK], STREAM)
        metalink = content_type == METALINK
        params = req.json()
        dids = params.get("dids", [])
        if not isinstance(dids, list):
            raise RucioError(400, "InvalidObject", "Provided object does not match schema.")
        if len(dids) > 1000:
            raise RucioError(400, "InvalidObject", "Provided object does not match schema: too many dids")
        for d in dids:
            if not isinstance(d, dict) or "scope" not in d or "name" not in d:
                raise RucioError(400, "InvalidObject", "Provided object does not match schema.")
        schemes = params.get("schemes")
        if isinstance(schemes, str):
            schemes = [schemes]
        if metalink and schemes is None:
            schemes = SUPPORTED_PROTOCOLS
        select_alg = params.get("sort")
        select_alg = req.arg("select", select_alg)
        select_alg = req.arg("sort", select_alg)
        if select_alg and select_alg not in SORT_ALGORITHMS[self.flavour]:
            if self.flavour == "41":
                raise RucioError(400, "SortingAlgorithmNotSupported",
                                 "Sorting algorithm '%s' is not supported." % select_alg)
            select_alg = None      # 1.31's sort_replicas: unknown names keep the priority order
        limit = req.arg("limit")
        try:
            limit = int(limit) if limit else None
        except ValueError:
            limit = None
        all_states = bool(params.get("all_states", False))
        ignore_availability = bool(params.get("ignore_availability", "unavailable" in params))
        domain = params.get("domain")
        client_location = params.get("client_location") or {}
        resolve_parents = bool(params.get("resolve_parents", False))
        nrandom = params.get("nrandom")
        rse_filter = None
        if params.get("rse_expression"):
            rse_filter = cat.parse_rse_expression(str(params["rse_expression"]))
        site = client_location.get("site") if isinstance(client_location, dict) else None

        # resolve DIDs -> distinct files (collections expanded); unknown DIDs vanish
        file_keys, direct_wo_replica, seen, direct = [], [], set(), set()
        for d in dids:
            row = cat.get(d["scope"], d["name"])
            if row is None:
                continue
            if row["did_type"] == "FILE":
                # a file asked for by name is reported even without replicas,
                # also when a requested dataset contains it too
                direct.add((d["scope"], d["name"]))
            file_keys.extend(cat.files_under((d["scope"], d["name"]), seen))
        file_keys = sorted((k, k in direct) for k in file_keys)

        results = []
        for key, direct in file_keys:
            frow = cat.get(*key)
            reps = []
            for rse, state in sorted(frow.get("_replicas", {}).items()):
                if rse not in cat.rses:
                    continue
                if not all_states and state != "AVAILABLE":
                    continue
                if rse_filter is not None and rse not in rse_filter:
                    continue
                if not ignore_availability and not cat.rses[rse].get("availability_read", True):
                    continue
                reps.append((rse, state))
            if not reps:
                if direct:
                    direct_wo_replica.append(frow)
                continue
            results.append((frow, reps))
        if nrandom:
            random.shuffle(results)
            results = results[:int(nrandom)]

        def build(frow, reps):
            pfns = []         # (pfn, domain, priority, rse)
            for rse, _state in reps:
                if domain is None:
                    domains = ["lan" if site and cat.rses[rse].get("attributes", {}).get("site") == site
                               else "wan"]
                elif domain == "all":
                    domains = ["lan", "wan"]
                else:
                    domains = [domain]
                for dom in domains:
                    chosen = []
                    if schemes:
                        for s in schemes:
                            best = cat.select_protocol(rse, "read", dom, s)
                            if best:
                                chosen.append(best)
                    else:
                        best = cat.select_protocol(rse, "read", dom)
                        if best:
                            chosen.append(best)
                    for prio, proto in chosen:
                        pfn = protocol_pfn(proto, frow["scope"], frow["name"])
                        pfns.append((multirange_suffix(cat, rse, pfn), dom, prio, rse))
            # core: sort by (domain, priority, pfn) and number 1..N; a PFN seen
            # twice (lan and wan) keeps the later entry, as the dict is keyed by PFN
            pfns.sort(key=lambda t: (t[1], t[2], t[0]))
            entries, rses = {}, {}
            for idx, (pfn, dom, prio, rse) in enumerate(pfns, 1):
                r = cat.rses[rse]
                entries[pfn] = {"rse_id": r["id"], "rse": rse, "type": r.get("rse_type", "DISK"),
                                "volatile": r.get("volatile", False), "domain": dom, "priority": idx,
                                "client_extract": False}
                rses.setdefault(rse, [])
                if pfn not in rses[rse]:
                    rses[rse].append(pfn)
            # view: LAN by priority, then WAN by the sort algorithm (stable)
            lan = [p for p in entries if entries[p]["domain"] == "lan"]
            wan = [p for p in entries if entries[p]["domain"] != "lan"]
            lan.sort(key=lambda p: entries[p]["priority"])
            wan.sort(key=lambda p: entries[p]["priority"])
            if select_alg == "random":
                random.shuffle(wan)
            ordered = {}
            for idx, p in enumerate(lan + wan, 1):
                if limit is not None and idx > limit:
                    break
                e = entries[p]
                e["priority"] = idx
                ordered[p] = e
            out = {"scope": frow["scope"], "name": frow["name"], "bytes": frow["bytes"], "md5": frow["md5"],
                   "adler32": frow["adler32"], "pfns": ordered, "rses": rses,
                   "states": {rse: state for rse, state in reps}}
            if resolve_parents:
                out["parents"] = ["%s:%s" % k for k in cat.ancestors((frow["scope"], frow["name"]))]
            return out

        def files():
            for frow, reps in results:
                yield build(frow, reps)
            for frow in direct_wo_replica:
                yield {"scope": frow["scope"], "name": frow["name"], "bytes": frow["bytes"], "md5": frow["md5"],
                       "adler32": frow["adler32"], "pfns": {}, "rses": {}}

        if metalink:
            def gen_ml():
                first = True
                for f in files():
                    if first:
                        yield '<?xml version="1.0" encoding="UTF-8"?>\n<metalink xmlns="urn:ietf:params:xml:ns:metalink">\n'
                        first = False
                    yield ' <file name="%s">\n' % xml_escape(f["name"])
                    if f.get("parents"):
                        yield '  <parents>\n' + "".join('   <did>%s</did>\n' % xml_escape(p) for p in f["parents"]) + \
                              '  </parents>\n'
                    yield '  <identity>%s:%s</identity>\n' % (xml_escape(f["scope"]), xml_escape(f["name"]))
                    if f["adler32"] is not None:
                        yield '  <hash type="adler32">%s</hash>\n' % f["adler32"]
                    if f["md5"] is not None:
                        yield '  <hash type="md5">%s</hash>\n' % f["md5"]
                    yield '  <size>%s</size>\n' % f["bytes"]
                    yield '  <glfn name="/generic/rucio/%s:%s"></glfn>\n' % (xml_escape(f["scope"]),
                                                                          xml_escape(f["name"]))
                    for pfn, e in f["pfns"].items():
                        yield ('  <url location="%s" domain="%s" priority="%s" client_extract="%s">%s</url>\n'
                               % (e["rse"], e["domain"], e["priority"], str(e["client_extract"]).lower(),
                                  xml_escape(pfn)))
                    yield ' </file>\n'
                if first:
                    yield ('<?xml version="1.0" encoding="UTF-8"?>\n<metalink xmlns="urn:ietf:params:xml:ns:metalink">'
                           '\n</metalink>\n')
                else:
                    yield '</metalink>\n'
            return try_stream(gen_ml(), METALINK)
        return try_stream((json.dumps(f) + "\n" for f in files()))

    # -- rses ------------------------------------------------------------------------
    def rses_list(self, req):
        expr = req.arg("expression")
        if expr:
            names = sorted(self.cat.parse_rse_expression(expr))
            return try_stream(render_json({"rse": n}) + "\n" for n in names)
        return try_stream(render_json(self.cat.rse_row(n)) + "\n" for n in sorted(self.cat.rses))

    def rse_get(self, req, rse):
        return Response(200, render_json(self.cat.rse_info(rse)), JSON)

    def rse_protocols(self, req, rse):
        info = self.cat.must_rse(rse)
        protos = [self.cat.protocol_view(p) for p in info.get("protocols", [])]
        if not protos:
            raise RucioError(404, "RSEProtocolNotSupported", "RSE does not support requested protocol.")
        return Response(200, render_json(protos), JSON)

    def rse_attr(self, req, rse):
        info = self.cat.must_rse(rse)
        return Response(200, render_json(info.get("attributes", {rse: True})), JSON)

    def rse_lfns2pfns(self, req, rse):
        self.cat.must_rse(rse)
        lfns = req.args.get("lfn", [])
        scheme = req.arg("scheme") or None
        domain = req.arg("domain", "wan")
        operation = req.arg("operation", "write")
        best = self.cat.select_protocol(rse, operation, domain, scheme)
        if best is None:
            raise RucioError(404, "RSEProtocolNotSupported", "RSE does not support requested protocol.")
        out = {}
        for lfn in lfns:
            if ":" not in lfn:
                raise RucioError(400, "InvalidPath", "LFN '%s' is not of the form scope:name" % lfn)
            scope, name = lfn.split(":", 1)
            out["%s:%s" % (scope, name)] = protocol_pfn(best[1], scope, name)
        return Response(200, render_json(out), JSON)

    # -- admin -------------------------------------------------------------------------
    def admin(self, req):
        p, m = req.path, req.method

        def ok(obj=None, status=200):
            return Response(status, json.dumps(obj if obj is not None else {"ok": True}) + "\n", JSON)

        try:
            if p == "/_admin/health" and m == "GET":
                return ok({"ok": True, "flavour": self.flavour, "version": self.cat.version, "pid": os.getpid()})
            if p == "/_admin/fault" and m == "POST":
                return ok({"id": self.faults.add(req.json())}, 201)
            if p in ("/_admin/fault", "/_admin/faults") and m == "DELETE":
                self.faults.clear()
                return ok()
            if p == "/_admin/faults" and m == "GET":
                return ok(self.faults.listing())
            if p == "/_admin/requests" and m == "GET":
                return ok(self.counts.snapshot())
            if p == "/_admin/reset_counts" and m == "POST":
                self.counts.reset()
                return ok()
            if p in ("/_admin/attach", "/_admin/detach") and m == "POST":
                b = req.json()
                self.cat.attach(b["scope"], b["name"], b.get("dids", []), detach=p.endswith("detach"))
                return ok(status=201)
            if p == "/_admin/add_did" and m == "POST":
                b = req.json()
                t = str(b.get("type", "DATASET")).upper()
                if t not in ("DATASET", "CONTAINER"):
                    raise RucioError(400, "UnsupportedOperation", "only DATASET/CONTAINER can be added")
                self.cat.add_collection(b["scope"], b["name"], t, bool(b.get("is_open", True)))
                return ok(status=201)
            if p == "/_admin/config" and m == "POST":
                b = req.json()
                if "token_lifetime" in b:
                    self.cat.token_lifetime = int(b["token_lifetime"])
                if "expected_audience" in b:
                    self.cat.expected_audience = str(b["expected_audience"])
                if "expected_scope" in b:
                    self.cat.expected_scope = str(b["expected_scope"])
                return ok({"token_lifetime": self.cat.token_lifetime,
                           "expected_audience": self.cat.expected_audience,
                           "expected_scope": self.cat.expected_scope})
            if p == "/_admin/oidc_issuer" and m == "POST":
                b = req.json()
                self.cat.set_issuer(str(b["issuer"]), b["jwks"])
                return ok(status=201)
            if p == "/_admin/account" and m == "POST":
                b = req.json()
                self.cat.set_account(str(b["account"]), {"type": b.get("type", "USER"), "email": b.get("email")})
                if b.get("scope"):
                    with self.cat.lock:
                        self.cat.scopes[str(b["scope"])] = {"account": str(b["account"])}
                return ok(status=201)
            if p == "/_admin/identity" and m == "POST":
                self.cat.set_identity(req.json())
                return ok(status=201)
            if p == "/_admin/expire_tokens" and m == "POST":
                self.tokens.expire_all()
                return ok()
            if p == "/_admin/add_file" and m == "POST":
                b = req.json()
                parent = b.pop("parent", None)
                self.cat.add_file(b, parent)
                return ok(status=201)
            if p == "/_admin/replica" and m == "POST":
                b = req.json()
                self.cat.set_replica(b["scope"], b["name"], b["rse"], b.get("state", "AVAILABLE"),
                                     bool(b.get("remove", False)))
                return ok(status=201)
            if p == "/_admin/add_rse" and m == "POST":
                b = req.json()
                self.cat.add_rse(b["rse"], b.get("protocols", []), b.get("attributes"))
                return ok(self.cat.rse_row(b["rse"]), 201)
            if p == "/_admin/add_rses" and m == "POST":
                b = req.json()
                made = []
                for r in b.get("rses", []):
                    if b.get("exist_ok") and r["rse"] in self.cat.rses:
                        continue
                    self.cat.add_rse(r["rse"], r.get("protocols", []), r.get("attributes"))
                    made.append(r["rse"])
                return ok({"created": made}, 201)
            if p == "/_admin/replicas" and m == "POST":
                for r in req.json().get("replicas", []):
                    self.cat.set_replica(r["scope"], r["name"], r["rse"], r.get("state", "AVAILABLE"),
                                         bool(r.get("remove", False)))
                return ok(status=201)
            if p == "/_admin/slow" and m == "POST":
                b = req.json()
                self.set_slow(float(b.get("seconds") or 0), b.get("match"))
                return ok(self.slow_view())
            if p == "/_admin/slow" and m == "GET":
                return ok(self.slow_view())
            if p == "/_admin/rse" and m == "POST":
                b = req.json()
                info = self.cat.must_rse(b.get("rse"))
                for k in ("availability_read", "availability_write", "availability_delete"):
                    if k in b:
                        info[k] = bool(b[k])
                # {"ports": {"https": N}}: its replicas now point at port N
                # (a test's slow-link proxy in front of the real server)
                for scheme, port in (b.get("ports") or {}).items():
                    for proto in info["protocols"]:
                        if proto["scheme"] == scheme:
                            proto["port"] = int(port)
                # {"priorities": {"https": N}}: read priority in both domains
                # (where a test wants another RSE's PFN first or last)
                for scheme, prio in (b.get("priorities") or {}).items():
                    for proto in info["protocols"]:
                        if proto["scheme"] == scheme:
                            for dom in proto.setdefault("domains", {}).values():
                                dom["read"] = int(prio)
                return ok(self.cat.rse_row(b["rse"]))
        except RucioError as e:
            return error_response(e.status, e.cls, e.msg)
        except (KeyError, TypeError, ValueError) as e:
            return error_response(400, type(e).__name__, str(e))
        return not_found()


# --------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------
class Handler(httpbase.Handler):
    server_version = "ruciofs-rucio-emulator"
    wbufsize = 64 * 1024     # batch small chunks into fewer TLS records / packets
    reasons = REASONS
    unknown_reason = "UNKNOWN"
    poll = 0.1

    def handle_expect_100(self):
        # the default writes "100 Continue" into the (buffered) wfile without
        # flushing: libcurl would wait a second before sending the body
        self.send_response_only(100)
        self.end_headers()
        self.wfile.flush()
        return True

    # -- body -------------------------------------------------------------------
    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = bytearray()
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ClientGone()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                if len(out) + size > MAX_BODY:
                    return None
                out += self.rfile.read(size)
                self.rfile.readline(8)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            n = int(length)
        except ValueError:
            return None
        if n < 0 or n > MAX_BODY:
            return None
        data = self.rfile.read(n)
        if len(data) != n:
            raise ClientGone()
        return data

    # -- output -------------------------------------------------------------------
    def _send(self, resp, head_only=False):
        if isinstance(resp, StreamResponse) and self.request_version == "HTTP/1.0":
            # no chunked encoding for HTTP/1.0: the body ends when we close
            self.close_connection = True
            body = b"" if head_only else (resp.first + "".join(resp.rest)).encode("utf-8")
            self._write_head(200, resp.headers, [])
            self.wfile.write(body)
            return
        if isinstance(resp, StreamResponse):
            if head_only:   # materialise; HEAD must not carry a body
                body = resp.first.encode() + "".join(resp.rest).encode()
                self._write_head(200, resp.headers, [("Content-Length", str(len(body)))])
                return
            self._write_head(200, resp.headers, [("Transfer-Encoding", "chunked")])
            try:
                for piece in itertools.chain((resp.first,), resp.rest):
                    data = piece.encode("utf-8") if isinstance(piece, str) else piece
                    if data:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    if STOP.is_set():
                        raise ClientGone()
            except RucioError:
                # an error after the head was sent cannot be reported: cut the
                # stream like Werkzeug would (no terminating chunk)
                self.close_connection = True
                self.wfile.flush()
                raise ClientGone()
            self.wfile.write(b"0\r\n\r\n")
            return
        self._write_head(resp.status, resp.headers, [("Content-Length", str(len(resp.body)))])
        if not head_only:
            self.wfile.write(resp.body)

    def _host_url(self):
        host = self.headers.get("Host") or "%s:%d" % self.server.server_address[:2]
        return "%s://%s" % ("https" if self.server.ssl_ctx else "http", host)

    def _serve(self):
        app = self.server.app
        t0 = time.time()
        target = self.path
        if target.startswith("http://") or target.startswith("https://"):
            target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
        raw_path, _, query = target.partition("?")
        # WSGI servers percent-decode PATH_INFO (including %2F) before routing;
        # '+' stays a '+'
        path = unquote(raw_path, errors="replace")
        status, fault_mode = None, None
        try:
            body = self._read_body()
            if body is None:
                self.close_connection = True
                resp = error_response(413, "ValueError", "request body too large or malformed")
                self._send(resp)
                status = 413
                return
            req = Request(self.command, path, query, self.headers, body, self.client_address[0], self._host_url())
            if path.startswith("/_admin/"):
                resp = app.admin(req)
                self._send(resp, self.command == "HEAD")
                status = resp.status
                return
            app.counts.add(self.command, path, app.route_name(self.command, path))
            slow = app.slow_for(path)
            if slow and not self._wait(slow):
                self.close_connection = True
                status = 0
                return
            fault = app.faults.take(path)
            if fault and fault["mode"] != "none":
                fault_mode = fault["mode"]
                status = self._fault(fault, app, req)
                if status is not None:
                    return
            try:
                resp = app.dispatch(req)
            except Exception:   # a bug in the emulator must not kill the thread silently
                traceback.print_exc()
                resp = Response(500, "Internal Error", HTML)
            status = resp.status
            self._send(resp, self.command == "HEAD")
        finally:
            try:
                self.wfile.flush()
            except (OSError, ValueError):
                self.close_connection = True
            app.log(method=self.command, path=path, raw=self.path, status=status, fault=fault_mode,
                    ms=round((time.time() - t0) * 1000, 1), client=self.client_address[0])

    # -- fault injection ---------------------------------------------------------------
    def _content_type_for(self, app, path):
        r, _ = app.match(self.command, path)
        if isinstance(r, Route) and r.accept:
            types = r.accept.get("GET" if self.command == "HEAD" else self.command)
            if types:
                return types[0]
        return JSON

    def _fault(self, fault, app, req):
        """Run a fault. Returns the status it sent, or None to continue with
        the normal answer (delay)."""
        mode = fault["mode"]
        ctype = self._content_type_for(app, req.path)
        if mode == "delay":
            if not self._wait(fault.get("seconds", 5)):
                self.close_connection = True
                return 0
            return None
        if mode == "hang":
            self._wait(None)
            self.close_connection = True
            return 0
        if mode == "drop":
            self.close_connection = True
            self._abort()
            return 0
        if mode == "status500":
            # Flask's answer to an unexpected exception: plain text, no Rucio headers
            self._send(Response(500, "Internal Error", HTML))
            return 500
        if mode == "status503":
            self._send(error_response(503, "DatabaseException",
                                      "Currently there are too many requests for the Rucio servers to handle. "
                                      "Please try again in a few minutes."))
            return 503
        if mode == "status":
            code = int(fault.get("status", 502))
            self._send(Response(code, fault.get("body", "<html><body>%d</body></html>\n" % code), HTML))
            return code
        if mode == "malformed":
            lines = [b'{"scope": "user.alice", "name": \n',
                     b'\xff\xfe\xfa not UTF-8 \x80\x81 at all\n',
                     b'{"scope": "user.alice", "name": "broken", "type": "FILE"}}}\n',
                     b'[1, 2,\n', b'"unterminated\n']
            self._write_head(200, [("Content-Type", ctype)], [("Transfer-Encoding", "chunked")])
            for ln in lines:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(ln), ln))
            self.wfile.write(b"0\r\n\r\n")
            return 200
        if mode == "oversized":
            size = int(fault.get("size", 80 * 1024 * 1024))
            self._write_head(200, [("Content-Type", ctype)], [("Transfer-Encoding", "chunked")])
            sent = 0
            if ctype == STREAM:
                i = 0
                while sent < size:
                    buf = bytearray()
                    while len(buf) < 65536 and sent + len(buf) < size:
                        buf += (b'{"scope": "user.alice", "name": "oversized_%09d", "type": "FILE", '
                                b'"bytes": 1, "adler32": "00000001", "md5": null}\n' % i)
                        i += 1
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(buf), bytes(buf)))
                    sent += len(buf)
                    if STOP.is_set():
                        raise ClientGone()
            else:
                head = b'{"scope": "user.alice", "name": "oversized", "padding": "'
                tail = b'"}'
                self.wfile.write(b"%x\r\n%s\r\n" % (len(head), head))
                left = max(0, size - len(head) - len(tail))
                block = b"x" * 65536
                while left > 0:
                    n = min(left, len(block))
                    self.wfile.write(b"%x\r\n%s\r\n" % (n, block[:n]))
                    left -= n
                    if STOP.is_set():
                        raise ClientGone()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(tail), tail))
            self.wfile.write(b"0\r\n\r\n")
            return 200
        if mode == "truncated":
            self.close_connection = True
            self._write_head(200, [("Content-Type", ctype)], [("Transfer-Encoding", "chunked")])
            for i in range(2):
                ln = b'{"scope": "trunc", "name": "trunc_%d", "type": "FILE", "bytes": 1}\n' % i
                self.wfile.write(b"%x\r\n%s\r\n" % (len(ln), ln))
            half = b'{"scope": "trunc", "name": "trunc_2", "ty'
            self.wfile.write(b"%x\r\n%s" % (len(half) + 40, half))   # announce more than we send
            self.wfile.flush()
            self._abort()
            return 200
        return None


class Server(httpbase.Server):
    request_queue_size = 128

    def __init__(self, addr, app, ssl_ctx=None):
        self.app = app
        super().__init__(addr, Handler, ssl_ctx)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Rucio REST emulator for the ruciofs tests")
    ap.add_argument("--lake", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--flavour", choices=ALL_FLAVOURS, default="41")
    ap.add_argument("--log", help="append one JSON line per request")
    ap.add_argument("--slow", type=float, default=0, metavar="SECONDS",
                    help="slow catalogue: answer each request only after SECONDS")
    ap.add_argument("--slow-match", metavar="REGEX", help="only requests whose decoded path matches")
    a = ap.parse_args(argv)
    with open(a.lake, encoding="utf-8") as f:
        lake = json.load(f)
    app = App(lake, a.flavour, a.log)
    app.set_slow(a.slow, a.slow_match)
    ctx = httpbase.tls_context(a.tls_cert, a.tls_key)
    server = Server((a.host, a.port), app, ctx)
    httpbase.serve(server, "rucio emulator (flavour %s) listening on %s://%s:%d"
                   % (a.flavour, "https" if ctx else "http", a.host, server.server_address[1]),
                   a.port_file, app.close_log)


if __name__ == "__main__":
    main()
