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
check "traffic.json is written" [ -s "$tmp/p/traffic.json" ]
# One learning-signal packet per readout per step with an error: pattern has 1 readout, every one of its 1000
# steps counts, 15 trials.
check "learning-signal packets = readouts x error steps x trials" [ "$(json_num "$tmp/p.json" learning_packets)" = 15000 ]

# On a 4x1 mesh of the small chip (Loihi's figures: 23.6 pJ per synaptic operation, 120 per synaptic update,
# 3.0 per east-west hop, 1.7 per delivery): traffic.json's links carry exactly the hops reported, its cores receive
# the deliveries, and energy by kind is the counts times those figures.
"$SPIKEMESH" train pattern --iterations 2 --threads 1 --chip small:4x1 --out "$tmp/m" --json >"$tmp/m.json" 2>"$tmp/m.err"
check "train on small:4x1 exits 0" [ $? -eq 0 ]
if command -v python3 >/dev/null 2>&1; then
    check "traffic.json link totals = hops, deliveries = packets in; energy = counts x per-operation figures" \
        python3 - "$tmp/m.json" "$tmp/m/traffic.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); t = json.load(open(sys.argv[2])); c = s["chip"]; e = s["energy_pj"]
ok = c["hops"] > 0 and c["hops"] == c["spike_hops"] + c["learning_hops"]
ok &= sum(l["packets"] for l in t["links"]) == c["hops"]
ok &= all(l["packets"] == 0 for l in t["links"] if l["dir"] in "NS")
ok &= sum(k["packets_in"] for k in t["cores"]) == c["deliveries"]
ok &= c["learning_packets"] == s["learning_packets"] == 1 * 1000 * 2
near = lambda a, b: abs(a - b) <= 1e-9 * max(1.0, abs(b))
ok &= near(e["trace_updates"], s["trace_updates"] * 23.6) and near(e["weight_updates"], s["weight_updates"] * 120.0)
ok &= near(e["learning_packets"], c["learning_hops"] * 3.0 + c["learning_deliveries"] * 1.7)
ok &= near(e["spike_packets"], c["spike_hops"] * 3.0 + (c["deliveries"] - c["learning_deliveries"]) * 1.7)
ok &= near(e["total"], e["trace_updates"] + e["weight_updates"] + e["spike_packets"] + e["learning_packets"])
b = c["busiest_link"]
ok &= b["packets"] == max(l["packets"] for l in t["links"])
sys.exit(0 if ok else 1)
PY
fi
"$SPIKEMESH" run "$tmp/p/trained_network.json" --duration 200 >"$tmp/r.out" 2>&1
check "spikemesh run loads trained_network.json" [ $? -eq 0 ]

# --update-every N with N the trial length (pattern: 1000 steps) is the end-of-trial update of batch 1 (the unit
# test compares the weights bit for bit); the task key does the same; N = 250 updates 4 times per trial.
"$SPIKEMESH" train pattern --iterations 3 --threads 1 --out "$tmp/u0" --json >"$tmp/u0.json" 2>&1
"$SPIKEMESH" train pattern --iterations 3 --threads 1 --update-every 1000 --out "$tmp/u1" --json >"$tmp/u1.json" 2>&1
check "--update-every 1000 = end-of-trial updates" cmp -s "$tmp/u0/trained_network.json" "$tmp/u1/trained_network.json"
printf '{"task": "pattern", "update_every": 250, "iterations": 3}' >"$tmp/u.json"
"$SPIKEMESH" train "$tmp/u.json" --threads 1 --out "$tmp/u4" --json >"$tmp/u4.json" 2>&1
check "update_every 250 exits 0" [ $? -eq 0 ]
w0=$(json_num "$tmp/u0.json" weight_updates)
check "update_every 250 writes 4 times the weights" [ "$(json_num "$tmp/u4.json" weight_updates)" = $((4 * w0)) ]
check "... and trains other weights" [ -n "$(cmp "$tmp/u0/trained_network.json" "$tmp/u4/trained_network.json")" ]

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
check "evidence: learning-signal packets = 2 readouts x 150 recall steps x 640 trials" \
    [ "$(json_num "$tmp/ev.out" learning_packets)" = 192000 ]
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
