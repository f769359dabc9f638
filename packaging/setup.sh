#!/bin/bash
# One-command set-up for a fresh Debian 12 machine (run as root):
#   packaging/setup.sh demo   install, build, start the demo lake, mount it
#   packaging/setup.sh test   install, build, run every test suite
#   packaging/setup.sh bench  install the peers too, build, run bench/run.sh
#   packaging/setup.sh stop   unmount the demo and stop its servers
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

# Runtime and build needs, then what the tests start (nginx, xrootd),
# check with (pytest, clang for fuzzing) and poke with (attr, rsync,
# strace: a test counts the syscalls ls makes).
PACKAGES="build-essential autoconf automake pkg-config
	libfuse3-dev fuse3 libcurl4-openssl-dev liblmdb-dev libssl-dev
	libjansson-dev
	ca-certificates openssl curl python3 python3-pytest
	nginx-light xrootd-server xrootd-client xrootd-scitokens-plugins
	attr rsync strace procps psmisc clang"

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

stop_demo() {
	if grep -qs " $DEMO_MNT fuse.ruciofs" /proc/mounts; then
		fusermount3 -u "$DEMO_MNT" || fusermount3 -u -z "$DEMO_MNT"
	fi
	if [ -f "$DEMO_DIR/pids" ]; then
		/usr/bin/python3 tests/servers/lake.py stop --workdir "$DEMO_DIR"
	fi
	[ "${1:-}" = quiet ] || say "demo stopped"
}

tests() {
	install_packages
	build
	exec tests/run-all.sh
}

# The peers the benchmark compares against; not needed by ruciofs.
bench() {
	PACKAGES="$PACKAGES rclone httpdirfs davfs2 libnginx-mod-http-dav-ext"
	install_packages
	build
	shift
	exec bench/run.sh "$@"
}

case "${1:-}" in
demo) demo ;;
test) tests ;;
bench) bench "$@" ;;
stop) stop_demo ;;
*)
	echo "usage: $0 demo|test|bench|stop" >&2
	exit 2
	;;
esac
