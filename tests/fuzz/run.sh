#!/bin/sh
# Builds every libFuzzer target tests/fuzz/fuzz_*.c with clang and runs each
# for the given number of seconds (default 60), corpus in tests/fuzz/corpus/<name>.
set -eu
secs=${1:-60}
cd "$(dirname "$0")/../.."
mkdir -p build/fuzz
found=0
for src in tests/fuzz/fuzz_*.c; do
	[ -e "$src" ] || continue
	found=1
	name=$(basename "$src" .c)
	make --no-print-directory build/fuzz/$name
	mkdir -p "tests/fuzz/corpus/$name" "build/fuzz/$name.work"
	echo "== $name for ${secs}s"
	build/fuzz/$name -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		"build/fuzz/$name.work" "tests/fuzz/corpus/$name"
done
[ $found -eq 1 ] || { echo "no fuzz targets"; exit 1; }
