#!/bin/bash
# One-command set-up for a fresh Debian 12 machine (run as root):
#   packaging/setup.sh demo   install, build, start the demo lake, mount it
#   packaging/setup.sh test   install, build, run every test suite
#   packaging/setup.sh bench  install the peers too, build, run bench/run.sh
#   packaging/setup.sh demo-shared   the demo as one root mount shared by
#                             two local users with their own IAM tokens
#   packaging/setup.sh packages   the release tarball, .deb and .rpm in
#                             packaging/out/ (CI installs and mounts the .deb)
#   packaging/setup.sh stop   unmount the demo and stop its servers
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# Runtime and build needs, then what the tests start (nginx, xrootd),
# check with (pytest, clang for fuzzing) and poke with (attr, rsync,
# strace: a test counts the syscalls ls makes; mandoc and man-db: the
# man pages are linted and rendered).
PACKAGES="build-essential autoconf automake pkg-config
	libfuse3-dev fuse3 libcurl4-openssl-dev liblmdb-dev libssl-dev
	libjansson-dev
	ca-certificates openssl curl python3 python3-pytest
	nginx-light xrootd-server xrootd-client xrootd-scitokens-plugins
	attr rsync strace procps psmisc clang mandoc man-db"

DEMO_DIR=${RUCIOFS_DEMO_DIR:-/var/tmp/ruciofs-demo}
DEMO_MNT=${RUCIOFS_DEMO_MNT:-/mnt/ruciofs}

say() { printf '==> %s\n' "$*"; }

install_packages() {
	local missing=""
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q "install ok installed" || missing="$missing $p"
	done
	if [ -z "$missing" ]; then
		say "packages: all present"
		return
	fi
	say "installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# nginx's package would start a server on port 80: we never use it
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
	rm -f /usr/sbin/policy-rc.d
}

build() {
	say "building in $top/build"
	[ -x configure ] || autoreconf -fi >/dev/null
	mkdir -p build
	if [ ! -f build/Makefile ]; then
		(cd build && ../configure -q)
	fi
	make -C build -j"$(nproc)" >/dev/null
}

demo() {
	install_packages
	build
	stop_demo quiet
	say "starting the demo lake in $DEMO_DIR (first time: generating ~450 MB of sample data)"
	/usr/bin/python3 tests/servers/lake.py start --workdir "$DEMO_DIR" \
		--profile demo
	mkdir -p "$DEMO_MNT"
	say "mounting on $DEMO_MNT"
	build/ruciofs -o rucio_config="$DEMO_DIR/rucio.cfg" "$DEMO_MNT"
	cat <<EOT

The demo lake is mounted on $DEMO_MNT. Try:
    ls $DEMO_MNT
    ls -l $DEMO_MNT/cta
    find $DEMO_MNT -maxdepth 3 | head -30
    getfattr -d \$(find $DEMO_MNT -type f -name '*.fits' | head -1)
    md5sum \$(find $DEMO_MNT -type f -name '*.fits' | head -1)
    build/ruciofs-ctl prefetch --pin $DEMO_MNT/lsst/images
    build/ruciofs-ctl status
Stop it with: packaging/setup.sh stop
EOT
}

# The shared demo's two local users: each an IAM subject of the demo
# issuer, each in one IAM group whose data the token store grants.
SHARED_USERS="rfs-alice:alice:/escape/cta:rfs-cta rfs-bob:bob:/escape/lsst:rfs-lsst"
SHARED_GECOS="ruciofs demo user"

demo_users() {
	local u sub grp lgrp
	for e in $SHARED_USERS; do
		IFS=: read -r u sub grp lgrp <<<"$e"
		getent group "$lgrp" >/dev/null || groupadd "$lgrp"
		if ! getent passwd "$u" >/dev/null; then
			useradd -M -d /nonexistent -s /bin/bash -c "$SHARED_GECOS" \
				-g "$lgrp" "$u"
		elif [ "$(getent passwd "$u" | cut -d: -f5)" != "$SHARED_GECOS" ]; then
			echo "a user '$u' exists and is not the demo's: not touching it" >&2
			exit 1
		fi
	done
}

# A 12-hour token per user in /tmp/bt_u<uid>, where WLCG bearer-token
# discovery looks when there is no /run/user/<uid>.
demo_tokens() {
	local u sub grp lgrp uid
	for e in $SHARED_USERS; do
		IFS=: read -r u sub grp lgrp <<<"$e"
		uid=$(id -u "$u")
		/usr/bin/python3 tests/servers/jwt_issuer.py mint \
			--key-dir "$TOKEN_ISSUER_KEY_DIR" --issuer "$TOKEN_ISSUER" \
			--sub "$sub" --group "$grp" --lifetime 43200 \
			--aud https://wlcg.cern.ch/jwt/v1/any --scope "openid profile" |
			install -m 0600 -o "$u" -g "$lgrp" /dev/stdin "/tmp/bt_u$uid"
	done
}

demo_idmap() {
	cat >"$DEMO_DIR/idmap" <<EOT
# IAM groups and subjects of the demo issuer -> local groups and users
group   /escape/cta    rfs-cta
group   /escape/lsst   rfs-lsst
user    alice          rfs-alice
user    bob            rfs-bob
account alice          rfs-alice
account bob            rfs-bob
# Rucio scopes -> the IAM group that owns them
scope   cta            /escape/cta
scope   lsst           /escape/lsst
EOT
	chmod 0644 "$DEMO_DIR/idmap"
}

demo_shared() {
	install_packages
	build
	stop_demo quiet
	say "starting the demo lake with an IAM issuer and token-checking storage"
	/usr/bin/python3 tests/servers/lake.py start --workdir "$DEMO_DIR" \
		--profile demo --tokens
	# shellcheck disable=SC1091
	. "$DEMO_DIR/lake.env"
	say "local users rfs-alice (IAM group /escape/cta) and rfs-bob (/escape/lsst), with tokens"
	demo_users
	demo_tokens
	demo_idmap
	mkdir -p "$DEMO_MNT"
	say "mounting on $DEMO_MNT, shared (allow_other), each caller with their own token"
	build/ruciofs -o allow_other,rucio_config="$DEMO_DIR/rucio.cfg" \
		-o token_issuer="$TOKEN_ISSUER",idmap="$DEMO_DIR/idmap" "$DEMO_MNT"
	cta=$DEMO_MNT/cta/calib.dat
	lsst=$DEMO_MNT/lsst/images/image.fits
	cat <<EOT

The demo lake is mounted on $DEMO_MNT, shared by two local users. Its
files are only on storage that checks tokens (xrootd + scitokens): the
group /escape/cta may read the scope cta, /escape/lsst the scope lsst.
    runuser -u rfs-alice -- md5sum $cta    # alice: cta, allowed
    runuser -u rfs-bob -- md5sum $cta      # bob: Permission denied
    runuser -u rfs-bob -- md5sum $lsst     # bob: lsst, allowed
    runuser -u rfs-alice -- md5sum $lsst   # alice: Permission denied
    runuser -u rfs-bob -- ls -l $DEMO_MNT/cta $DEMO_MNT/lsst/images
    md5sum $cta    # root without a token reads as the mount
Stop it with: packaging/setup.sh stop
EOT
}

stop_demo() {
	if grep -qs " $DEMO_MNT fuse.ruciofs" /proc/mounts; then
		fusermount3 -u "$DEMO_MNT" || fusermount3 -u -z "$DEMO_MNT"
	fi
	if [ -f "$DEMO_DIR/pids" ]; then
		/usr/bin/python3 tests/servers/lake.py stop --workdir "$DEMO_DIR"
	fi
	local u rest uid
	for e in $SHARED_USERS; do
		u=${e%%:*}
		rest=${e##*:}
		[ "$(getent passwd "$u" | cut -d: -f5)" = "$SHARED_GECOS" ] || continue
		uid=$(id -u "$u")
		rm -f "/tmp/bt_u$uid"
		userdel "$u" || true
		groupdel "$rest" 2>/dev/null || true
	done
	[ "${1:-}" = quiet ] || say "demo stopped"
}

tests() {
	install_packages
	build
	exec tests/run-all.sh
}

# Debian's tools build both packages; mandoc and man-db check the pages.
PKG_TOOLS="debhelper dpkg-dev fakeroot rpm lintian mandoc man-db"
OUT=$top/packaging/out

# The release tarball, then a .deb from it (packaging/debian copied in)
# and an .rpm (packaging/ruciofs.spec, shipped in the tarball). The unit
# tests ran in the build already: the package builds skip them.
packages() {
	PACKAGES="$PACKAGES $PKG_TOOLS"
	install_packages
	build
	local t0 version tarball deb rpmtop
	version=$(sed -n 's/^PACKAGE_VERSION=.\(.*\).$/\1/p' configure)
	tarball=ruciofs-$version.tar.gz
	rm -rf "$OUT"
	mkdir -p "$OUT"
	t0=$(date +%s)
	say "release tarball: make dist"
	make -C build dist >/dev/null
	mv "build/$tarball" "$OUT/"
	say "  $tarball ($(($(date +%s) - t0)) s)"

	t0=$(date +%s)
	say "Debian package: dpkg-buildpackage -us -uc -b"
	deb=$OUT/deb
	mkdir -p "$deb"
	tar -xzf "$OUT/$tarball" -C "$deb"
	cp -r packaging/debian "$deb/ruciofs-$version/debian"
	cp "$OUT/$tarball" "$deb/ruciofs_$version.orig.tar.gz"
	(cd "$deb/ruciofs-$version" &&
		DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
			dpkg-buildpackage -us -uc -b) >"$OUT/deb-build.log" 2>&1 || {
		tail -n 40 "$OUT/deb-build.log"
		exit 1
	}
	mv "$deb"/*.deb "$deb"/*.buildinfo "$deb"/*.changes "$OUT/"
	say "  $(cd "$OUT" && ls ruciofs_*.deb) ($(($(date +%s) - t0)) s)"
	if command -v lintian >/dev/null; then
		lintian --no-tag-display-limit "$OUT"/ruciofs_*.deb \
			>"$OUT/lintian.txt" 2>&1 || true
		say "  lintian: $(grep -c '^E:' "$OUT/lintian.txt") errors, $(grep -c '^W:' "$OUT/lintian.txt") warnings ($OUT/lintian.txt)"
	fi

	t0=$(date +%s)
	say "RPM: rpmbuild -tb --nodeps (Debian's rpm has no RPM database of the build dependencies)"
	rpmtop=$OUT/rpmbuild
	mkdir -p "$rpmtop"
	rpmbuild -tb --nodeps --nocheck --define "_topdir $rpmtop" \
		"$OUT/$tarball" >"$OUT/rpm-build.log" 2>&1 || {
		tail -n 40 "$OUT/rpm-build.log"
		exit 1
	}
	find "$rpmtop/RPMS" -name '*.rpm' -exec mv {} "$OUT/" \;
	say "  $(cd "$OUT" && ls ./*.rpm) ($(($(date +%s) - t0)) s)"
	rm -rf "$deb" "$rpmtop"
	say "packages in $OUT"
}

# The peers the benchmark compares against; not needed by ruciofs.
bench() {
	PACKAGES="$PACKAGES rclone httpdirfs davfs2 libnginx-mod-http-dav-ext xrootd-fuse"
	install_packages
	build
	shift
	exec bench/run.sh "$@"
}

case "${1:-}" in
demo) demo ;;
demo-shared) demo_shared ;;
test) tests ;;
bench) bench "$@" ;;
packages) packages ;;
stop) stop_demo ;;
*)
	echo "usage: $0 demo|demo-shared|test|bench|packages|stop" >&2
	exit 2
	;;
esac
