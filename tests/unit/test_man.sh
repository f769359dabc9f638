#!/bin/sh
# The man pages: every option of src/conf/conf.c's table is described in
# ruciofs(8) (an entry ".BI name=" or ".B name..." of its own), and both
# pages are clean: mandoc -T lint says nothing, lexgrog finds their NAME
# line, and man renders them at 80 columns without a warning. Without
# mandoc or man the lint checks are skipped (exit 77 when nothing ran).
s=${top_srcdir:-.}
conf=$s/src/conf/conf.c
pages="$s/man/ruciofs.8 $s/man/ruciofs-ctl.1"
n=0
bad=0

fail() {
	bad=$((bad + 1))
	echo "not ok $n - $1"
}

opts=$(sed -n 's/^[[:space:]]*OPT("\([a-z_0-9]*\)",.*/\1/p' "$conf")
[ -n "$opts" ] || { echo "no options found in $conf"; exit 1; }
for o in $opts; do
	n=$((n + 1))
	grep -Eq "^\.BI? \"?$o(=|\"|[[:space:]]|$)" "$s/man/ruciofs.8" ||
		fail "option '$o' of conf.c has no entry in man/ruciofs.8"
done

ran=0
for p in $pages; do
	if command -v mandoc >/dev/null; then
		n=$((n + 1)); ran=1
		out=$(mandoc -T lint "$p" 2>&1)
		[ -z "$out" ] || fail "mandoc -T lint $p: $out"
	fi
	if command -v lexgrog >/dev/null; then
		n=$((n + 1)); ran=1
		lexgrog "$p" >/dev/null 2>&1 || fail "lexgrog finds no NAME in $p"
	fi
	if command -v man >/dev/null; then
		n=$((n + 1)); ran=1
		out=$(MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null)
		[ -z "$out" ] || fail "man --warnings -l $p: $out"
	fi
done
[ $ran = 1 ] || echo "# mandoc, lexgrog and man missing: pages not linted"
echo "$((n - bad)) of $n checks passed"
[ $bad = 0 ]
