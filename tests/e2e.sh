#!/bin/sh
# tests/e2e.sh: end-to-end runs of the spikemesh command: the CUBA rate against Brian2's, reproducibility,
# identical spikes under another placement, the shipped example, signals, pacing and the other commands.
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# CUBA with 4000 neurons: Brian2 2.5 gives 5.4-5.7 Hz; accept 5.0-6.3 Hz.
"$SPIKEMESH" run cuba --json --out "$tmp/a" >"$tmp/a.json" 2>"$tmp/a.err"
check "run cuba exits 0" [ $? -eq 0 ]
rate=$(json_num "$tmp/a.json" mean_rate_hz)
check "CUBA 4000 mean rate $rate Hz is within 5.0-6.3" awk -v r="$rate" 'BEGIN { exit !(r >= 5.0 && r <= 6.3) }'
for key in neurons synapses cores_used steps spikes mean_rate_hz packets hops setup_seconds loop_seconds; do
    check "--json has $key" grep -q "\"$key\":" "$tmp/a.json"
done
check "--json gives 10000 steps" [ "$(json_num "$tmp/a.json" steps)" = 10000 ]
check "spikes.csv has a header and one line per spike" \
    [ "$(($(wc -l <"$tmp/a/spikes.csv") - 1))" = "$(json_num "$tmp/a.json" spikes)" ]
check "no .part files left" [ -z "$(ls "$tmp/a" | grep part)" ]

# Same seed: identical spikes; another seed: different spikes.
"$SPIKEMESH" run cuba --out "$tmp/b" >/dev/null 2>&1
check "same seed gives identical spikes" cmp -s "$tmp/a/spikes.csv" "$tmp/b/spikes.csv"
"$SPIKEMESH" run cuba --seed 2 --out "$tmp/c" >/dev/null 2>&1
check "another seed gives other spikes" sh -c "! cmp -s '$tmp/a/spikes.csv' '$tmp/c/spikes.csv'"

# Another chip (another placement): the same spikes, other traffic.
"$SPIKEMESH" run cuba --chip "$SRCDIR/tests/data/chip_alt.json" --out "$tmp/d" --json >"$tmp/d.json" 2>&1
check "run on a chip JSON file exits 0" [ $? -eq 0 ]
check "another chip gives identical spikes" cmp -s "$tmp/a/spikes.csv" "$tmp/d/spikes.csv"
check "another chip uses other cores" [ "$(json_num "$tmp/a.json" cores_used)" != "$(json_num "$tmp/d.json" cores_used)" ]
"$SPIKEMESH" run cuba --chip loihi:16x16 --out "$tmp/e" >/dev/null 2>&1
check "a resized preset gives identical spikes" cmp -s "$tmp/a/spikes.csv" "$tmp/e/spikes.csv"

# The shipped example is the same network as the built-in one.
if [ -f "$SRCDIR/examples/cuba.json" ]; then
    "$SPIKEMESH" run "$SRCDIR/examples/cuba.json" --out "$tmp/f" >/dev/null 2>&1
    check "examples/cuba.json runs" [ $? -eq 0 ]
    check "examples/cuba.json gives the built-in cuba's spikes" cmp -s "$tmp/a/spikes.csv" "$tmp/f/spikes.csv"
else
    notok "examples/cuba.json is missing"
fi

# wait_for_loop DIR: waits (up to 30 s) until a run with --out DIR has written spikes, so that its loop is running
# (a signal during set-up has its default effect).
wait_for_loop() {
    waited=0
    while [ "$(wc -c 2>/dev/null <"$1/spikes.csv.part" || echo 0)" -le 100 ] && [ $waited -lt 300 ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
}

# SIGINT stops at the end of a step, closes every output, exits 130.
"$SPIKEMESH" run cuba --duration 1000000 --out "$tmp/g" --no-progress >"$tmp/g.out" 2>&1 &
pid=$!
sleep 1
kill -INT "$pid"
wait "$pid"
status=$?
check "SIGINT exits 130 (got $status)" [ "$status" -eq 130 ]
check "SIGINT leaves a complete summary.json" grep -q '"interrupted": true' "$tmp/g/summary.json"
check "SIGINT leaves spikes.csv matching the summary" \
    [ "$(($(wc -l <"$tmp/g/spikes.csv") - 1))" = "$(json_num "$tmp/g/summary.json" spikes)" ]
check "SIGINT leaves no .part files" [ -z "$(ls "$tmp/g" | grep part)" ]
# Ctrl-C pressed twice: the second signal arrives while the outputs are written (a cycle-level run writes all
# eight), and must not leave .part files behind.
# (A signal before the loop starts has its default effect: wait until spikes are being written.)
for gap in 0.001 0.02 0.1; do
    "$SPIKEMESH" run cuba:4000 --duration 1000000 --mesh-model cycle --out "$tmp/g2" --no-progress >/dev/null 2>&1 &
    pid=$!
    wait_for_loop "$tmp/g2"
    kill -INT "$pid"
    sleep "$gap"
    kill -INT "$pid" 2>/dev/null
    wait "$pid"
    status=$?
    check "SIGINT twice, $gap s apart: exits 130 (got $status)" [ "$status" -eq 130 ]
    check "SIGINT twice, $gap s apart: no .part files, 8 outputs" \
        [ -z "$(ls "$tmp/g2" | grep part)" -a "$(ls "$tmp/g2" | wc -l)" -eq 8 ]
    rm -rf "$tmp/g2"
done
"$SPIKEMESH" run cuba --duration 1000000 --no-progress >/dev/null 2>&1 &
pid=$!
sleep 1
kill -TERM "$pid"
wait "$pid"
check "SIGTERM exits 130" [ $? -eq 130 ]

# --realtime: 100 ms of biological time takes at least 100 ms of wall time.
"$SPIKEMESH" run cuba:1000 --duration 100 --realtime --json >"$tmp/h.json" 2>&1
loop=$(json_num "$tmp/h.json" loop_seconds)
check "--realtime paces 100 ms in $loop s" awk -v l="$loop" 'BEGIN { exit !(l >= 0.099 && l < 2.0) }'
check "--realtime reports overruns" grep -q '"overruns":' "$tmp/h.json"

# A progress bar only on request when stderr is not a terminal.
"$SPIKEMESH" run cuba:500 --duration 100 >/dev/null 2>"$tmp/p.err"
check "no progress output when stderr is not a terminal" [ ! -s "$tmp/p.err" ]
"$SPIKEMESH" run cuba:500 --duration 300 --progress >/dev/null 2>"$tmp/p.err"
check "--progress draws a bar" grep -q "step" "$tmp/p.err"

# info and presets
"$SPIKEMESH" info cuba --json >"$tmp/i.json"
check "info cuba --json" [ "$(json_num "$tmp/i.json" neurons)" = 4000 ]
check "info and run agree on cores" [ "$(json_num "$tmp/i.json" cores_used)" = "$(json_num "$tmp/a.json" cores_used)" ]
"$SPIKEMESH" presets >"$tmp/pr.txt"
check "presets lists loihi and small" sh -c "grep -q '^loihi' '$tmp/pr.txt' && grep -q '^small' '$tmp/pr.txt'"
# A lossy mesh (one-packet buffers, four-flit packets, drops after 3 blocked cycles): drops appear in the
# summary and the copies add up.
"$SPIKEMESH" run cuba:1000 --duration 100 --chip "$SRCDIR/tests/data/chip_drops.json" --mesh-model cycle --json \
    >"$tmp/drop.json" 2>&1
check "run on a lossy mesh exits 0" [ $? -eq 0 ]
sent=$(json_num "$tmp/drop.json" sent)
delivered=$(json_num "$tmp/drop.json" delivered)
dropped=$(json_num "$tmp/drop.json" dropped)
check "a lossy mesh drops packets ($dropped of $sent copies)" [ "${dropped:-0}" -gt 0 ]
check "sent = delivered + dropped ($sent = $delivered + $dropped)" [ "$sent" = "$((delivered + dropped))" ]

# map: placers and the placement file
for placer in order greedy bisect; do
    "$SPIKEMESH" map cluster:12000 --chip loihi:8x8 --placer $placer --out "$tmp/pl_$placer.json" --json \
        >"$tmp/map_$placer.json" 2>&1
    check "map --placer $placer exits 0 and writes the placement" [ $? -eq 0 -a -s "$tmp/pl_$placer.json" ]
done
check "greedy placement estimates less traffic than in order" awk \
    -v a="$(json_num "$tmp/map_greedy.json" pair_hops)" -v b="$(json_num "$tmp/map_order.json" pair_hops)" \
    'BEGIN { exit !(a < b) }'
"$SPIKEMESH" run cluster:12000 --chip loihi:8x8 --duration 100 --out "$tmp/r_order" --json >"$tmp/r_order.json" 2>&1
"$SPIKEMESH" run cluster:12000 --chip loihi:8x8 --duration 100 --placement "$tmp/pl_bisect.json" --out "$tmp/r_bis" \
    --json >"$tmp/r_bis.json" 2>&1
check "run --placement exits 0" [ $? -eq 0 ]
check "run --placement gives the same spikes" cmp -s "$tmp/r_order/spikes.csv" "$tmp/r_bis/spikes.csv"
check "the bisection placement measures fewer hops than in order" \
    [ "$(json_num "$tmp/r_bis.json" hops)" -lt "$(json_num "$tmp/r_order.json" hops)" ]
check "run --placement: summary.json names the placer of the file, bisect, and estimates nothing" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["placer"] == "bisect", d["placer"]
assert "estimated_pair_hops" not in d, d["estimated_pair_hops"]' "$tmp/r_bis/summary.json"
"$SPIKEMESH" run cluster:12000 --chip loihi:8x8 --duration 10 --placement "$tmp/pl_bisect.json" --placer greedy \
    >"$tmp/r_both.out" 2>"$tmp/r_both.err"
check "run --placement with --placer is refused" sh -c \
    '[ "$1" -eq 2 ] && [ ! -s "$2" ] && grep -q "^spikemesh run: --placer does not apply with --placement" "$3"' \
    sh $? "$tmp/r_both.out" "$tmp/r_both.err"

# --profile: time per phase for every thread, totals and the median step
"$SPIKEMESH" run cuba:3000 --duration 100 --threads 3 --profile --json >"$tmp/prof.json" 2>&1
check "run --profile exits 0" [ $? -eq 0 ]
check "run --profile: per-thread totals and median steps are consistent" python3 - "$tmp/prof.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p, steps = d["profile_seconds"], d["steps"]
th = p["threads"]
assert len(th) == 3, th
assert abs(th[0]["update"] - p["update"]) < 1e-9
for t in th:
    busy = t["update"] + t["route"] + t["record_and_wait"]
    assert busy <= d["loop_seconds"] * 1.0001, (busy, d["loop_seconds"])   # the phases lie inside the loop
    for ph in ("update", "route", "record_and_wait"):
        m = t["median_step"][ph]
        assert m >= 0
        # half the steps took at least the median (bins are 2% wide)
        assert t[ph] >= 0.5 * steps * m / 1.03 - 1e-9, (ph, t[ph], m)
        # and the median step is no longer than the whole phase
        assert m <= t[ph] * 1.03 + 1e-9, (ph, t[ph], m)
    # every step updates neurons: the median update step is not empty (its mean may be far above it: 3 threads
    # on fewer CPUs lose theirs now and then)
    assert t["median_step"]["update"] > 0, t
PY
"$SPIKEMESH" run cuba:3000 --duration 20 --threads 2 --profile >"$tmp/prof.txt" 2>&1
check "run --profile prints a line per thread" [ "$(grep -c 'median step' "$tmp/prof.txt")" -eq 2 ]
# --profile's slow steps: a run stopped twice for 0.4 s (SIGSTOP, as if the machine gave its CPUs to other work)
# reports the stopped steps on both threads (the other thread waits for the stopped one), about 0.8 s beyond the
# median step in all.
"$SPIKEMESH" run cuba:4000 --duration 1000000 --threads 2 --profile --out "$tmp/stall" --no-progress \
    >/dev/null 2>&1 &
pid=$!
wait_for_loop "$tmp/stall"
for k in 1 2; do
    kill -STOP "$pid"
    sleep 0.4
    kill -CONT "$pid"
    sleep 0.3
done
kill -INT "$pid"
wait "$pid"
check "run --profile stopped twice exits 130" [ $? -eq 130 ]
check "run --profile: the stopped steps are counted as slow, with the time they lost" python3 - \
    "$tmp/stall/summary.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
th = d["profile_seconds"]["threads"]
assert len(th) == 2, th
for t in th:
    w = t["whole_step"]
    assert 0 < w["median"] < 0.01, w                              # a step of 4000 neurons: microseconds
    assert 1 <= w["slow_steps"] <= d["steps"], w
    # 0.8 s stopped; a stop can also fall between two batches of steps, or into the other thread's route
    assert 0.35 <= w["slow_seconds_beyond_median"] <= d["loop_seconds"], (w, d["loop_seconds"])
PY

# traffic: synthetic traffic on the cycle-level mesh
"$SPIKEMESH" traffic --mesh 6x6 --pattern uniform --rate 0.1 --cycles 2000 --json >"$tmp/t.json"
check "traffic exits 0" [ $? -eq 0 ]
for key in mean_latency_cycles p99_latency_cycles mean_hops accepted_rate offered_rate; do
    check "traffic --json has $key" grep -q "\"$key\":" "$tmp/t.json"
done
"$SPIKEMESH" traffic --mesh 6x6 --router ideal --sweep --cycles 1000 --json >"$tmp/ts.json"
check "traffic --sweep reports a saturation rate" grep -q '"saturation_rate":0\.[1-9]' "$tmp/ts.json"
"$SPIKEMESH" traffic --mesh 4x4 --rate 0.2 --cycles 1000 --latency-csv "$tmp/lat.csv" >/dev/null
check "traffic --latency-csv writes a histogram" sh -c "head -n 1 '$tmp/lat.csv' | grep -q '^latency_cycles,packets$' && [ \$(wc -l <'$tmp/lat.csv') -gt 2 ]"
finish
