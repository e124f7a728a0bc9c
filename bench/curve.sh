#!/usr/bin/env bash
# Validation curve of a trial log, one "step:EM/latent" per eval: bench/curve.sh NAME
grep ' eval:' "$(dirname "$0")/../logs/$1.log" | sed -E 's/.*step ([0-9]+) eval:.*exact_match ([0-9.]+).*latent_accuracy ([0-9.]+).*/\1:\2\/\3/; s/.*step ([0-9]+) eval:.*exact_match ([0-9.]+).*/\1:\2/' | tr '\n' ' '; echo
