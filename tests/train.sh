#!/bin/sh
# tests/train.sh: spikemesh train: a short pattern run lowers the loss, writes its outputs atomically, and saves a
# network that spikemesh run loads; bad tasks and networks whose traces do not fit are refused.
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

"$SPIKEMESH" train pattern --iterations 15 --out "$tmp/p" --json --threads 1 >"$tmp/p.json" 2>"$tmp/p.err"
check "train pattern exits 0" [ $? -eq 0 ]
for f in learning_curve.csv learning_curve.svg trained_network.json; do
    check "$f is written" [ -s "$tmp/p/$f" ]
done
check "no .part files left" [ -z "$(ls "$tmp/p" | grep part)" ]
check "learning_curve.csv has a header and 15 iterations" [ "$(wc -l <"$tmp/p/learning_curve.csv")" = 16 ]
ratio=$(json_num "$tmp/p.json" loss_ratio)
check "the loss falls below half its first value ($ratio)" awk -v r="$ratio" 'BEGIN { exit !(r < 0.5) }'
check "--json counts trace updates" [ "$(json_num "$tmp/p.json" trace_updates)" -gt 0 ]
"$SPIKEMESH" run "$tmp/p/trained_network.json" --duration 200 >"$tmp/r.out" 2>&1
check "spikemesh run loads trained_network.json" [ $? -eq 0 ]

# Thread count does not change the result.
"$SPIKEMESH" train pattern --iterations 3 --batch 3 --threads 2 --out "$tmp/q" >/dev/null 2>&1
"$SPIKEMESH" train pattern --iterations 3 --batch 3 --threads 1 --out "$tmp/s" >/dev/null 2>&1
check "1 and 2 threads give the same trained network" cmp -s "$tmp/q/trained_network.json" "$tmp/s/trained_network.json"

# A short evidence task (one cue, 100 ms delay) learns: every trial's inputs are its own (the batch's buffers are
# reused, and a cue group silent in this trial must not keep an earlier trial's spikes).
printf '{"task": "evidence", "cues": 1, "steps": 400, "iterations": 40, "batch": 16}' >"$tmp/ev.json"
"$SPIKEMESH" train "$tmp/ev.json" --test-trials 64 --json >"$tmp/ev.out" 2>"$tmp/ev.err"
check "train evidence (one cue) exits 0" [ $? -eq 0 ]
acc=$(json_num "$tmp/ev.out" test_accuracy)
check "one-cue evidence reaches 90% on fresh trials ($acc)" awk -v a="$acc" 'BEGIN { exit !(a >= 0.9) }'
printf '{"task": "evidence", "cues": 0}' >"$tmp/ev0.json"
"$SPIKEMESH" train "$tmp/ev0.json" >/dev/null 2>&1
check "evidence with 0 cues exits 2" [ $? -eq 2 ]

"$SPIKEMESH" train nosuchtask >/dev/null 2>"$tmp/e1"
check "an unknown task exits 2" [ $? -eq 2 ]
printf '{"task": "pattern", "bogus": 1}' >"$tmp/t.json"
"$SPIKEMESH" train "$tmp/t.json" >/dev/null 2>"$tmp/e2"
check "an unknown task key exits 2" [ $? -eq 2 ]
check "... and names the key" grep -q "bogus: unknown key" "$tmp/e2"
"$SPIKEMESH" train pattern --chip small:1x1 --iterations 1 >/dev/null 2>"$tmp/e3"
check "traces that do not fit the chip exit 2" [ $? -eq 2 ]
check "... with a message about the traces" grep -q "e-prop traces" "$tmp/e3"
finish
