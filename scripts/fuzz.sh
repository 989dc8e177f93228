#!/usr/bin/env bash
# Build every libFuzzer target tests/fuzz/fuzz_*.c (clang, ASan + UBSan) against
# the engine's sources and run each for FUZZ_SECONDS (default 20) from its seed
# corpus tests/fuzz/corpus_<name>/. A crash leaves its input in build-fuzz/;
# turn it into a regression test. FUZZ_TARGETS="bundle cfg" limits the run to
# those targets (default: all). Whole-file HDF5 targets run in fork mode and
# separate crashes inside libhdf5 (listed, kept) from crashes in our code
# (which fail the run).
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
# targets whose input is a whole HDF5 file handed to libhdf5 (see below)
HDF5_FILE_TARGETS="bundle library_file"
status=0
for t in tests/fuzz/fuzz_*.c; do
  [ -e "$t" ] || continue
  name=$(basename "$t" .c); name=${name#fuzz_}
  if [ -n "${FUZZ_TARGETS:-}" ] && ! [[ " $FUZZ_TARGETS " == *" $name "* ]]; then continue; fi
  bin="$out/fuzz_$name"
  clang $CFLAGS -fsanitize=fuzzer "$t" -Wl,--whole-archive "${objs[@]}" -Wl,--no-whole-archive \
    $(pkg-config --libs $PKG) -lgomp -lm -lpthread -o "$bin"
  corpus="tests/fuzz/corpus_$name"; work="$out/corpus_$name"
  mkdir -p "$work"
  echo "== fuzz $name for ${secs}s"
  case " $HDF5_FILE_TARGETS " in
  *" $name "*)
    # Whole HDF5 files: libhdf5 1.10 (Debian 12) itself crashes on some corrupt files
    # before our code sees them. Fork mode keeps fuzzing past crashes; each one is
    # then classified by its stack: ours (a frame in src/ or tests/ before any
    # libhdf5 frame) fails the run, libhdf5's is listed with its input in
    # $out/hdf5_$name/ and counted, not failed.
    art="$out/artifacts_$name/"; rm -rf "$art"; mkdir -p "$art"
    (cd "$out" && "./fuzz_$name" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
       -max_total_time="$secs" -rss_limit_mb=4096 -timeout=10 -artifact_prefix="artifacts_$name/" \
       "corpus_$name" "../$corpus" > "fuzz_$name.log" 2>&1) || true
    ours=0; theirs=0; other=0
    mkdir -p "$out/hdf5_$name"
    other=$(find "$art" \( -name 'timeout-*' -o -name 'oom-*' -o -name 'slow-unit-*' \) | wc -l)
    for crash in "$art"crash-* "$art"leak-*; do
      [ -f "$crash" ] || continue
      trace=$( { (cd "$out" && "./fuzz_$name" "../$crash" 2>&1) | grep -E '^ *#[0-9]+ ' | head -40; } || true)
      first=$(printf '%s\n' "$trace" | grep -vE 'sanitizer_common|asan_|ubsan_|libc\.so|libFuzzer|fuzzer::|__interceptor|/interception/|sysdeps/|__mem(cpy|move|set)' \
              | head -1 || true)
      if printf '%s\n' "$first" | grep -q 'libhdf5'; then
        theirs=$((theirs + 1)); cp "$crash" "$out/hdf5_$name/"
      elif [ -n "$first" ]; then
        ours=$((ours + 1)); echo "fuzz $name: a crash in our code: $crash"; printf '%s\n' "$trace" | head -12
      else
        echo "fuzz $name: $crash did not crash again when rerun (kept)"
      fi
    done
    if [ "$ours" -gt 0 ]; then
      echo "fuzz $name: FAILED ($ours crashes in our code; see $out/fuzz_$name.log)"; status=1
    else
      echo "fuzz $name: no crash in our code; $theirs inputs crash inside libhdf5 itself (kept in $out/hdf5_$name/), $other timeouts or out-of-memory inputs (in $art)"
    fi
    ;;
  *)
    if ! (cd "$out" && "./fuzz_$name" -max_total_time="$secs" -rss_limit_mb=4096 -timeout=10 \
          "corpus_$name" "../$corpus" > "fuzz_$name.log" 2>&1); then
      echo "fuzz $name: FAILED (see $out/fuzz_$name.log and the crash-* file in $out)"; status=1
    else
      tail -1 "$out/fuzz_$name.log"
    fi
    ;;
  esac
done
exit $status
