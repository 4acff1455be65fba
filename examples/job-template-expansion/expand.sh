#!/usr/bin/env bash
# Usage: expand.sh OUTDIR ITEM... — writes OUTDIR/job-<item>.yaml from job-tmpl.yaml.
set -euo pipefail
here=$(dirname "$0")
out=$1; shift
mkdir -p "$out"
for item in "$@"; do
  sed "s/\$ITEM/$item/g" "$here/job-tmpl.yaml" > "$out/job-$item.yaml"
done
