#!/usr/bin/env bash
# Build every libFuzzer target tests/fuzz/fuzz_*.c (clang, ASan + UBSan) against
# the engine's sources and run each for FUZZ_SECONDS (default 20) from its seed
# corpus tests/fuzz/corpus_<name>/. A crash leaves its input in build-fuzz/;
# turn it into a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-20}
out=build-fuzz
mkdir -p "$out"
PKG="$(grep "^PKGS :=" Makefile | cut -d= -f2)"
CFLAGS="-g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -Isrc -D_GNU_SOURCE -fopenmp=libgomp $(pkg-config --cflags $PKG)"
# objects are reused while no header changed (a changed struct in a header must
# rebuild every object that includes it: a stale one reads past the new layout)
hdrs=$(find src -name '*.h' | sort | xargs cat | sha256sum | cut -c1-16)
if [ "$(cat "$out/obj/.headers" 2>/dev/null)" != "$hdrs" ]; then rm -rf "$out/obj"; fi
mkdir -p "$out/obj"
echo "$hdrs" > "$out/obj/.headers"
objs=()
for f in $(find src -name '*.c' ! -path 'src/cli/*' | sort); do
  o="$out/obj/${f%.c}.o"; mkdir -p "$(dirname "$o")"
  if [ ! -f "$o" ] || [ "$f" -nt "$o" ]; then clang $CFLAGS -c "$f" -o "$o"; fi
  objs+=("$o")
done
status=0
for t in tests/fuzz/fuzz_*.c; do
  [ -e "$t" ] || continue
  name=$(basename "$t" .c); name=${name#fuzz_}
  bin="$out/fuzz_$name"
  clang $CFLAGS -fsanitize=fuzzer "$t" -Wl,--whole-archive "${objs[@]}" -Wl,--no-whole-archive \
    $(pkg-config --libs $PKG) -lgomp -lm -lpthread -o "$bin"
  corpus="tests/fuzz/corpus_$name"; work="$out/corpus_$name"
  mkdir -p "$work"
  echo "== fuzz $name for ${secs}s"
  if ! (cd "$out" && "./fuzz_$name" -max_total_time="$secs" -rss_limit_mb=4096 -timeout=10 \
        "corpus_$name" "../$corpus" > "fuzz_$name.log" 2>&1); then
    echo "fuzz $name: FAILED (see $out/fuzz_$name.log and the crash-* file in $out)"; status=1
  else
    tail -1 "$out/fuzz_$name.log"
  fi
done
exit $status
