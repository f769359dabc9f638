#!/bin/bash
# House rules a machine can check: libfuse's clang-format layout, and
# dependencies that point one way (only fuse/ sees FUSE; cache/ sees
# neither FUSE nor transports; nothing below core/ sees core/).
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
# the control socket is a client of the core's public API, not a part of it
bad=$(grep -lE '#include *"core/' src/ctl/*.[ch] 2>/dev/null | xargs -r grep -lE '#include *"core/[^f]|#include *"core/f[^s]' 2>/dev/null)
if [ -n "$bad" ]; then
	echo "style: src/ctl may include core/fs.h only: $bad"
	rc=1
fi
if [ -d cache ]; then
	bad=$(grep -lE '#include *"(transport|catalog)/' cache/*.[ch] 2>/dev/null)
	[ -z "$bad" ] || { echo "style: cache/ must not know transports: $bad"; rc=1; }
fi
exit $rc
