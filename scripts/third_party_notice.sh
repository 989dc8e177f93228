#!/usr/bin/env bash
# Writes third_party/NOTICE.md: every library the build links directly (the
# pkg-config packages of the Makefile's PKGS, plus OpenMP and libm), the
# Debian package that provides it, its version on this machine and its
# licence. Run after `make`; tests/check_third_party.sh checks the notice
# still names every library the binary needs directly.
set -eu   # (no pipefail: awk stops reading ldconfig early on purpose)
cd "$(dirname "$0")/.."
out=third_party/NOTICE.md
bin=${MELODIC_BIN:-build/melodic}
[ -x "$bin" ] || { echo "third_party_notice: $bin not built (run make)" >&2; exit 1; }
# soname → licence (from each package's debian/copyright)
declare -A lic=(
  [libopenblas]="BSD-3-Clause" [libsndfile]="LGPL-2.1+" [libfftw3f]="GPL-2+" [libhdf5_serial]="BSD-3-Clause-like (HDF5)"
  [libsoxr]="LGPL-2.1+" [libyaml-0]="MIT" [libsqlite3]="public domain" [libmicrohttpd]="LGPL-2.1+"
  [libjansson]="MIT" [libtag_c]="LGPL-2.1 or MPL-1.1 (TagLib)" [libtag]="LGPL-2.1 or MPL-1.1 (TagLib)" [libmpi]="BSD-3-Clause (Open MPI)" [libgomp]="GPL-3+ with GCC runtime exception"
  [libm]="LGPL-2.1+ (glibc)" [libc]="LGPL-2.1+ (glibc)" [ld-linux-x86-64]="LGPL-2.1+ (glibc)"
)
tmp=$out.tmp.$$
{
  echo "# External libraries linked by Melodic Mind"
  echo
  echo "Made by \`scripts/third_party_notice.sh\` from \`readelf -d $bin\` (the libraries the binary names itself,"
  echo "not their own dependencies) and \`dpkg\`. Versions are those of the machine that wrote this file"
  echo "(Debian 12); a build links what its machine has. No library's code is copied into the project."
  echo
  echo "| library (soname) | Debian package | version | licence |"
  echo "|---|---|---|---|"
  readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | sort | while read -r so; do
    path=$(ldconfig -p | awk -v s="$so" '$1 == s && /x86-64/ {print $NF; exit}')
    pkg=$( [ -n "$path" ] && dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1 || true)
    [ -z "$pkg" ] && [ -n "$path" ] && pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1 || true)
    ver=$( [ -n "$pkg" ] && dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || echo "?")
    base=${so%%.so*}
    echo "| $so | ${pkg:-?} | ${ver:-?} | ${lic[$base]:-see its Debian copyright file} |"
  done
  echo
  echo "FFTW3 is GPL-2+: a melodic binary that is distributed links it and so falls under the GPL (or FFTW's"
  echo "commercial licence); the project's own sources carry no other restriction."
  echo
  echo "Data and weights (not linked, not committed unless listed in this folder): see the README of each"
  echo "folder here — \`nrc-vad/\`, \`audioset/\`, \`efficientat/\`, \`panns/\`."
} > "$tmp"
mv "$tmp" "$out"
echo "wrote $out"
