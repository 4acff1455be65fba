#!/usr/bin/env bash
# Usage: fill-queue.sh DIR ITEM... — creates the directory queue with one file per item.
set -euo pipefail
dir=$1; shift
rm -rf "$dir"; mkdir -p "$dir/todo" "$dir/done"
i=0
for item in "$@"; do
  i=$((i+1)); printf '%s\n' "$item" > "$dir/todo/$(printf '%04d' $i)"
done
