#!/bin/sh
# Builds the libFuzzer targets with clang in a build directory of their own
# and runs each one for SECONDS (default 60), starting from its committed
# corpus. Fails if any target crashes, leaks, trips a sanitizer or breaks
# one of its invariants; the input that did it is kept as
# $BUILD/fuzz-out/<target>/crash-* (or leak-*, timeout-*, oom-*).
#
# usage: tests/fuzz/run-fuzzers.sh [SECONDS [TARGET...]]
# environment: FUZZ_BUILDDIR (default: <srcdir>/build-fuzz), CC (clang),
#              FUZZ_JOBS (make -j, default: nproc)
#
# New inputs libFuzzer finds go to $BUILD/fuzz-out/<target>/corpus, never
# into the committed corpus: add the interesting ones by hand (minimised
# with -merge=1) so the replays of "make check" stay small and readable.
set -eu

secs=${1:-60}
[ $# -gt 0 ] && shift
srcdir=$(cd "$(dirname "$0")/../.." && pwd)
build=${FUZZ_BUILDDIR:-$srcdir/build-fuzz}
cc=${CC:-clang}
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 2)}
all="fuzz_parse_dids fuzz_parse_replicas fuzz_parse_scopes fuzz_ini
fuzz_conf_args fuzz_content_range fuzz_url fuzz_time fuzz_names fuzz_net
fuzz_environ fuzz_idmap fuzz_jwt fuzz_jwks fuzz_multipart fuzz_notify_addr"
targets=${*:-$all}

case $secs in
'' | *[!0-9]*)
	echo "run-fuzzers: SECONDS must be a number, not '$secs'" >&2
	exit 2
	;;
esac

if [ ! -f "$build/Makefile" ]; then
	[ -x "$srcdir/configure" ] || (cd "$srcdir" && autoreconf -fi)
	mkdir -p "$build"
	(cd "$build" && "$srcdir/configure" --enable-fuzzing CC="$cc") \
		>"$build/configure.out" 2>&1 || {
		tail -n 20 "$build/configure.out" >&2
		echo "run-fuzzers: configure failed, see $build/config.log" >&2
		exit 1
	}
fi
"$build/config.status" --config | grep -q -- --enable-fuzzing || {
	echo "run-fuzzers: $build is not configured with --enable-fuzzing" >&2
	exit 1
}
make -C "$build" -j"$jobs" fuzz-targets >/dev/null

failed=""
for t in $targets; do
	bin=$build/tests/fuzz/$t
	seeds=$srcdir/tests/fuzz/corpus/$t
	out=$build/fuzz-out/$t
	[ -x "$bin" ] || {
		echo "run-fuzzers: no such target '$t'" >&2
		exit 2
	}
	mkdir -p "$out/corpus"
	dict=""
	[ -f "$srcdir/tests/fuzz/$t.dict" ] &&
		dict="-dict=$srcdir/tests/fuzz/$t.dict"
	echo "== $t: ${secs}s"
	# -timeout: a parser of a few KiB that takes 10 s is a bug too
	if (cd "$out" && "$bin" -max_total_time="$secs" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$out/" $dict corpus "$seeds") \
		>"$out/log" 2>&1; then
		grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' \
			"$out/log" | tail -n 2
	else
		echo "!! $t FAILED, log: $out/log"
		grep -E 'ERROR|SUMMARY|invariant failed|Test unit written' \
			"$out/log" | head -n 8
		failed="$failed $t"
	fi
done

if [ -n "$failed" ]; then
	echo "run-fuzzers: failed:$failed" >&2
	exit 1
fi
echo "run-fuzzers: all targets ran ${secs}s without a finding"
