"""A tiny independent Rucio REST client (urllib) used by the tests as the
oracle: the mount must show what the catalogue says."""
import json
import os
import ssl
import urllib.parse
import urllib.request


class Client:
    def __init__(self, lake, username="alice", password="alice-secret"):
        self.host = lake.rucio_host
        self.auth_host = lake.auth_host
        self.ctx = ssl.create_default_context(cafile=lake.ca_cert)
        req = urllib.request.Request(
            self.auth_host + "/auth/userpass",
            headers={"X-Rucio-Username": username,
                     "X-Rucio-Password": password})
        with urllib.request.urlopen(req, context=self.ctx) as r:
            self.token = r.headers["X-Rucio-Auth-Token"]

    def _req(self, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.host + path, data=data,
            headers={"X-Rucio-Auth-Token": self.token, "Accept": "*/*",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self.ctx) as r:
            return r.read().decode()

    @staticmethod
    def q(s):
        return urllib.parse.quote(s, safe="")

    def stream(self, path, body=None):
        return [json.loads(l) for l in self._req(path, body).splitlines()
                if l.strip()]

    def scopes(self):
        return json.loads(self._req("/scopes/"))

    def top(self, scope):
        return self.stream("/dids/%s/" % self.q(scope))

    def content(self, scope, name):
        return self.stream("/dids/%s/%s/dids" % (self.q(scope),
                                                 self.q(name)))

    def meta(self, scope, name):
        return json.loads(self._req("/dids/%s/%s/meta" % (self.q(scope),
                                                          self.q(name))))

    def replicas(self, scope, name, schemes=("davs", "https", "root")):
        return self.stream("/replicas/list", {
            "dids": [{"scope": scope, "name": name}],
            "schemes": list(schemes)})


def posix_name(did_name):
    """The documented mapping of a DID name to a file name."""
    return did_name.replace("/", "\uff0f")


def entry_names(children, parent_scope):
    """The names the mount must show for a collection's children."""
    names = {}
    for c in children:
        names.setdefault(posix_name(c["name"]), []).append(c)
    shown = {}
    for n, group in names.items():
        for c in group:
            key = n
            if len(group) > 1 and c["scope"] != parent_scope:
                key = posix_name("%s:%s" % (c["scope"], c["name"]))
            shown[key] = c
    return shown


def walk_catalogue(cli, scope, name, path, dirs, files, depth=0):
    """Fills dirs[path] = sorted names and files[(scope, name)] = [paths]."""
    assert depth < 20
    kids = cli.content(scope, name) if name else cli.top(scope)
    shown = entry_names(kids, scope)
    dirs[path] = sorted(shown)
    for n, c in shown.items():
        p = os.path.join(path, n)
        if c["type"] in ("DATASET", "CONTAINER"):
            walk_catalogue(cli, c["scope"], c["name"], p, dirs, files,
                           depth + 1)
        else:
            files.setdefault((c["scope"], c["name"]), []).append(p)


_paths = {}


def did_paths(lake):
    """(scope, name) -> relative mount paths, from the catalogue itself."""
    key = id(lake)
    if key not in _paths:
        cli = Client(lake)
        dirs, files = {}, {}
        for s in cli.scopes():
            walk_catalogue(cli, s, None, s, dirs, files)
        _paths[key] = (dirs, files)
    return _paths[key]


def manifest_files(lake):
    """Manifest entries the catalogue shows (1.31 cannot hold '/' names),
    each with 'paths' (mount-relative) and 'siblings' (same directory)."""
    dirs, files = did_paths(lake)
    out = []
    for f in lake.manifest:
        paths = files.get((f["scope"], f["name"]))
        if not paths:
            continue
        g = dict(f)
        g["paths"] = paths
        g["siblings"] = dirs.get(os.path.dirname(paths[0]), [])
        out.append(g)
    return out


def replicated(lake):
    """Files with a replica on both RSEs (the usual case)."""
    return [f for f in manifest_files(lake)
            if {"NGINX_DISK", "XRD_DISK"} <= set(f.get("rses", []))]


def find_path(mnt, f):
    return mnt.path(f["paths"][0])
