#!/usr/bin/env bash
# Runs both shipped recipes from scratch, timing each, then prints the per-stage table of each run.
#   bash benchmarks/run_recipes.sh [OUT_DIR]      (default /tmp/compress-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/compress-bench}
for recipe in quickstart fashion-mnist; do
  SECONDS=0
  compress run "recipes/$recipe.yaml" --out "$out/$recipe" --fresh --quiet > "$out-$recipe.log" 2>&1 || { cat "$out-$recipe.log"; exit 1; }
  printf '\n### %s: wall time %d s\n\n' "$recipe" "$SECONDS"
  python benchmarks/stage_table.py "$out/$recipe"
  echo
  sed -n '/^device/,/^$/p' "$out-$recipe.log"
done
