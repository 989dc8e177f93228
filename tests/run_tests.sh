#!/usr/bin/env bash
# Runs each cmocka test program given as an argument from the repository root,
# and closes with the plain line "N passed, N failed" over all of their tests.
set -u
cd "$(dirname "$0")/.."
passed=0; failed=0; skipped=0; bad_suites=()
for t in "$@"; do
  out=$("$t" 2>&1); rc=$?
  printf '%s\n' "$out"
  p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
  f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
  s=$(printf '%s\n' "$out" | sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' | tail -1)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
  if [ $rc -ne 0 ] || [ -z "$p$f" ]; then
    [ -z "$f" ] && failed=$((failed + 1))
    bad_suites+=("$t")
  fi
done
[ ${#bad_suites[@]} -gt 0 ] && echo "failing suites: ${bad_suites[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ] && [ ${#bad_suites[@]} -eq 0 ]
