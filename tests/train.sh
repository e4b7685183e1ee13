#!/bin/sh
# tests/train.sh: spikemesh train: a short pattern run lowers the loss, writes its outputs atomically, and saves a
# network that spikemesh run loads; bad tasks and options, networks whose traces do not fit (at once, from their
# sizes, when no deployment could hold them) and diverging training are refused with one line and exit 2, leaving
# no --out folder behind.
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
# Bad input: exit 2 with exactly one line on stderr that matches (grep -E) and, when the line is bad, says it;
# refuse NAME PATTERN ARGS...
TIMEOUT=
if command -v timeout >/dev/null 2>&1; then
    TIMEOUT="timeout -s KILL 10"
fi
refuse() {
    name=$1 pat=$2
    shift 2
    $TIMEOUT "$SPIKEMESH" train "$@" >"$tmp/bad.out" 2>"$tmp/bad.err"
    rc=$?
    if [ $rc -ne 2 ]; then
        notok "$name: exit 2, got $rc"
    elif [ "$(wc -l <"$tmp/bad.err")" -ne 1 ]; then
        notok "$name: one line on stderr, got: $(cat "$tmp/bad.err")"
    elif ! grep -Eq -- "$pat" "$tmp/bad.err"; then
        notok "$name: stderr does not match '$pat': $(cat "$tmp/bad.err")"
    else
        ok "$name"
    fi
}
# An output whose name a directory takes is refused before training: nothing is written or renamed.
mkdir -p "$tmp/blk/traffic.json"
echo "older" >"$tmp/blk/learning_curve.csv"
refuse "--out where a directory takes traffic.json" \
    "^spikemesh train: --out '.*blk': cannot write traffic\.json: a directory has that name$" pattern --iterations 1 --out "$tmp/blk"
check "--out where a directory takes traffic.json: nothing else written" \
    [ "$(ls -A "$tmp/blk" | tr '\n' ' ')" = "learning_curve.csv traffic.json " ]
check "--out where a directory takes traffic.json: the older file is untouched" grep -qx older "$tmp/blk/learning_curve.csv"
# Networks that cannot fit are refused from their sizes before the weights are made (n_rec 5000 took a minute and
# gigabytes; the timeout kills that); the mesh named for a preset is --chip PRESET:WxH, not a chip file's "mesh".
printf '{"task": "pattern", "n_rec": 5000, "steps": 10, "iterations": 1}' >"$tmp/big.json"
refuse "n_rec 5000 is refused at once for its fan-in" \
    "big.json: network 'trained_pattern' does not fit chip 'loihi': neuron 0 of population 'lif' has 5099 distinct presynaptic neurons, more than a core's fan-in of 4096; no mesh size fits it$" "$tmp/big.json"
printf '{"task": "pattern", "n_rec": 3000, "steps": 10, "iterations": 1}' >"$tmp/b3.json"
refuse "n_rec 3000 is refused at once for its synapse memory, naming --chip loihi:WxH" \
    "b3.json: network 'trained_pattern' does not fit chip 'loihi': its 9300000 synapses need at least 111576000 B of synapse memory with their e-prop traces .*; --chip loihi:15x15 has that much" "$tmp/b3.json"
printf '{"task": "pattern", "n_in": 600, "n_rec": 10, "steps": 10, "iterations": 1}' >"$tmp/b4.json"
refuse "a deployment that does not fit a preset names --chip small:WxH" \
    "cores fill up on neurons per core \(limit 256\); --chip small:2x1 would fit$" "$tmp/b4.json" --chip small:1x1
# Traces that do not fit the placement with them: the first core over on the placement without them, then that
# deployment's message once (it came twice, and the core was never named).
printf '{"task": "pattern", "n_in": 4, "n_rec": 145, "steps": 10, "iterations": 1}' >"$tmp/b5.json"
refuse "traces over a core of the placement, then the deployment's message once" \
    "^spikemesh train: [^;]*b5.json: core 0 \(tile 0, slot 0\) needs [^;]*; with e-prop traces \(8 B per synapse beside its 4 B weight\): network 'trained_pattern' does not fit chip 'small:2x1': [^;]*; [^;]*; --chip small:2x2 would fit$" "$tmp/b5.json" --chip small:2x1

# A learning rate that makes the weights or the loss non-finite stops training: exit 2, and nothing is written (a
# folder made by this run is removed; one that was there stays as it was).
printf '{"task": "pattern", "steps": 20, "iterations": 2, "lr": 1e308}' >"$tmp/lr.json"
refuse "a diverging run stops at its iteration" \
    "lr.json: iteration 1: training diverged: .*the learning rate \(lr 1e\+308\) is too large" "$tmp/lr.json" --out "$tmp/lr"
check "... and leaves no --out folder" [ ! -e "$tmp/lr" ]
mkdir "$tmp/lr2"
refuse "... with --update-every too" "iteration 1: training diverged" "$tmp/lr.json" --update-every 5 --out "$tmp/lr2"
check "... and writes nothing into an existing --out folder" [ -z "$(ls -A "$tmp/lr2")" ]
refuse "--lr of a built-in task" \
    "pattern: iteration 1: training diverged" pattern --iterations 1 --lr 1e300 --threads 1
# --out: made only after every check; a file there is refused before training.
refuse "an unknown chip" "--chip 'nosuch': no such file or preset" pattern --chip nosuch --out "$tmp/nochip"
check "... leaves no --out folder" [ ! -e "$tmp/nochip" ]
refuse "a network that does not fit" "does not fit chip" "$tmp/b3.json" --out "$tmp/nofit"
check "... leaves no --out folder" [ ! -e "$tmp/nofit" ]
echo keep >"$tmp/afile"
refuse "--out naming a file is refused before training" \
    "^spikemesh train: --out '.*afile': exists and is not a folder$" pattern --out "$tmp/afile"
check "... and the file is left as it was" [ "$(cat "$tmp/afile")" = keep ]

# Task files: the rule and the key, under the task file's name.
printf '{"task": "pattern", "steps": 20, "iterations": 1, "w_min_mV": 5, "w_max_mV": -5}' >"$tmp/wmm.json"
refuse "w_min_mV above w_max_mV" \
    "wmm.json: w_min_mV, w_max_mV: w_min_mV \(5\) must not exceed w_max_mV \(-5\)$" "$tmp/wmm.json"
# A batch in the task file has the bound of --batch; a batch whose inputs and targets would not fit the machine's
# memory is refused before it is allocated (it was a 149 GiB calloc)
printf '{"task": "evidence", "batch": 10000000, "iterations": 1, "cues": 1, "steps": 400}' >"$tmp/bigbatch.json"
refuse "a batch over 65536 in the task file" \
    "bigbatch.json: batch: must be between 1 and 65536, got 10000000$" "$tmp/bigbatch.json"
printf '{"task": "evidence", "batch": 65536, "iterations": 1, "cues": 1, "steps": 2000000}' >"$tmp/hugebatch.json"
refuse "a batch larger than the machine's memory" \
    "hugebatch.json: a batch of 65536 trials of 2000000 steps with 40 inputs needs [0-9.e+]+ GiB for its inputs and targets, more than this machine's" \
    "$tmp/hugebatch.json"
printf '{"task": "pattern", "steps": 20, "iterations": 1, "input_rate_hz": -50}' >"$tmp/rate.json"
refuse "a negative input_rate_hz, in the task file" \
    "rate.json: input_rate_hz: must be zero or positive, got -50$" "$tmp/rate.json"
printf '{"task": "evidence", "cues": 1, "steps": 400, "iterations": 1, "noise_rate_hz": -10}' >"$tmp/noise.json"
refuse "a negative noise_rate_hz, in the task file" \
    "noise.json: noise_rate_hz: must be zero or positive, got -10$" "$tmp/noise.json"
refuse "a missing task file" \
    "^spikemesh train: .*nonexist.json: cannot read: No such file or directory$" "$tmp/nonexist.json"
mkdir "$tmp/dir.json"
refuse "a folder as the task file" "^spikemesh train: .*dir.json: cannot read: it is a directory$" "$tmp/dir.json"
printf '{"task": "pattern", "steps": 10, "iterations": 1, "w_in_scale": 1e300}' >"$tmp/scale.json"
refuse "initial weights a network file cannot hold" \
    "scale.json: the initial weights cannot be saved as a network: an input weight is .* mV, more than a 32-bit float holds" "$tmp/scale.json"

# Options: one line each, the range where a number is out of it; a value given to a flag.
refuse "--iterations abc" "^spikemesh train: --iterations 'abc': not a whole number" pattern --iterations abc
refuse "--iterations 0" "^spikemesh train: --iterations '0': must be between 1 and 10000000$" pattern --iterations 0
refuse "--lr nan" "^spikemesh train: --lr 'nan': not a finite decimal number$" pattern --lr nan
refuse "--lr 0" "^spikemesh train: --lr '0': must be positive$" pattern --lr 0
refuse "--test-trials -1" "^spikemesh train: --test-trials '-1': not a whole number" pattern --test-trials -1
refuse "--update-every=" "^spikemesh train: --update-every '': not a whole number" pattern --update-every=
refuse "--trace-bits 33" \
    "^spikemesh train: --trace-bits '33': must be 0 \(float64\) or 2 to 32$" pattern --trace-bits 33
refuse "--json=1" "^spikemesh train: option '--json' takes no value \(see --help\)$" pattern --json=1

# A task file under a long path of two-byte characters: the task's name (the first 63 bytes of the path) is cut
# between characters, so --json stays valid UTF-8 (paths of both parities, so one of them used to cut a character).
for pre in "" a; do
    long="$tmp/$pre$(i=0; while [ $i -lt 40 ]; do printf '\303\251'; i=$((i + 1)); done)"
    mkdir -p "$long"
    printf '{"task": "pattern", "steps": 20, "iterations": 2}\n' >"$long/t.json"
    "$SPIKEMESH" train "$long/t.json" --json >"$tmp/long.json" 2>"$tmp/long.err"
    check "a task under a long UTF-8 path ($pre): exits 0" [ $? -eq 0 ]
    check "a task under a long UTF-8 path ($pre): --json is valid JSON" \
        python3 -c 'import json, sys; json.load(open(sys.argv[1], encoding="utf-8"))' "$tmp/long.json"
done
finish
