#!/usr/bin/env bash
# Fetch the wheels of bench/gpu_wheels.txt for the GPU machine (x86-64, CPython 3.12, manylinux) into
# a directory (default .whl in the repository root, ignored by git), with no dependencies resolved:
# the list names every wheel the machine lacks, one version each (two versions of one name stop the
# install there). Prints the total size: the working tree that travels to the device, these wheels
# included, must stay under 64 MiB. Needs network (PyPI); run it here, then name the directory in the
# device run's `carry` (bench/gpu_check.py's docstring has the command line).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-$root/.whl}"
python="${PYTHON:-python3}"
mkdir -p "$dest"
grep -v '^\s*#' "$root/bench/gpu_wheels.txt" | sed 's/#.*//' | awk 'NF {print $1}' > "$dest/requirements.txt"
"$python" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$dest" -r "$dest/requirements.txt" >&2
rm "$dest/requirements.txt"
# one wheel per name: a leftover of an older list would be installed next to the new one
dupes="$(ls "$dest"/*.whl | xargs -n1 basename | cut -d- -f1 | tr 'A-Z-' 'a-z_' | sort | uniq -d)"
if [ -n "$dupes" ]; then echo "two versions of: $dupes in $dest; remove the old ones" >&2; exit 1; fi
n="$(ls "$dest"/*.whl | wc -l)"
bytes="$(cat "$dest"/*.whl | wc -c)"
echo "$n wheels, $bytes bytes ($(awk "BEGIN {printf \"%.1f\", $bytes / 1048576}") MiB) in $dest"
