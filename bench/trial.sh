#!/usr/bin/env bash
# One recipe-search trial: bench/trial.sh NAME CONFIG [--set ...]; logs to logs/NAME.log with the load.
set -u
name=$1; shift; cfg=$1; shift
mkdir -p logs runs
{ echo "# $(date -u +%FT%TZ) start load: $(cut -d' ' -f1-3 /proc/loadavg)"; echo "# $cfg $*"; } > logs/$name.log
nice -n 5 python run.py "$cfg" --set experiment=$name --set train.num_threads=1 "$@" >> logs/$name.log 2>&1
echo "# $(date -u +%FT%TZ) end rc=$? load: $(cut -d' ' -f1-3 /proc/loadavg)" >> logs/$name.log
