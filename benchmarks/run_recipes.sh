#!/usr/bin/env bash
# Runs shipped recipes from scratch into runs/<name> (in order: a later recipe may use an earlier
# one's run folder, e.g. fashion-mnist-16k's teacher), timing each, then prints each run's
# per-stage table and device verdicts.
#   bash benchmarks/run_recipes.sh [RECIPE ...]      (default: quickstart fashion-mnist)
set -euo pipefail
cd "$(dirname "$0")/.."
recipes=("${@:-quickstart fashion-mnist}")
mkdir -p runs
for recipe in ${recipes[*]}; do
  SECONDS=0
  python -m pipeline run "recipes/$recipe.yaml" --fresh --quiet > "runs/$recipe.log" 2>&1 || { cat "runs/$recipe.log"; exit 1; }
  printf '\n### %s: wall time %d s\n\n' "$recipe" "$SECONDS"
  python benchmarks/stage_table.py "runs/$recipe"
  echo
  sed -n '/^device/,/^$/p' "runs/$recipe.log"
done
