#!/bin/sh
# cache/ speaks LMDB, not HTTP: nothing the cache needs may be built
# against libcurl. test_cache links the cache and exactly what it pulls
# from librfscore.a (Makefile.am gives it no curl library, and writes
# its link map); this checks that no object in that map was compiled
# with curl.h, and that the binary does not load libcurl either.
# Reports as tests/unit/unit.h does (unit_done).
b=${top_builddir:-.}
map=$b/tests/unit/test_cache.map
bin=$b/tests/unit/test_cache
n=0
bad=0

check() { # check OK DESCRIPTION
	n=$((n + 1))
	[ "$1" = 0 ] && return
	bad=$((bad + 1))
	echo "not ok $n - $2"
}

if [ ! -f "$map" ] || [ ! -x "$bin" ]; then
	echo "# no $map or $bin: build test_cache first"
	exit 99
fi
# the archive members the linker took; a name two sources share (the
# two http.o) stands for both, which can only make the check stricter
members=$(sed -n 's/.*librfscore\.a(\([^)]*\)\.o).*/\1/p' "$map" | sort -u)
if [ -z "$members" ]; then
	echo "# no librfscore.a member in $map"
	exit 99
fi
deps=$b/tests/unit/.deps/test_cache.Po
lost=
for m in $members; do
	po=$(find "$b/src" "$b/cache" -path "*/.deps/$m.Po")
	[ -n "$po" ] || lost="$lost $m.o"
	deps="$deps $po"
done
if ! grep -q '\.h' $deps; then
	echo "# skip: no dependency tracking in this build"
	echo "# cache_link: 0 checks, 0 failed, 1 skipped"
	exit 77
fi
curled=$(grep -l '/curl/curl\.h' $deps)
for f in $curled; do
	echo "# built with curl.h: $f"
done
[ -z "$lost" ] || echo "# no dependency file for:$lost"
check "$([ -z "$curled$lost" ]; echo $?)" "no object of test_cache sees curl.h"
needed=$(readelf -d "$bin" | grep 'NEEDED.*libcurl')
[ -z "$needed" ] || echo "# $needed"
check "$([ -z "$needed" ]; echo $?)" "test_cache does not load libcurl"
echo "# cache_link: $n checks, $bad failed, 0 skipped"
printf '1..1\n%s 1 - cache_link\n' "$([ "$bad" = 0 ] && echo ok || echo not ok)"
[ "$bad" = 0 ]
