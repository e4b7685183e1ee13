#!/bin/sh
# tests/threads.sh: the same network and seed give bit-identical spikes and counters (traffic.json holds every
# per-link, per-router and per-core counter) at any thread count, in double and in single precision.
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

for prec in double single; do
    # sN: N threads with --split shuffle (the borders between the threads' neurons move at random after every
    # batch of steps)
    for t in 1 2 3 4 7 s2 s3 s7; do
        n=${t#s}
        if [ "$t" = "$n" ]; then set --; else set -- --split shuffle; fi
        "$SPIKEMESH" run cuba --duration 200 --threads "$n" --precision "$prec" "$@" --out "$tmp/$prec$t" --json \
            >"$tmp/$prec$t.json" 2>"$tmp/$prec$t.err"
        check "$prec precision, $t threads: exits 0" [ $? -eq 0 ]
        check "$prec precision, $t threads: uses $n threads" [ "$(json_num "$tmp/$prec$t.json" threads)" = "$n" ]
        if [ $# -gt 0 ]; then
            check "$prec precision, $t threads: --split shuffle reported" grep -q '"split": *"shuffle"' "$tmp/$prec$t.json"
        fi
    done
    check "$prec: spikes were fired" [ "$(json_num "$tmp/${prec}1.json" spikes)" -gt 1000 ]
    for t in 2 3 4 7 s2 s3 s7; do
        check "$prec precision: spikes at $t threads = 1 thread" cmp -s "$tmp/${prec}1/spikes.csv" "$tmp/$prec$t/spikes.csv"
        check "$prec precision: counters at $t threads = 1 thread" cmp -s "$tmp/${prec}1/traffic.json" "$tmp/$prec$t/traffic.json"
        for key in spikes packets hops deliveries synaptic_ops neuron_updates; do
            check "$prec precision: $key at $t threads = 1 thread" \
                [ "$(json_num "$tmp/${prec}1.json" $key)" = "$(json_num "$tmp/$prec$t.json" $key)" ]
        done
    done
done
# The time and energy model, with the cycle-level mesh, does not depend on the thread count either.
timing_run() { # NAME ARGS...: cuba:2000 with the cycle-level timing model
    name=$1
    shift
    "$SPIKEMESH" run cuba:2000 --duration 100 --mesh-model cycle --out "$tmp/$name" --json "$@" >"$tmp/$name.json" 2>&1
    check "timing ($name): exits 0" [ $? -eq 0 ]
}
timing_run m1 --threads 1
timing_run m3 --threads 3
timing_run m3s --threads 3 --split shuffle
for m in m3 m3s; do # 3 threads; 3 threads with the borders moving at random
    check "timing: per-core busy time, energy and mesh counters ($m) = 1 thread" \
        cmp -s "$tmp/m1/traffic.json" "$tmp/$m/traffic.json"
    for key in total_seconds total_joules steps_over_dt core_bound_steps; do
        check "timing: $key ($m) = 1 thread" [ "$(json_num "$tmp/m1.json" $key)" = "$(json_num "$tmp/$m.json" $key)" ]
    done
done
check "timing: a per-core energy is present" grep -q '"energy_joules"' "$tmp/m1/traffic.json"

# Delays longer than one step use the ring buffers: the same holds there.
cat >"$tmp/delays.json" <<'JSON'
{"name": "delays", "dt_ms": 0.1,
 "populations": [{"name": "in", "size": 200, "model": "poisson", "params": {"rate_hz": 40}},
                 {"name": "e", "size": 800, "v_init_mV": [-60, -50]},
                 {"name": "i", "size": 200, "v_init_mV": [-60, -50]}],
 "projections": [{"pre": "in", "post": "e", "connect": {"rule": "bernoulli", "p": 0.1}, "weight_mV": 2.0, "delay_ms": 1.5},
                 {"pre": "e", "post": "e", "connect": {"rule": "bernoulli", "p": 0.05}, "weight_mV": 0.8, "delay_ms": 0.7},
                 {"pre": "e", "post": "i", "connect": {"rule": "bernoulli", "p": 0.1}, "weight_mV": 1.0},
                 {"pre": "i", "post": "e", "receptor": "inhibitory", "connect": {"rule": "bernoulli", "p": 0.1},
                  "weight_mV": -4.0, "delay_ms": 2.0}]}
JSON
# same_at_3_threads NAME: runs $tmp/NAME.json for 300 ms on 1 and on 3 threads; it must spike, with the same
# spikes and counters.
same_at_3_threads() {
    for t in 1 3; do
        "$SPIKEMESH" run "$tmp/$1.json" --duration 300 --threads "$t" --out "$tmp/$1$t" >/dev/null 2>&1
        check "$1, $t threads: exits 0" [ $? -eq 0 ]
    done
    "$SPIKEMESH" run "$tmp/$1.json" --duration 300 --threads 3 --split shuffle --out "$tmp/$1s3" >/dev/null 2>&1
    check "$1, 3 threads, --split shuffle: exits 0" [ $? -eq 0 ]
    check "$1: spikes were fired" [ "$(wc -l <"$tmp/${1}1/spikes.csv")" -gt 100 ]
    for t in 3 s3; do
        check "$1: spikes at $t threads = 1 thread" cmp -s "$tmp/${1}1/spikes.csv" "$tmp/${1}$t/spikes.csv"
        check "$1: counters at $t threads = 1 thread" cmp -s "$tmp/${1}1/traffic.json" "$tmp/${1}$t/traffic.json"
    done
}
same_at_3_threads delays   # the rows of "e" carry two weights (0.8 and 1.0): stored as (target, weight) pairs

# A sparse network (about 2 synapses a neuron): most rows have no synapse at all on a given worker's neurons.
# The same holds there.
cat >"$tmp/sparse.json" <<'JSON'
{"name": "sparse", "dt_ms": 0.1,
 "populations": [{"name": "in", "size": 500, "model": "poisson", "params": {"rate_hz": 200}},
                 {"name": "e", "size": 3000, "v_init_mV": [-60, -50]}],
 "projections": [{"pre": "in", "post": "e", "connect": {"rule": "bernoulli", "p": 0.004}, "weight_mV": 6.0},
                 {"pre": "e", "post": "e", "connect": {"rule": "bernoulli", "p": 0.0004}, "weight_mV": 3.0}]}
JSON
same_at_3_threads sparse

# same_with_loops NAME ARGS...: runs ARGS with the default update loop and with SPIKEMESH_SIMD=avx2 and c (where
# the CPU lacks one, the next is used); it must spike, with the same spikes and counters, and report the c loop.
same_with_loops() {
    name=$1
    shift
    for simd in "" avx2 c; do # empty: the default
        SPIKEMESH_SIMD=$simd "$SPIKEMESH" run "$@" --out "$tmp/$name-${simd:-default}" --json \
            >"$tmp/$name-${simd:-default}.json" 2>&1
        check "$name, SPIKEMESH_SIMD=${simd:-(default)}: exits 0" [ $? -eq 0 ]
    done
    check "$name: spikes were fired" [ "$(wc -l <"$tmp/$name-default/spikes.csv")" -gt 100 ]
    for simd in avx2 c; do
        check "$name: spikes with the $simd loop = default" \
            cmp -s "$tmp/$name-default/spikes.csv" "$tmp/$name-$simd/spikes.csv"
        check "$name: counters with the $simd loop = default" \
            cmp -s "$tmp/$name-default/traffic.json" "$tmp/$name-$simd/traffic.json"
    done
    check "$name: SPIKEMESH_SIMD=c is reported" grep -q '"simd": *"c"' "$tmp/$name-c.json"
}
for prec in double single; do
    same_with_loops "cuba-$prec" cuba --duration 200 --threads 2 --precision "$prec"
done
same_with_loops delays "$tmp/delays.json" --duration 300 --threads 1 # delay buffers
# cuba:60000 on 1 thread: 1.4 MB of state, above an L2 of up to 1 MiB, so the update prefetches
same_with_loops cuba60k cuba:60000 --chip loihi:18x18 --duration 30 --threads 1

# The balancer (--split adapt) moves work to the thread that finishes sooner. Here the equal-work split gives
# thread 1 all 800 Poisson sources (a random draw per neuron and step, dearer than a vector LIF update), so
# on 2 CPUs the balancer must hand cores from thread 1 to thread 0. Same spikes either way. 4 s of biology give
# the balancer about 20 of its 10 ms windows.
cat >"$tmp/mixed.json" <<'JSON'
{"name": "mixed", "dt_ms": 0.1,
 "populations": [{"name": "a", "size": 3000, "v_init_mV": [-60, -50]},
                 {"name": "p", "size": 800, "model": "poisson", "params": {"rate_hz": 5}},
                 {"name": "b", "size": 2600, "v_init_mV": [-60, -50]}],
 "projections": [{"pre": "p", "post": "a", "connect": {"rule": "bernoulli", "p": 0.01}, "weight_mV": 2.0},
                 {"pre": "p", "post": "b", "connect": {"rule": "bernoulli", "p": 0.01}, "weight_mV": 2.0},
                 {"pre": "a", "post": "a", "receptor": "inhibitory", "connect": {"rule": "bernoulli", "p": 0.01},
                  "weight_mV": -3.0}]}
JSON
for split in fixed adapt; do
    "$SPIKEMESH" run "$tmp/mixed.json" --chip "$SRCDIR/tests/data/chip_fifty.json" --duration 4000 --threads 2 \
        --split "$split" --out "$tmp/mixed-$split" --json >"$tmp/mixed-$split.json" 2>&1
    check "mixed network, --split $split: exits 0" [ $? -eq 0 ]
done
check "mixed network: spikes with --split adapt = fixed" cmp -s "$tmp/mixed-fixed/spikes.csv" "$tmp/mixed-adapt/spikes.csv"
first_neurons() { tr -d ' \n' <"$1" | grep -o '"thread_neurons":\[[0-9]*' | sed 's/.*\[//'; }
if [ "$(nproc 2>/dev/null || echo 1)" -ge 2 ]; then
    # the balancer acts on measured times: on a machine busy with other work a run may see no imbalance, so
    # up to two more runs are allowed
    for again in 1 2; do
        [ "$(first_neurons "$tmp/mixed-adapt.json")" -gt "$(first_neurons "$tmp/mixed-fixed.json")" ] && break
        "$SPIKEMESH" run "$tmp/mixed.json" --chip "$SRCDIR/tests/data/chip_fifty.json" --duration 4000 --threads 2 \
            --split adapt --json >"$tmp/mixed-adapt.json" 2>&1
    done
    check "mixed network: the balancer gives thread 0 more neurons than the fixed split" \
        [ "$(first_neurons "$tmp/mixed-adapt.json")" -gt "$(first_neurons "$tmp/mixed-fixed.json")" ]
    check "mixed network: summary.json says adapt" grep -q '"split": *"adapt"' "$tmp/mixed-adapt.json"
else
    check "mixed network, 1 CPU: 2 threads keep the fixed split" grep -q '"split": *"fixed"' "$tmp/mixed-adapt.json"
fi

# The default thread count: one per CPU, at most one per 16384 neurons (SM_NEURONS_PER_THREAD).
"$SPIKEMESH" run cuba --duration 10 --no-progress --json >"$tmp/def4k.json" 2>/dev/null
check "default threads: cuba (4000 neurons) runs on 1 thread" [ "$(json_num "$tmp/def4k.json" threads)" = 1 ]
"$SPIKEMESH" run cuba:40000 --chip loihi:18x18 --duration 10 --no-progress --json >"$tmp/def40k.json" 2>/dev/null
cpus=$(nproc 2>/dev/null || echo 1)
want=$((cpus < 2 ? cpus : 2))
check "default threads: cuba:40000 runs on min(CPUs, 2) = $want threads" [ "$(json_num "$tmp/def40k.json" threads)" = "$want" ]
finish
