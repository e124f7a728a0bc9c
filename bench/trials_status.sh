#!/usr/bin/env bash
# Last evaluation of every trial log: bench/trials_status.sh [PATTERN]
cd "$(dirname "$0")/.."
for f in logs/${1:-}*.log; do
  printf '%-22s %s | %s\n' "$(basename "$f" .log)" "$(grep ' eval:' "$f" | tail -n1 | sed 's/.*step/step/; s/loss [0-9.]* //; s/digit_accuracy/dig/; s/latent_accuracy/lat/')" "$(tail -n1 "$f" | cut -c1-60)"
done
cut -d' ' -f1-3 /proc/loadavg
