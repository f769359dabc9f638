#!/bin/bash
# House rules a machine can check: libfuse's clang-format layout, and
# dependencies that point one way (only fuse/ sees FUSE; cache/ sees
# neither FUSE nor transports; nothing below core/ sees core/; transports
# and the catalogue do not see each other; only the HTTP code sees curl).
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
rc=0
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find src fuse cache tests -name '*.[ch]')
if command -v clang-format >/dev/null; then
	if ! clang-format --dry-run -Werror $files 2>/tmp/rfs-format.$$; then
		head -40 /tmp/rfs-format.$$
		echo "style: run clang-format -i on the files above"
		rc=1
	fi
	rm -f /tmp/rfs-format.$$
fi
# bench/ceiling.c is not ruciofs: the benchmark's own minimal FUSE fs
bad=$(grep -lE '#include *[<"]fuse' $(echo "$files" | tr ' ' '\n' | grep -v -e '^fuse/' -e '^bench/') 2>/dev/null)
if [ -n "$bad" ]; then
	echo "style: only fuse/ may include FUSE headers: $bad"
	rc=1
fi
for dir in src/util src/conf src/catalog src/transport src/authz cache; do
	[ -d "$dir" ] || continue
	bad=$(grep -lE '#include *"core/' "$dir"/*.[ch] 2>/dev/null)
	if [ -n "$bad" ]; then
		echo "style: $dir must not include core/: $bad"
		rc=1
	fi
done
# reject WHY ERE FILE...: the files that include a header matching ERE
reject() {
	local why=$1 re=$2 bad
	shift 2
	[ $# -gt 0 ] || return 0 # grep would read stdin
	bad=$(grep -lE "#include *[<\"]($re)" "$@" 2>/dev/null | tr '\n' ' ')
	if [ -n "$bad" ]; then
		echo "style: $why: $bad"
		rc=1
	fi
}
# the FUSE layer and the control socket are clients of the core's public
# API, not parts of it
for dir in fuse src/ctl; do
	bad=$(grep -HE '#include *"core/' "$dir"/*.[ch] 2>/dev/null |
		grep -v '"core/fs\.h"' | cut -d: -f1 | sort -u | tr '\n' ' ')
	if [ -n "$bad" ]; then
		echo "style: $dir may include core/fs.h only: $bad"
		rc=1
	fi
done
reject "cache/ must not know transports" '(transport|catalog)/' cache/*.[ch]
# a transport is handed what it needs, the catalogue reads no bytes
reject "transports must not know the catalogue, authz or the core" \
	'(catalog|authz|core)/' src/transport/*.[ch]
reject "the catalogue must not know transports" 'transport/' src/catalog/*.[ch]
# libcurl stays behind the HTTP utilities, the HTTP transport and the
# catalogue (util/http_client.h includes curl.h); the tests may use it
curl_ok='^(src/util/http_client\.[ch]|src/util/errmap_curl\.c|src/transport/http\.c|src/catalog/catalog\.c)$'
reject "only the HTTP code may include curl" 'curl/|util/http_client\.h' \
	$(echo "$files" | tr ' ' '\n' | grep -E '^(src|fuse|cache)/' |
		grep -vE "$curl_ok")
# credentials are found and renewed in authz/ alone: the catalogue and
# the transports are handed an identity and never fetch a token
bad=$(grep -lE 'rfs_token_source_|rfs_token_jwt_exp' \
	$(echo "$files" | tr ' ' '\n' | grep -E '^(src|fuse|cache)/' |
		grep -v '^src/authz/') 2>/dev/null | tr '\n' ' ')
if [ -n "$bad" ]; then
	echo "style: only src/authz/ may look for tokens: $bad"
	rc=1
fi
# the insides of authz (shared helpers, parsers, test hooks) stay there:
# an authz *_int.h is for src/authz/ and the tests, and the daemon never
# puts test directories or a test reader in place of the real ones
src_files=$(echo "$files" | tr ' ' '\n' | grep -E '^(src|fuse|cache)/')
bad=$(grep -lE '#include *"authz/[a-z_]+_int\.h"' \
	$(echo "$src_files" | grep -v '^src/authz/') 2>/dev/null | tr '\n' ' ')
if [ -n "$bad" ]; then
	echo "style: only src/authz/ and tests/ may include authz/*_int.h: $bad"
	rc=1
fi
bad=$(grep -l 'rfs_discovery_set_hooks' $(echo "$src_files" |
	grep -vE '^src/authz/discover(\.c|_int\.h)$') 2>/dev/null | tr '\n' ' ')
if [ -n "$bad" ]; then
	echo "style: rfs_discovery_set_hooks is for tests only: $bad"
	rc=1
fi
exit $rc
