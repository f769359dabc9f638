#!/bin/bash
# The whole test suite, as CI runs it. Each stage adds its counts; the last
# line is "N passed, N failed, N skipped" and the exit status is non-zero on
# failure. A check this machine cannot run is skipped, never passed.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc)
passed=0
failed=0
skipped=0
failures=()

stage() { printf '\n==== %s ====\n' "$*"; }

count() { # count NAME PASSED FAILED [SKIPPED]
	passed=$((passed + $2))
	failed=$((failed + $3))
	skipped=$((skipped + ${4:-0}))
	[ "$3" -eq 0 ] || failures+=("$1: $3 failed")
	printf -- '-- %s: %d passed, %d failed, %d skipped\n' "$1" "$2" "$3" \
		"${4:-0}"
}

# Unit-test checks, from the "# name: N checks, M failed, K skipped" lines
# (K: groups of checks this machine could not run, see UNIT_SKIP).
count_unit() { # count_unit LABEL BUILDDIR
	local p=0 f=0 s=0 n m k
	while read -r _ _ n _ m _ k _; do
		p=$((p + n - m))
		f=$((f + m))
		s=$((s + k))
	done < <(cat "$2"/tests/unit/*.log 2>/dev/null |
		grep -E '^# [a-z_]+: [0-9]+ checks, [0-9]+ failed, [0-9]+ skipped$')
	# a unit program that crashed prints no summary: count it as failed
	for trs in "$2"/tests/unit/*.trs; do
		grep -q ':test-result: PASS' "$trs" || {
			grep -q 'checks,' "${trs%.trs}.log" || f=$((f + 1))
		}
	done
	count "$1" "$p" "$f" "$s"
}

# Programs of automake's harness outside tests/unit (the corpus replays).
count_trs() { # count_trs LABEL DIR
	local p f s
	p=$(grep -l ':test-result: PASS' "$2"/*.trs 2>/dev/null | wc -l)
	f=$(grep -lE ':test-result: (FAIL|ERROR)' "$2"/*.trs 2>/dev/null | wc -l)
	s=$(grep -l ':test-result: SKIP' "$2"/*.trs 2>/dev/null | wc -l)
	count "$1" "$p" "$f" "$s"
}

count_junit() { # count_junit LABEL FILE
	if [ ! -f "$2" ]; then
		count "$1" 0 1
		return
	fi
	read -r t fl e s < <(/usr/bin/python3 - "$2" <<'PY'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
suites = [r] if r.tag == "testsuite" else list(r)
get = lambda k: sum(int(x.get(k, 0)) for x in suites)
print(get("tests"), get("failures"), get("errors"), get("skipped"))
PY
)
	count "$1" $((t - fl - e - s)) $((fl + e)) "$s"
}

stage "style: clang-format and module boundaries"
if tests/check-style.sh; then count style 1 0; else count style 0 1; fi

stage "build and make check (unit + integration tests)"
rm -f build/integration-junit.xml
make -C build -j"$jobs" >/dev/null && make -C build -j"$jobs" check VERBOSE=1 \
	>build/check.out 2>&1
tail -n 40 build/check.out
count_unit "unit tests" build
count_trs "fuzz corpus replays" build/tests/fuzz
count_junit "integration tests" build/integration-junit.xml

stage "sanitizers (ASan+UBSan): unit tests, corpora, integration smoke"
mkdir -p build-asan
(cd build-asan && { [ -f Makefile ] || ../configure -q --enable-sanitizers; }) &&
	make -C build-asan -j"$jobs" >/dev/null 2>&1
rm -f build-asan/integration-junit.xml
ASAN_OPTIONS=detect_leaks=1 RUCIOFS_PYTEST_K="${RUCIOFS_ASAN_PYTEST_K:-test_tree_matches or test_random_preads or test_xattrs or broken_catalogue or failover or startup_errors or oidc or test_cache or test_ctl or test_integrity or test_slow or test_connect}" \
	make -C build-asan -j"$jobs" check >build-asan/check.out 2>&1
tail -n 15 build-asan/check.out
count_unit "unit tests (asan)" build-asan
count_trs "fuzz corpus replays (asan)" build-asan/tests/fuzz
count_junit "integration smoke (asan)" build-asan/integration-junit.xml

if [ -x tests/fuzz/run-fuzzers.sh ] && command -v clang >/dev/null; then
	stage "fuzzing (libFuzzer, ${RUCIOFS_FUZZ_SECONDS:-15} s per target)"
	if tests/fuzz/run-fuzzers.sh "${RUCIOFS_FUZZ_SECONDS:-15}"; then
		count fuzzing 1 0
	else
		count fuzzing 0 1
	fi
fi

stage "packages: .deb and .rpm built, the .deb installed, mounted, removed"
rm -f build/packages-junit.xml
if [ "$(id -u)" != 0 ] || [ ! -e /dev/fuse ]; then
	echo "packages: need root (apt, dpkg, mount) and /dev/fuse"
	count packages 0 0 1
elif packaging/setup.sh packages >build/packages.out 2>&1; then
	tail -n 12 build/packages.out
	# one demo lake's data for both files of tests
	RUCIOFS_LAKE_CACHE=${RUCIOFS_LAKE_CACHE:-$top/build/lake-cache} \
		/usr/bin/python3 -m pytest -p no:cacheprovider -q -ra \
		--junitxml=build/packages-junit.xml tests/packaging \
		>>build/packages.out 2>&1
	tail -n 5 build/packages.out
	count_junit packages build/packages-junit.xml
else
	tail -n 30 build/packages.out
	count packages 0 1
fi

stage "make distcheck"
if RUCIOFS_SKIP_INTEGRATION=1 make -C build distcheck >build/distcheck.out 2>&1; then
	count distcheck 1 0
else
	tail -n 30 build/distcheck.out
	count distcheck 0 1
fi

stage "summary"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
