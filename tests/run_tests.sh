#!/usr/bin/env bash
# Runs each cmocka test program given as an argument from the repository root,
# and closes with the plain line "N passed, N failed, N skipped" over all of
# their tests (every group of every program). MELODIC_NO_AVX512=1 in the
# environment runs the portable kernels; the line then says so.
set -u
cd "$(dirname "$0")/.."
passed=0; failed=0; skipped=0; bad_suites=()
for t in "$@"; do
  out=$("$t" 2>&1); rc=$?
  printf '%s\n' "$out"
  # a program may run several groups, each closing with its own summary: add them all
  sum() { printf '%s\n' "$out" | sed -n "s/^\[  $1 *\] \([0-9]*\) test.*/\1/p" | awk '{s += $1; n++} END {if (n) print s}'; }
  p=$(sum PASSED); f=$(sum FAILED); s=$(sum SKIPPED)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
  if [ $rc -ne 0 ] || [ -z "$p$f" ]; then
    [ -z "$f" ] && failed=$((failed + 1))
    bad_suites+=("$t")
  fi
done
[ ${#bad_suites[@]} -gt 0 ] && echo "failing suites: ${bad_suites[*]}"
path=""
[ -n "${MELODIC_NO_AVX512:-}" ] && [ "${MELODIC_NO_AVX512}" != 0 ] && path=" (portable kernels: MELODIC_NO_AVX512=1)"
echo "$passed passed, $failed failed, $skipped skipped$path"
[ $failed -eq 0 ] && [ ${#bad_suites[@]} -eq 0 ]
