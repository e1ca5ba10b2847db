#!/usr/bin/env bash
# run-fuzzer.sh BINARY SEED_CORPUS WORKDIR - bounded libFuzzer run for CI.
# Copies the seed corpus so CI never writes into the source tree.
set -eu
bin=$1 seeds=$2 work=$3
secs=${BASIRA_FUZZ_SECONDS:-45}
rm -rf "$work"; mkdir -p "$work/corpus"
[ -d "$seeds" ] && cp -r "$seeds"/. "$work/corpus/" 2>/dev/null || true
cd "$work"
exec "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -max_len=262144 corpus
