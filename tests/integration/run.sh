#!/bin/sh
# Runs the integration tests (real mounts, real servers) under pytest.
# Called by `make check`; writes a JUnit report for the summary line.
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
export top_srcdir top_builddir
if [ -n "$RUCIOFS_SKIP_INTEGRATION" ]; then
	echo "integration tests skipped (RUCIOFS_SKIP_INTEGRATION)"
	exit 77
fi
if [ ! -e /dev/fuse ] || [ "$(id -u)" != 0 ]; then
	echo "integration tests need root and /dev/fuse"
	exit 77
fi
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=python3
# RUCIOFS_PYTEST_K selects tests by keyword expression (pytest -k)
set -- -p no:cacheprovider -q -ra \
	--junitxml="$top_builddir/integration-junit.xml"
[ -z "$RUCIOFS_PYTEST_K" ] || set -- "$@" -k "$RUCIOFS_PYTEST_K"
exec "$PYTHON" -m pytest "$@" "$here"
