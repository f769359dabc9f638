#!/usr/bin/python3
"""A token issuer's web side for tests/unit/test_keyring.c: OpenID
discovery documents and JWKS over HTTPS on 127.0.0.1, from files the test
writes, with every request logged so the test can count fetches.

    oidc_server.py DIR      (DIR holds srv.pem and srv.key)

Prints the port it listens on, then serves GET /a/b from DIR/a_b (the
path's slashes as underscores). DIR/a_b.redirect answers 302 to its
content instead; while DIR/fail exists every answer is 503; DIR/delay
holds seconds to wait before answering (to overlap concurrent fetches).
Each request's path is appended to DIR/requests.log before the answer.
Standard library only.
"""

import http.server
import os
import ssl
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def _file(self, name):
        return os.path.join(self.server.dir, name)

    def _answer(self, status, body=b"", location=None):
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with open(self._file("requests.log"), "a") as log:
            log.write(self.path + "\n")
        try:
            with open(self._file("delay")) as f:
                time.sleep(float(f.read().strip() or 0))
        except FileNotFoundError:
            pass
        if os.path.exists(self._file("fail")):
            return self._answer(503)
        name = self.path.strip("/").replace("/", "_")
        if not name:  # a name holds no "/": nothing outside DIR is served
            return self._answer(404)
        try:
            with open(self._file(name + ".redirect")) as f:
                return self._answer(302, location=f.read().strip())
        except (FileNotFoundError, IsADirectoryError):
            pass
        try:
            with open(self._file(name), "rb") as f:
                return self._answer(200, f.read())
        except (FileNotFoundError, IsADirectoryError):
            return self._answer(404)


def main():
    d = sys.argv[1]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, "srv.pem"), os.path.join(d, "srv.key"))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.dir = d
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    # one write, whole line (with PYTHONUNBUFFERED print() makes two, and
    # a reader that has its number may close the pipe before the second)
    os.write(1, b"%d\n" % srv.server_address[1])
    srv.serve_forever()


if __name__ == "__main__":
    main()
