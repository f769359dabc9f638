"""Local users for the per-caller tests: created with useradd (unique
names, no home), each with a WLCG bearer-token file where discovery looks
(/run/user/<uid>/bt_u<uid>, or /tmp/bt_u<uid>), commands run as them with
setpriv, and everything removed afterwards, even when the test failed.

    with LocalUsers() as users:               # or the `local_users` fixture
        alice = users.add()                   # LocalUser: name, uid, gid
        alice.write_token(tok)                # /run/user/<uid>/bt_u<uid>, 0600, dir 0700
        alice.write_token(tok, where="tmp", mode=0o644)   # a file discovery must ignore
        r = alice.run(["cat", "/mnt/x"])      # CompletedProcess (bytes), as alice
        p = alice.popen(["sleep", "60"])      # killed at cleanup (its process group)
        grp = users.add_group()               # a local group, removed at cleanup
        bob = users.add(groups=[grp])

Only processes started through run()/popen() are ever killed, by their
process group id; a user is removed with userdel once they are gone.
"""
import errno
import grp
import os
import pwd
import secrets
import signal
import subprocess
import time

COMMENT = "ruciofs test user"
RUN_USER = "/run/user"


def make_traversable(path):
    """Add o+x (search only, no listing) to every directory on the way to
    @path, so the test users can reach a mountpoint under a 0700 pytest
    tmp dir. Returns @path."""
    cur = "/"
    for part in os.path.abspath(path).split("/")[1:]:
        cur = os.path.join(cur, part)
        st = os.stat(cur)
        if os.path.isdir(cur) and not st.st_mode & 0o001:
            os.chmod(cur, (st.st_mode & 0o7777) | 0o001)
    return path


def _retry(argv, what, timeout=20):
    """useradd & co. fail while another process holds /etc/passwd's lock
    (other test sessions on the machine): retry until @timeout."""
    deadline = time.time() + timeout
    while True:
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode == 0:
            return r
        busy = "lock" in (r.stderr or "").lower() or r.returncode in (1, 10)
        if not busy or time.time() > deadline:
            raise RuntimeError("%s failed (%d): %s" % (what, r.returncode, r.stderr.strip()))
        time.sleep(0.1)


class LocalUser:
    def __init__(self, owner, name):
        pw = pwd.getpwnam(name)
        self.owner, self.name, self.uid, self.gid = owner, name, pw.pw_uid, pw.pw_gid

    def __repr__(self):
        return "LocalUser(%s, uid=%d)" % (self.name, self.uid)

    # -- token files ------------------------------------------------------------
    @property
    def runtime_dir(self):
        """/run/user/<uid> (what XDG_RUNTIME_DIR normally is)."""
        return "%s/%d" % (RUN_USER, self.uid)

    def token_path(self, where="run"):
        """Where WLCG bearer-token discovery looks: "run" =
        /run/user/<uid>/bt_u<uid>, "tmp" = /tmp/bt_u<uid>."""
        if where == "run":
            return "%s/bt_u%d" % (self.runtime_dir, self.uid)
        if where == "tmp":
            return "/tmp/bt_u%d" % self.uid
        raise ValueError("where must be 'run' or 'tmp'")

    def ensure_runtime_dir(self):
        """/run/user/<uid>, mode 0700, owned by the user (made if missing,
        removed at cleanup if made here)."""
        os.makedirs(RUN_USER, mode=0o755, exist_ok=True)
        d = self.runtime_dir
        try:
            os.mkdir(d, 0o700)
            self.owner._made_dirs.append(d)
        except FileExistsError:
            pass
        os.chown(d, self.uid, self.gid)
        os.chmod(d, 0o700)
        return d

    def write_token(self, token, where="run", path=None, mode=0o600, owner=None, group=None, newline=True):
        """Write @token (str) to token_path(@where) or @path, replacing any
        file there atomically (a new inode, as a token refresher does):
        mode @mode, owned by @owner (uid; default this user) and @group
        (gid; default the user's group). Removed at cleanup. Returns the
        path."""
        if path is None:
            if where == "run":
                self.ensure_runtime_dir()
            path = self.token_path(where)
        tmp = "%s/.%s.%s" % (os.path.dirname(path), os.path.basename(path), secrets.token_hex(4))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, (token + ("\n" if newline else "")).encode())
            os.fchown(fd, self.uid if owner is None else owner, self.gid if group is None else group)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        if path not in self.owner._files:
            self.owner._files.append(path)
        return path

    def remove_token(self, where="run", path=None):
        try:
            os.unlink(path or self.token_path(where))
        except FileNotFoundError:
            pass

    # -- running as the user ----------------------------------------------------------
    def env(self, **extra):
        """A clean environment for the user (no BEARER_TOKEN*, XDG_RUNTIME_DIR
        = /run/user/<uid>); @extra adds or (value None) removes variables."""
        e = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/", "USER": self.name, "LOGNAME": self.name,
             "LANG": "C.UTF-8", "XDG_RUNTIME_DIR": self.runtime_dir}
        for k, v in extra.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = str(v)
        return e

    def argv(self, argv):
        """@argv prefixed to run as this user: real/effective uid and gid,
        the user's supplementary groups, no capabilities."""
        return ["setpriv", "--reuid=%d" % self.uid, "--regid=%d" % self.gid, "--init-groups",
                "--inh-caps=-all", "--"] + list(argv)

    def popen(self, argv, env=None, **kw):
        """Popen as the user, in a new session (killed by process group at
        cleanup). @env: extra variables for env()."""
        kw.setdefault("cwd", "/")
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(self.argv(argv), env=self.env(**(env or {})), start_new_session=True, **kw)
        self.owner._procs.append(p)
        return p

    def run(self, argv, env=None, input=None, timeout=60, check=False, text=False):
        """Run as the user and wait (the process group is killed on
        timeout): CompletedProcess with stdout/stderr."""
        p = self.popen(argv, env=env, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=text)
        try:
            out, err = p.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            _killpg(p)
            out, err = p.communicate()
            raise AssertionError("%s as %s timed out after %ss" % (argv, self.name, timeout))
        r = subprocess.CompletedProcess(argv, p.returncode, out, err)
        if check and r.returncode != 0:
            raise AssertionError("%s as %s exited %d: %s" % (argv, self.name, r.returncode, err))
        return r


def _killpg(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class LocalUsers:
    """Creates users and groups; cleanup() (or leaving the `with`) removes
    every one of them and every file and directory it made."""

    def __init__(self, prefix="rfst"):
        self.prefix = prefix
        self.users = []
        self.groups = []
        self._files = []
        self._made_dirs = []
        self._procs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    def _name(self):
        return self.prefix + secrets.token_hex(4)

    def add(self, groups=()):
        """A new user (own primary group, no home, nologin shell), member
        of the local @groups."""
        name = self._name()
        argv = ["useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                "--user-group", "--comment", COMMENT]
        if groups:
            argv += ["--groups", ",".join(groups)]
        _retry(argv + [name], "useradd " + name)
        u = LocalUser(self, name)
        self.users.append(u)
        return u

    def add_group(self):
        """A new local group; its name."""
        name = self._name()
        _retry(["groupadd", name], "groupadd " + name)
        self.groups.append(name)
        return name

    def cleanup(self):
        """Kill what we started as the users, remove their token files,
        the runtime dirs we made, the users and the groups. Every step is
        tried; the first error is raised at the end."""
        errors = []

        def attempt(fn, *a):
            try:
                fn(*a)
            except Exception as e:     # keep cleaning up; report afterwards
                errors.append(e)

        for p in self._procs:
            attempt(_killpg, p)
        for p in self._procs:
            attempt(p.wait, 10)
        self._procs = []
        for u in self.users:
            for where in ("run", "tmp"):
                attempt(u.remove_token, where)
        for path in self._files:
            attempt(_unlink, path)
        self._files = []
        for d in reversed(self._made_dirs):
            attempt(_rmtree_dir, d)
        self._made_dirs = []
        for u in self.users:
            attempt(_retry, ["userdel", u.name], "userdel " + u.name)
        self.users = []
        for g in self.groups:
            attempt(_retry, ["groupdel", g], "groupdel " + g)
        self.groups = []
        if errors:
            raise errors[0]

    @staticmethod
    def exists(name):
        try:
            pwd.getpwnam(name)
            return True
        except KeyError:
            try:
                grp.getgrnam(name)
                return True
            except KeyError:
                return False


def _unlink(path):
    try:
        os.unlink(path)
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise


def _rmtree_dir(d):
    """A runtime dir we made: its files (tokens, leftovers) then itself."""
    if not os.path.isdir(d) or os.path.islink(d):
        return
    for n in os.listdir(d):
        p = os.path.join(d, n)
        if os.path.isdir(p) and not os.path.islink(p):
            _rmtree_dir(p)
        else:
            os.unlink(p)
    os.rmdir(d)
