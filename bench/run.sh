#!/bin/sh
# One command for every benchmark: builds if needed, prints a markdown
# table (ratios against baselines measured in the same run). As root.
top=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$top/build/ruciofs" ] || make -C "$top/build" -j"$(nproc)" >/dev/null
exec /usr/bin/python3 "$top/bench/bench.py" "$@"
