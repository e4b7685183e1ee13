#!/bin/sh
# tests/cli_errors.sh: end-to-end test of bad input. Every case runs the program on one bad input (written
# below as a heredoc) and checks that it exits with status 2, prints exactly one line on stderr that
# matches the expected message (file:line:column and the rule broken, where they apply), prints nothing on
# stdout, does not crash or hang (no signal, no sanitizer report) and leaves no --out directory behind.
# Environment: SPIKEMESH (the built program), SRCDIR (the source tree).
. "$(dirname "$0")/lib.sh"
case $SPIKEMESH in /*) ;; *) SPIKEMESH=$(pwd)/$SPIKEMESH ;; esac # the cases run inside the temporary directory
LC_ALL=C
export LC_ALL

T=$(mktemp -d "${TMPDIR:-/tmp}/spikemesh-cli-errors.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
trap 'exit 1' HUP INT TERM

TIMEOUT=
if command -v timeout >/dev/null 2>&1; then
    TIMEOUT="timeout -s KILL 20"
fi

# mk FILE: writes stdin to $T/FILE.
mk() {
    cat >"$T/$1"
}

# State of a path, to see whether a failed run left something behind.
path_state() {
    if [ ! -e "$1" ] && [ ! -L "$1" ]; then
        echo absent
    elif [ -d "$1" ]; then
        echo dir
        ls -A "$1"
    else
        echo file
        cksum <"$1"
    fi
}

report() { # report NAME REASON (empty reason: passed)
    if [ -z "$2" ]; then
        ok "$1"
    else
        notok "$1: $2"
        sed -e 's/^/#   stderr: /' "$T/.err"
        sed -e 's/^/#   stdout: /' "$T/.out" | head -n 5
    fi
}

# run_prog ARGS...: runs the program with stdout/stderr in $T/.out and $T/.err; sets rc.
run_prog() {
    # shellcheck disable=SC2086
    $TIMEOUT "$SPIKEMESH" "$@" <"$T/.null" >"$T/.out" 2>"$T/.err"
    rc=$?
}

# why_crashed: prints a reason when the last run hung, died by a signal or a sanitizer spoke up.
why_crashed() {
    if [ -n "$TIMEOUT" ] && [ "$rc" -eq 137 ] && [ ! -s "$T/.err" ]; then
        echo "hung (killed after 20 s)"
    elif [ "$rc" -gt 128 ]; then
        echo "killed by signal $((rc - 128))"
    elif grep -Eq 'Sanitizer|runtime error:|^==[0-9]+==|Segmentation|Aborted|core dumped' "$T/.err"; then
        echo "sanitizer or crash report on stderr"
    fi
}

# expect_fail NAME EXPECTED_REGEX -- ARGS...: the program must fail cleanly with status 2 and a one-line
# message (starting with "spikemesh") that matches the extended regex.
expect_fail() {
    name=$1
    re=$2
    shift 2
    [ "$1" = "--" ] && shift
    out=
    prev=
    for a in "$@"; do
        [ "$prev" = "--out" ] && out=$a
        case $a in --out=*) out=${a#--out=} ;; esac
        prev=$a
    done
    [ -n "$out" ] && before=$(path_state "$out")
    run_prog "$@"
    why=$(why_crashed)
    if [ -z "$why" ] && [ "$rc" -ne 2 ]; then
        why="exit status $rc, expected 2"
    fi
    if [ -z "$why" ]; then
        lines=$(wc -l <"$T/.err" | tr -d ' ')
        records=$(awk 'END { print NR }' "$T/.err")
        if [ "$lines" -ne 1 ] || [ "$records" -ne 1 ]; then
            why="stderr has $records lines, expected one"
        elif ! grep -q '^spikemesh' "$T/.err"; then
            why="message does not start with 'spikemesh'"
        elif ! grep -Eq -- "$re" "$T/.err"; then
            why="message does not match /$re/"
        elif [ -s "$T/.out" ]; then
            why="wrote to stdout"
        fi
    fi
    if [ -z "$why" ] && [ -n "$out" ] && [ "$(path_state "$out")" != "$before" ]; then
        why="--out '$out' was left changed"
    fi
    report "$name" "$why"
}

# expect_help NAME -- ARGS...: exit 0, "usage:" on stdout, nothing on stderr.
expect_help() {
    name=$1
    shift
    [ "$1" = "--" ] && shift
    run_prog "$@"
    why=$(why_crashed)
    if [ -z "$why" ] && [ "$rc" -ne 0 ]; then
        why="exit status $rc, expected 0"
    elif [ -z "$why" ] && ! grep -q '^usage: spikemesh' "$T/.out"; then
        why="no 'usage:' on stdout"
    elif [ -z "$why" ] && [ -s "$T/.err" ]; then
        why="wrote to stderr"
    fi
    report "$name" "$why"
}

: >"$T/.null"
cd "$T" || exit 1

# ---------------------------------------------------------------------------------------------------
# Network files. Line:column positions in the expected messages refer to the heredocs as written.

mk good.json <<'EOF'
{
  "name": "good",
  "dt_ms": 0.1,
  "duration_ms": 2,
  "populations": [
    {"name": "a", "size": 20, "model": "lif"},
    {"name": "b", "size": 20}
  ],
  "projections": [
    {"pre": "a", "post": "b", "connect": {"rule": "bernoulli", "p": 0.5}, "weight_mV": 1.0, "delay_ms": 1.0}
  ]
}
EOF
run_prog run good.json --no-progress --out "$T/good-out"
if [ "$rc" -eq 0 ] && [ -f "$T/good-out/summary.json" ]; then
    report "the valid reference network runs" ""
else
    report "the valid reference network runs" "exit status $rc"
fi

# Names: at most 127 bytes (network) and 63 (chip); a longer one is refused, not cut inside a UTF-8 character
# (which made every JSON output invalid). 63 two-byte characters (126 bytes) are kept whole.
e2=$(printf '\303\251') # U+00E9, two bytes
n63=$(i=0; while [ $i -lt 63 ]; do printf '%s' "$e2"; i=$((i + 1)); done)
printf '{"name": "%s%s", "populations": [{"name": "a", "size": 2}]}\n' "$n63" "$n63" >"$T/longname.json"
expect_fail "network name over 127 bytes" '^spikemesh run: longname\.json:1:10: name: at most 127 bytes, got 252$' \
    -- run longname.json --json
printf '{"name": "%s", "duration_ms": 1, "populations": [{"name": "a", "size": 2}]}\n' "$n63" >"$T/name126.json"
run_prog run name126.json --json --no-progress
if [ "$rc" -ne 0 ]; then
    why="exit status $rc"
elif ! python3 -c 'import json, sys; d = json.load(open(sys.argv[1], encoding="utf-8")); assert d["network"] == "\u00e9" * 63, d["network"]' "$T/.out" 2>"$T/.py"; then
    why="run --json is not valid JSON with the whole name: $(tail -n 1 "$T/.py")"
else
    why=""
fi
report "a 126-byte UTF-8 network name: run --json keeps it whole" "$why"
printf '{"name": "%s"}\n' "$n63" >"$T/chip-longname.json"
expect_fail "chip name over 63 bytes" '^spikemesh info: chip-longname\.json:1:10: name: at most 63 bytes, got 126$' \
    -- info good.json --chip chip-longname.json --json

printf '{"populations": [{"name": "a", "size": 4, "params": {"i_bias_mV": 1e308, "v_rest_mV": 1e308}}]}\n' >"$T/bias-inf.json"
expect_fail "v_rest_mV + i_bias_mV overflows" \
    '^spikemesh run: bias-inf\.json:1:67: populations\[0\]\.params\.i_bias_mV: v_rest_mV \+ i_bias_mV \(1e\+308 \+ 1e\+308\) must be a finite number$' \
    -- run bias-inf.json
printf '{"populations": [{"name": "a", "size": 4, "params": {"tau_m_ms": 5e-324}}]}\n' >"$T/tau-tiny.json"
expect_fail "tau_m_ms so small that 1 / tau_m overflows" \
    "^spikemesh run: tau-tiny\\.json: network 'network': population 'a': time constants tau_m 4.94066e-324, tau_e 5, tau_i 10 ms against a step of 0.1 ms give propagators that are not finite numbers$" \
    -- run tau-tiny.json

printf '{"populations": [{"name": "a", "size": 4, "v_init_mV": [-1e308, 1e308]}]}\n' >"$T/vinit-wide.json"
expect_fail "v_init_mV [lo, hi] whose width overflows (every neuron started at +inf)" \
    '^spikemesh run: vinit-wide\.json:1:[0-9]+: populations\[0\]\.v_init_mV: \[lo, hi\] = \[-1e\+308, 1e\+308\]: hi - lo must be a finite number$' \
    -- run vinit-wide.json
# --precision single: a potential beyond a quarter of the largest float, or two that far apart (v became inf,
# then NaN: no spike, exit 0)
printf '{"populations": [{"name": "a", "size": 4, "params": {"v_rest_mV": 1e300}}]}\n' >"$T/rest-huge.json"
expect_fail "a potential beyond a 32-bit float with --precision single (v became NaN, no spike)" \
    "^spikemesh run: rest-huge\\.json: network 'network': population 'a': v_rest_mV \\+ i_bias_mV is 1e\\+300 mV, beyond the \\+-8\\.5e\\+37 mV that --precision single \\(32-bit floats\\) computes with; use --precision double$" \
    -- run rest-huge.json --precision single
printf '{"populations": [{"name": "a", "size": 4, "params": {"v_reset_mV": -1e39, "v_rest_mV": -65}}]}\n' >"$T/reset-huge.json"
expect_fail "v_reset_mV beyond a 32-bit float with --precision single" \
    "^spikemesh run: reset-huge\\.json: network 'network': population 'a': v_reset_mV is -1e\\+39 mV, beyond the \\+-8\\.5e\\+37 mV" -- run reset-huge.json --precision single
printf '{"populations": [{"name": "a", "size": 4, "v_init_mV": -3e38, "params": {"v_rest_mV": 3e38, "v_thresh_mV": 2.9e38, "tau_m_ms": 1, "t_ref_ms": 0}}]}\n' >"$T/spread.json"
expect_fail "with --precision single, potentials that each fit a float but not their difference" \
    "^spikemesh run: spread\\.json: network 'network': population 'a': v_rest_mV \\+ i_bias_mV is 3e\\+38 mV, beyond" -- run spread.json --precision single
printf '{"populations": [{"name": "a", "size": 4, "v_init_mV": -5e37, "params": {"v_rest_mV": 5e37, "v_thresh_mV": 4.9e37}}]}\n' >"$T/spread2.json"
expect_fail "with --precision single, v_init_mV and v_rest_mV 1e38 apart" \
    "^spikemesh run: spread2\\.json: network 'network': population 'a': v_init_mV \\(-5e\\+37 mV\\) and v_rest_mV \\+ i_bias_mV \\(5e\\+37 mV\\) are 1e\\+38 mV apart, beyond the 8\\.5e\\+37 mV" \
    -- run spread2.json --precision single

printf '{"mesh": {"width": 2, "height": 2}, "cores_per_tile": 2, "core": {"max_neurons": 256, "synapse_memory_bytes": 65536}, "router": {"table_entries": 256}, "costs": {"syn_op_pj": 1e308}}\n' >"$T/chip-costly.json"
expect_fail "a chip cost of 1e308 pJ (energy totals would be infinite)" \
    '^spikemesh run: chip-costly\.json:1:[0-9]+: costs\.syn_op_pj: must be zero or positive and at most 1e\+09, got 1e\+308$' \
    -- run good.json --chip chip-costly.json --timing

printf '{"duration_ms": 0.05, "populations": [{"name": "a", "size": 2}]}\n' >"$T/short.json"
expect_fail "duration_ms shorter than a step" \
    '^spikemesh run: short\.json:1:17: duration_ms: 0\.05 ms is shorter than one step of 0\.1 ms \(0 runs no step\)$' -- run short.json
expect_fail "--duration that underflows to 0 (it ran no step)" \
    "^spikemesh run: --duration '1e-400': too close to 0 for a double; give 0 or a larger number$" -- run good.json --duration 1e-400
expect_fail "--duration shorter than a step" \
    '^spikemesh run: --duration 0\.05 ms is shorter than one step of 0\.1 ms \(0 runs no step\)$' -- run good.json --duration 0.05

printf '{"populations": [{"name": "a", "size": 2}], "projections": [{"pre": "a", "post": "a", "connect": {"rule": "list", "pairs": [[0, 1], [1, 0]], "weights_mV": [1, 4e38]}}]}\n' >"$T/w-big.json"
expect_fail "a listed weight beyond a 32-bit float" \
    '^spikemesh run: w-big\.json:1:[0-9]+: projections\[0\]\.connect\.weights_mV\[1\]: weight 4e\+38 does not fit a 32-bit float$' -- run w-big.json
printf '{"populations": [{"name": "a", "size": 2}], "projections": [{"pre": "a", "post": "a", "connect": {"rule": "list", "pairs": [[0, 1], [1, 0]], "weights_mV": [1, "x"]}}]}\n' >"$T/w-str.json"
expect_fail "a listed weight that is a string" \
    '^spikemesh run: w-str\.json:1:[0-9]+: projections\[0\]\.connect\.weights_mV\[1\]: a weight must be a number, not a string$' -- run w-str.json

printf '{"populations": [{"name": "a", "size": 30000}], "projections": [{"pre": "a", "post": "a", "connect": {"rule": "all_to_all"}}]}\n' >"$T/a2a.json"
expect_fail "9e8 synapses on a chip that holds 4e6: refused before generating them" \
    "^spikemesh info: a2a\\.json: network 'network' does not fit chip 'loihi': its about 9e\\+08 synapses need about 3\\.6e\\+09 bytes of synapse memory, more than the 1\\.68e\\+07 bytes of all its 128 cores together \\(131072 bytes each\\); the synapse memory alone needs at least 27466 cores \\(other limits, such as a core's fan-in, may need more, or no mesh at all\\)$" \
    -- info a2a.json

mk malformed.json <<'EOF'
{
  "name": "malformed",
  "populations": [
    {"name": "a" "size": 10}
  ]
}
EOF
expect_fail "malformed JSON (missing comma)" \
    'malformed\.json:4:[0-9]+: malformed JSON: .*' -- run malformed.json --out "$T/o1"

mk truncated.json <<'EOF'
{
  "name": "truncated",
  "populations": [
    {"name": "a", "size": 10},
    {"name": "b", "si
EOF
expect_fail "truncated JSON (file cut mid-string)" \
    'truncated\.json:[56]:[0-9]+: malformed JSON: .*(unexpected newline|end of file|premature end)' -- run truncated.json

mk truncated2.json <<'EOF'
{
  "name": "truncated2",
  "populations": [
    {"name": "a", "size": 10}
EOF
expect_fail "truncated JSON (file cut between values)" \
    'truncated2\.json:[45]:[0-9]+: malformed JSON: .*end of file' -- run truncated2.json

: >empty.json
expect_fail "empty file" 'empty\.json:1:1: .*empty' -- run empty.json --out "$T/o2"

mk blank.json <<'EOF'


EOF
expect_fail "file of blank lines" 'blank\.json:[0-9]+:[0-9]+: .*empty' -- run blank.json

mk toplevel-array.json <<'EOF'
[
  {"name": "a", "size": 10}
]
EOF
expect_fail "top level is an array" \
    'toplevel-array\.json:1:1: the top level must be a JSON object' -- run toplevel-array.json

mk toplevel-string.json <<'EOF'
"cuba"
EOF
expect_fail "top level is a string" 'toplevel-string\.json:1:[0-9]+: .*object' -- run toplevel-string.json

mk size-string.json <<'EOF'
{
  "populations": [
    {"name": "a", "size": "10"}
  ]
}
EOF
expect_fail "size given as a string" \
    'size-string\.json:3:27: populations\[0\]\.size: must be a whole number, not a string' -- run size-string.json

mk params-array.json <<'EOF'
{
  "populations": [
    {"name": "a", "size": 10, "params": [20, 5]}
  ]
}
EOF
expect_fail "params given as an array" \
    'params-array\.json:3:41: populations\[0\]\.params: must be an object' -- run params-array.json

mk weight-string.json <<'EOF'
{
  "populations": [{"name": "a", "size": 10}],
  "projections": [
    {"pre": "a", "post": "a", "connect": {"rule": "all_to_all"},
     "weight_mV": "1.5"}
  ]
}
EOF
expect_fail "weight given as a string" \
    'weight-string\.json:5:19: projections\[0\]\.weight_mV: must be a number, not a string' -- run weight-string.json

mk p-bool.json <<'EOF'
{
  "populations": [{"name": "a", "size": 10}],
  "projections": [
    {"pre": "a", "post": "a", "connect": {"rule": "bernoulli", "p": true}}
  ]
}
EOF
expect_fail "p given as a boolean" \
    'p-bool\.json:4:69: projections\[0\]\.connect\.p: must be a number, not a boolean' -- run p-bool.json

mk unknown-model.json <<'EOF'
{
  "populations": [
    {"name": "a", "size": 10, "model": "izhikevich"}
  ]
}
EOF
expect_fail "unknown neuron model" \
    'unknown-model\.json:3:40: populations\[0\]\.model: unknown model "izhikevich" \(known models: lif, poisson\)' \
    -- run unknown-model.json

mk unknown-param.json <<'EOF'
{
  "populations": [
    {"name": "a", "size": 10,
     "params": {"tau_m_ms": 20, "tau_x_ms": 3}}
  ]
}
EOF
expect_fail "unknown LIF parameter" \
    'unknown-param\.json:4:45: populations\[0\]\.params\.tau_x_ms: unknown field "tau_x_ms" \(known fields: tau_m_ms, .*\)' \
    -- run unknown-param.json

mk unknown-top.json <<'EOF'
{
  "name": "x",
  "neurons": 10,
  "populations": [{"name": "a", "size": 10}]
}
EOF
expect_fail "unknown top-level field" \
    'unknown-top\.json:3:14: neurons: unknown field "neurons" \(known fields: name, dt_ms, .*\)' -- run unknown-top.json

mk unknown-pop.json <<'EOF'
{
  "populations": [{"name": "exc", "size": 10}],
  "projections": [
    {"pre": "exc", "post": "inh", "connect": {"rule": "all_to_all"}}
  ]
}
EOF
expect_fail "projection names an unknown population" \
    'unknown-pop\.json:4:28: projections\[0\]\.post: unknown population "inh"' -- run unknown-pop.json

mk duplicate-pop.json <<'EOF'
{
  "populations": [
    {"name": "exc", "size": 10},
    {"name": "exc", "size": 20}
  ]
}
EOF
expect_fail "duplicate population name" \
    'duplicate-pop\.json:4:14: populations\[1\]\.name: population name "exc" is used twice' -- run duplicate-pop.json

mk size-negative.json <<'EOF'
{
  "populations": [{"name": "a", "size": -5}]
}
EOF
expect_fail "negative population size" \
    'size-negative\.json:2:41: populations\[0\]\.size: must be at least 1, got -5' -- run size-negative.json

mk size-zero.json <<'EOF'
{
  "populations": [{"name": "a", "size": 0}]
}
EOF
expect_fail "zero population size" \
    'size-zero\.json:2:41: populations\[0\]\.size: must be at least 1, got 0' -- run size-zero.json

mk size-fraction.json <<'EOF'
{
  "populations": [{"name": "a", "size": 2.5}]
}
EOF
expect_fail "fractional population size" \
    'size-fraction\.json:2:41: populations\[0\]\.size: must be a whole number, got 2\.5' -- run size-fraction.json

mk size-huge.json <<'EOF'
{
  "populations": [{"name": "a", "size": 100000000000}]
}
EOF
expect_fail "population size beyond the supported maximum" \
    'size-huge\.json:2:41: populations\[0\]\.size: must be at most 33554432, got 100000000000' \
    -- run size-huge.json

mk size-total.json <<'EOF'
{
  "populations": [
    {"name": "a", "size": 20000000},
    {"name": "b", "size": 20000000}
  ]
}
EOF
expect_fail "populations add up beyond the supported maximum" \
    'size-total\.json:4:27: populations\[1\]\.size: the network grows to 40000000 neurons, more than the 33554432 supported' \
    -- run size-total.json

mk tau-m-negative.json <<'EOF'
{
  "populations": [
    {"name": "a", "size": 10, "params": {"tau_m_ms": -20}}
  ]
}
EOF
expect_fail "negative tau_m_ms" \
    'tau-m-negative\.json:3:54: populations\[0\]\.params\.tau_m_ms: must be positive, got -20' -- run tau-m-negative.json

mk tau-e-zero.json <<'EOF'
{
  "populations": [
    {"name": "a", "size": 10, "params": {"tau_e_ms": 0}}
  ]
}
EOF
expect_fail "zero tau_e_ms" \
    'tau-e-zero\.json:3:54: populations\[0\]\.params\.tau_e_ms: must be positive, got 0' -- run tau-e-zero.json

mk t-ref-negative.json <<'EOF'
{
  "populations": [
    {"name": "a", "size": 10, "params": {"t_ref_ms": -1}}
  ]
}
EOF
expect_fail "negative t_ref_ms" \
    't-ref-negative\.json:3:54: populations\[0\]\.params\.t_ref_ms: must be zero or positive, got -1' \
    -- run t-ref-negative.json

mk v-reset-above.json <<'EOF'
{
  "populations": [
    {"name": "a", "size": 10,
     "params": {"v_thresh_mV": -50, "v_reset_mV": -40}}
  ]
}
EOF
expect_fail "v_reset_mV above v_thresh_mV" \
    'v-reset-above\.json:4:51: populations\[0\]\.params\.v_reset_mV: v_reset_mV \(-40\) must be below v_thresh_mV \(-50\)' \
    -- run v-reset-above.json

mk p-above-one.json <<'EOF'
{
  "populations": [{"name": "a", "size": 10}],
  "projections": [
    {"pre": "a", "post": "a", "connect": {"rule": "bernoulli", "p": 1.5}}
  ]
}
EOF
expect_fail "connection probability above 1" \
    'p-above-one\.json:4:69: projections\[0\]\.connect\.p: probability 1\.5 is outside \[0, 1\]' -- run p-above-one.json

mk p-negative.json <<'EOF'
{
  "populations": [{"name": "a", "size": 10}],
  "projections": [
    {"pre": "a", "post": "a", "connect": {"rule": "bernoulli", "p": -0.1}}
  ]
}
EOF
expect_fail "connection probability below 0" \
    'p-negative\.json:4:69: projections\[0\]\.connect\.p: probability -0\.1 is outside \[0, 1\]' -- run p-negative.json


# blocks, p_next and p_out belong to rule "blocks": another rule would silently ignore them
printf '{"populations": [{"name": "a", "size": 10}], "projections": [{"pre": "a", "post": "a", "connect": {"rule": "bernoulli", "p": 0.5, "blocks": 3, "p_next": 7}}]}\n' >"$T/p-next-bernoulli.json"
expect_fail "blocks with rule bernoulli" \
    'p-next-bernoulli\.json:1:[0-9]+: projections\[0\]\.connect\.blocks: only rule "blocks" takes blocks, p_next and p_out' \
    -- run p-next-bernoulli.json
printf '{"populations": [{"name": "a", "size": 10}], "projections": [{"pre": "a", "post": "a", "connect": {"rule": "list", "pairs": [[0, 1]], "p_out": 0.1}}]}\n' >"$T/p-out-list.json"
expect_fail "p_out with rule list" \
    'p-out-list\.json:1:[0-9]+: projections\[0\]\.connect\.p_out: only rule "blocks" takes blocks, p_next and p_out' \
    -- run p-out-list.json
mk delay-zero.json <<'EOF'
{
  "dt_ms": 0.1,
  "populations": [{"name": "a", "size": 10}],
  "projections": [
    {"pre": "a", "post": "a", "connect": {"rule": "all_to_all"}, "delay_ms": 0}
  ]
}
EOF
expect_fail "zero delay" \
    'delay-zero\.json:5:78: projections\[0\]\.delay_ms: delay 0 ms is below the minimum of 1 step \(0\.1 ms\)' \
    -- run delay-zero.json

mk delay-fraction.json <<'EOF'
{
  "dt_ms": 0.1,
  "populations": [{"name": "a", "size": 10}],
  "projections": [
    {"pre": "a", "post": "a", "connect": {"rule": "all_to_all"}, "delay_ms": 0.25}
  ]
}
EOF
expect_fail "delay not a multiple of dt" \
    'delay-fraction\.json:5:78: projections\[0\]\.delay_ms: delay 0\.25 ms is not a whole number of steps of 0\.1 ms' \
    -- run delay-fraction.json

mk delay-long.json <<'EOF'
{
  "dt_ms": 0.1,
  "populations": [{"name": "a", "size": 10}],
  "projections": [
    {"pre": "a", "post": "a", "connect": {"rule": "all_to_all"}, "delay_ms": 10}
  ]
}
EOF
expect_fail "delay beyond the maximum a synapse holds" \
    'delay-long\.json:5:78: projections\[0\]\.delay_ms: delay 10 ms is 100 steps, more than the 64 steps a synapse can hold' \
    -- run delay-long.json

mk one-to-one.json <<'EOF'
{
  "populations": [{"name": "a", "size": 10}, {"name": "b", "size": 12}],
  "projections": [
    {"pre": "a", "post": "b", "connect": {"rule": "one_to_one"}}
  ]
}
EOF
expect_fail "one_to_one between unequal sizes" \
    'one-to-one\.json:4:51: projections\[0\]\.connect\.rule: one_to_one needs equal sizes, got 10 -> 12' \
    -- run one-to-one.json

mk pair-range.json <<'EOF'
{
  "populations": [{"name": "a", "size": 4}, {"name": "b", "size": 3}],
  "projections": [
    {"pre": "a", "post": "b",
     "connect": {"rule": "list", "pairs": [[0, 0], [3, 2], [1, 3]]}}
  ]
}
EOF
expect_fail "list pair out of range" \
    'pair-range\.json:5:60: projections\[0\]\.connect\.pairs\[2\]: pair \[1, 3\] is out of range: pre < 4, post < 3' \
    -- run pair-range.json

mk duplicate-key.json <<'EOF'
{
  "populations": [
    {"name": "a", "size": 10, "size": 20}
  ]
}
EOF
expect_fail "duplicate JSON key" \
    'duplicate-key\.json:3:[0-9]+: malformed JSON: duplicate object key .*size' -- run duplicate-key.json

mk huge-number.json <<'EOF'
{
  "populations": [{"name": "a", "size": 10}],
  "projections": [
    {"pre": "a", "post": "a", "connect": {"rule": "all_to_all"}, "weight_mV": 1e999}
  ]
}
EOF
expect_fail "number beyond double range (1e999)" \
    'huge-number\.json:4:[0-9]+: malformed JSON: .*1e999' -- run huge-number.json

mk huge-negative.json <<'EOF'
{
  "populations": [
    {"name": "a", "size": 10, "params": {"v_thresh_mV": -1e999}}
  ]
}
EOF
expect_fail "number beyond double range (-1e999)" \
    'huge-negative\.json:3:[0-9]+: malformed JSON: .*1e999' -- run huge-negative.json

mk weight-float.json <<'EOF'
{
  "populations": [{"name": "a", "size": 10}],
  "projections": [
    {"pre": "a", "post": "a", "connect": {"rule": "all_to_all"}, "weight_mV": 1e300}
  ]
}
EOF
expect_fail "weight beyond float range" \
    'weight-float\.json:4:79: projections\[0\]\.weight_mV: weight 1e\+300 does not fit a 32-bit float' \
    -- run weight-float.json

mk deep.json <<'EOF'
{"populations": [{"name": "a", "size": 10, "params": {"tau_m_ms": [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}}]}
EOF
expect_fail "deeply nested value where a number belongs" \
    'deep\.json:1:67: populations\[0\]\.params\.tau_m_ms: must be a number, not an array' -- run deep.json

printf '\357\273\277{"populations": [{"name": "a", "size": 10}]}\n' >bom.json
expect_fail "file starting with a UTF-8 byte order mark" \
    'bom\.json:1:1: malformed JSON: the file starts with a UTF-8 byte order mark' -- run bom.json

mk delay-overflow.json <<'EOF'
{
  "populations": [{"name": "a", "size": 10}],
  "projections": [
    {"pre": "a", "post": "a", "connect": {"rule": "all_to_all"}, "delay_ms": 1e308}
  ]
}
EOF
expect_fail "delay of 1e308 ms (infinitely many steps)" \
    'delay-overflow\.json:4:78: projections\[0\]\.delay_ms: delay 1e\+308 ms is more than the 64 steps of 0\.1 ms a synapse can hold' \
    -- run delay-overflow.json

mk duration-huge.json <<'EOF'
{
  "duration_ms": 1e300,
  "populations": [{"name": "a", "size": 10}]
}
EOF
expect_fail "duration_ms of more than 1e12 steps" \
    'duration-huge\.json: duration_ms 1e\+300 is more than 1e12 steps of 0\.1 ms' \
    -- run duration-huge.json --out "$T/o-dur"

mk dt-tiny.json <<'EOF'
{
  "dt_ms": 1e-300,
  "populations": [{"name": "a", "size": 10}]
}
EOF
expect_fail "default duration of more than 1e12 steps of a tiny dt_ms" \
    'dt-tiny\.json: the default duration of 1000 ms is more than 1e12 steps of dt_ms 1e-300' -- run dt-tiny.json

mk dt-huge.json <<'EOF'
{
  "dt_ms": 2000,
  "populations": [{"name": "a", "size": 1}]
}
EOF
expect_fail "default duration shorter than one step (the message must not blame --duration)" \
    '^spikemesh run: dt-huge\.json: the default duration of 1000 ms is shorter than one step of dt_ms 2000 \(give --duration, or duration_ms in the network\)$' \
    -- run dt-huge.json

mk t-ref-huge.json <<'EOF'
{
  "populations": [
    {"name": "slow", "size": 10, "params": {"t_ref_ms": 1e300}}
  ]
}
EOF
expect_fail "t_ref_ms of more than 1e9 steps" \
    "^spikemesh run: t-ref-huge\.json: network 'network': population 'slow': refractory period of 1e\+300 ms is more than 1e9 steps" \
    -- run t-ref-huge.json --out "$T/o-tref"

# ---------------------------------------------------------------------------------------------------
# Networks that do not fit the chip.

expect_fail "cuba:40000 does not fit the default chip" \
    "network 'cuba:40000' does not fit chip 'loihi': it needs at least [0-9]+ cores, [0-9]+ more than the 128 cores .*cores fill up on [a-z].* \(limit [0-9]+\); --chip loihi:[0-9]+x[0-9]+ would fit" \
    -- run cuba:40000 --out "$T/o3"
# suggested_fits WHAT: the --chip (loihi:WxH or loihi*AxB) that the last refusal in $T/.err named does fit cuba:40000.
suggested_fits() {
    sugg=$(sed -n 's/.*--chip \(loihi[:*][0-9]*x[0-9]*\) would fit.*/\1/p' "$T/.err")
    [ -n "$sugg" ] || return 0 # the refusal's own check above reports a missing suggestion
    run_prog info cuba:40000 --chip "$sugg"
    if [ "$rc" -eq 0 ]; then
        report "the suggested $1--chip $sugg does fit cuba:40000" ""
    else
        report "the suggested $1--chip $sugg does fit cuba:40000" "exit status $rc"
    fi
}
suggested_fits ""

expect_fail "cuba:40000 does not fit a board of 2x2 loihi chips: a larger board is named" \
    "network 'cuba:40000' does not fit chip 'loihi\\*2x2': it needs at least [0-9]+ cores, [0-9]+ more than the 512 cores of 16x8 tiles x 4; .*--chip loihi\\*[0-9]+x[0-9]+ would fit" \
    -- info cuba:40000 --chip 'loihi*2x2'
suggested_fits "board "
expect_fail "cuba:4000 on a board of one small chip: a larger board is named, not a larger chip" \
    "network 'cuba:4000' does not fit chip 'small\\*1x1': .*--chip small\\*[0-9]+x[0-9]+ would fit" \
    -- info cuba:4000 --chip 'small*1x1'

mk fan-in.json <<'EOF'
{
  "populations": [
    {"name": "src", "size": 100000, "model": "poisson", "params": {"rate_hz": 5}},
    {"name": "one", "size": 1}
  ],
  "projections": [
    {"pre": "src", "post": "one", "connect": {"rule": "all_to_all"}, "weight_mV": 0.01}
  ]
}
EOF
expect_fail "one neuron's synapses exceed a core (small chip)" \
    "fan-in\.json: neuron 0 of population 'one' receives 100000 synapses \(400000 bytes\), more than a core's synapse memory of 65536 bytes on chip 'small'; no mesh size fits it" \
    -- run fan-in.json --chip small --out "$T/o4"

mk chip-delay.json <<'EOF'
{
  "dt_ms": 0.1,
  "populations": [{"name": "a", "size": 10}, {"name": "b", "size": 10}],
  "projections": [
    {"pre": "a", "post": "b", "connect": {"rule": "all_to_all"}, "delay_ms": 2.0}
  ]
}
EOF
expect_fail "delay longer than the chip's max_delay_steps" \
    "chip-delay\.json: .*projection 0 \(a -> b\) has a delay of 20 steps, more than the 16 steps chip 'small' supports" \
    -- run chip-delay.json --chip small
expect_fail "map: a network that does not fit names its file" \
    "^spikemesh map: chip-delay\.json: network 'network': projection 0 \(a -> b\) has a delay of 20 steps" \
    -- map chip-delay.json --chip small --out "$T/pl-delay.json"

expect_fail "cuba on the small chip: a larger mesh fits, with compressed tables" \
    "network 'cuba:4000' does not fit chip 'small': it needs at least [0-9]+ cores, [0-9]+ more than the 8 cores .*--chip small:[0-9]+x[0-9]+ would fit" \
    -- info cuba --chip small
mk chip-tinytables.json <<'EOF'
{"name": "tinytables", "mesh": {"width": 4, "height": 4}, "cores_per_tile": 2,
 "core": {"max_neurons": 256, "synapse_memory_bytes": 65536, "max_fan_in": 1024},
 "router": {"table_entries": 2}}
EOF
expect_fail "routing tables that do not fit even compressed" \
    "network 'cuba:1000' does not fit chip 'tinytables': its routing tables need up to [0-9]+ entries a router; compressed, router \\([0-9]+,[0-9]+\\): [0-9]+ entries do not compress below 2, its capacity" \
    -- info cuba:1000 --chip chip-tinytables.json

mk chip-tiny.json <<'EOF'
{
  "name": "tiny",
  "mesh": {"width": 1, "height": 1},
  "cores_per_tile": 1,
  "core": {"max_neurons": 16, "synapse_memory_bytes": 65536},
  "router": {"table_entries": 4096}
}
EOF
expect_fail "network too large for a chip file: the mesh to write in it" \
    "good\.json: network 'good' does not fit chip 'tiny': it needs at least 3 cores, 2 more than the 1 cores of 1x1 tiles x 1; cores fill up on neurons per core \(limit 16\); \"mesh\": \{\"width\": 2, \"height\": 2\} in the chip file would fit" \
    -- run good.json --chip chip-tiny.json --out "$T/o-tiny"
sed 's/"width": 1, "height": 1/"width": 2, "height": 2/' chip-tiny.json >chip-tiny2.json
run_prog run good.json --chip chip-tiny2.json --no-progress
if [ "$rc" -eq 0 ]; then
    report "the suggested mesh does fit it" ""
else
    report "the suggested mesh does fit it" "exit status $rc"
fi

# Fan-out shrinks cores below max_neurons: the count of cores asked for is the one after shrinking. By hand: with
# 4 neurons a core, [a0-a3] sends each spike to 2 cores of b (8 pairs > 6); with 2, every core of a sends to the 3
# cores of b (2 x 3 = 6 pairs): 3 + 3 = 6 cores, on 2x2 tiles of 2 cores.
mk fanout-net.json <<'EOF'
{"populations": [{"name": "a", "size": 6, "model": "poisson", "params": {"rate_hz": 50}}, {"name": "b", "size": 6}],
 "projections": [{"pre": "a", "post": "b", "connect": {"rule": "all_to_all"}, "weight_mV": 1}]}
EOF
mk chip-fanout.json <<'EOF'
{"name": "fo", "mesh": {"width": 1, "height": 1}, "cores_per_tile": 2,
 "core": {"max_neurons": 4, "synapse_memory_bytes": 65536, "max_fan_out": 6}, "router": {"table_entries": 64}}
EOF
expect_fail "cores shrunk for fan-out: cores counted after shrinking" \
    "network 'network' does not fit chip 'fo': it needs at least 6 cores, 4 more than the 2 cores of 1x1 tiles x 2; cores fill up on fan-out \(\(neuron, destination core\) pairs\) per core \(limit 6\); \"mesh\": \{\"width\": 2, \"height\": 2\} in the chip file would fit" \
    -- map fanout-net.json --chip chip-fanout.json
sed 's/"width": 1, "height": 1/"width": 2, "height": 2/' chip-fanout.json >chip-fanout2.json
run_prog map fanout-net.json --chip chip-fanout2.json
if [ "$rc" -eq 0 ] && grep -q "cores used *6 of 8" "$T/.out" 2>/dev/null; then
    report "the mesh suggested for fan-out fits, on 6 cores" ""
else
    report "the mesh suggested for fan-out fits, on 6 cores" "exit status $rc: $(head -c 300 "$T/.out" 2>/dev/null)"
fi

# ---------------------------------------------------------------------------------------------------
# Unreadable inputs and unwritable outputs.

expect_fail "network file that does not exist" \
    'no-such-file\.json: cannot read: No such file or directory' -- run "$T/no-such-file.json" --out "$T/o5"
mkdir "$T/adir"
expect_fail "network path that is a directory" 'adir: cannot read: it is a directory' -- run "$T/adir"
cp good.json unreadable.json
chmod 000 unreadable.json
if [ -r unreadable.json ]; then
    ok "network file without read permission # SKIP readable anyway (running as root)"
else
    expect_fail "network file without read permission" \
        'unreadable\.json: cannot read: Permission denied' -- run unreadable.json --out "$T/o-perm"
fi
expect_fail "neither a file nor a built-in network" \
    "'nosuchnet' is neither a file nor a built-in network" -- run nosuchnet
expect_fail "cuba:N below the minimum" "'cuba:3': N must be between 5 and [0-9]+" -- run cuba:3

echo "not a directory" >"$T/afile"
expect_fail "--out whose parent is a regular file" \
    "--out '.*afile/out': cannot create the directory: Not a directory" -- run good.json --out "$T/afile/out"
expect_fail "--out that is an existing regular file" \
    "--out '.*afile': exists and is not a directory" -- run good.json --out "$T/afile"
# A run that made its --out folder and then cannot write (a file size limit, as a full disk would do): the message
# says why, and the folder it made is gone again.
(
    trap '' XFSZ
    ulimit -f 8 2>/dev/null || exit 0
    "$SPIKEMESH" run good.json --duration 2000 --out "$T/o-big" --no-progress >/dev/null 2>"$T/.err"
    echo $? >"$T/.rc"
)
if [ -s "$T/.rc" ]; then
    rc=$(cat "$T/.rc")
    if [ "$rc" -ne 2 ]; then why="exit status $rc"; elif [ -e "$T/o-big" ]; then why="the folder it made is left";
    elif ! grep -q "File too large" "$T/.err"; then why="no reason given"; else why=""; fi
    : >"$T/.out"
    report "--out that fills up: exit 2, the reason, and no folder left" "$why"
fi
mkdir -p "$T/o-blocked/summary.json"
echo "an older run's spikes" >"$T/o-blocked/spikes.csv"
expect_fail "--out where a directory takes an output's name: nothing written or renamed" \
    "^spikemesh run: --out '.*o-blocked': cannot write summary\\.json: a directory has that name$" \
    -- run good.json --out "$T/o-blocked"

# ---------------------------------------------------------------------------------------------------
# Bad command-line values.

expect_fail "--duration -1" "--duration '-1': must not be negative" -- run good.json --duration -1
expect_fail "--duration nan" "--duration 'nan': not a finite decimal number" -- run good.json --duration nan
expect_fail "--duration inf" "--duration 'inf': not a finite decimal number" -- run good.json --duration inf
expect_fail "--duration abc" "--duration 'abc': not a finite decimal number" -- run good.json --duration abc
expect_fail "--duration 0x10 (hexadecimal)" "--duration '0x10': not a finite decimal number" \
    -- run good.json --duration 0x10
expect_fail "--duration 1e300 (too many steps)" "--duration 1e\+300 ms is .* steps .*at most" \
    -- run good.json --duration 1e300 --out "$T/o6"
expect_fail "--duration without a value" "option '--duration' needs a value" -- run good.json --duration
expect_fail "--seed -3" "--seed '-3': not a whole number" -- run good.json --seed -3
expect_fail "--seed 1.5" "--seed '1\.5': not a whole number" -- run good.json --seed 1.5
expect_fail "--seed 2^64" "--seed '18446744073709551616': must be below 2\^64" \
    -- run good.json --seed 18446744073709551616
expect_fail "unknown option" "unknown option '--frobnicate'" -- run good.json --frobnicate
expect_fail "unknown short option" "unknown option '-x'" -- run good.json -x
expect_fail "unknown short option in a cluster" "unknown option '-x'" -- run good.json -xh
expect_fail "value given to a flag" "option '--json' takes no value" -- run good.json --json=yes
expect_fail "--chip without a value" "^spikemesh info: option '--chip' needs a value" -- info good.json --chip
expect_fail "two networks" "unexpected argument 'cuba'" -- run good.json cuba
expect_fail "unknown subcommand" "^spikemesh: unknown command 'simulate'" -- simulate good.json
expect_fail "help on an unknown subcommand" "unknown command 'simulate'" -- help simulate
expect_fail "--chip nosuchpreset" "--chip 'nosuchpreset': no such file or preset \(presets: loihi, small\)" \
    -- run good.json --chip nosuchpreset
expect_fail "--chip loihi:0x4" "--chip 'loihi:0x4': mesh sides must be 1 to [0-9]+ tiles" -- run good.json --chip loihi:0x4
expect_fail "--chip loihi:axb" "--chip 'loihi:axb': write the mesh size as WxH" -- run good.json --chip loihi:axb
expect_fail "--chip loihi:4x" "--chip 'loihi:4x': write the mesh size as WxH" -- run good.json --chip loihi:4x
expect_fail "--chip loihi:5000x1" "--chip 'loihi:5000x1': mesh sides must be 1 to 4096 tiles" \
    -- run good.json --chip loihi:5000x1
expect_fail "--chip file that does not exist" "--chip '.*nochip\.json': cannot read the file: No such file or directory" \
    -- run good.json --chip "$T/nochip.json"
expect_fail "presets with an unknown argument" "unknown argument '--frob'" -- presets --frob
"$SPIKEMESH" map cuba:600 --chip small:4x4 --placer order --out "$T/pl.json" >/dev/null 2>&1
cat >"$T/pl_bad_format.json" <<'EOF2'
{"format": "something-else", "chip": {"name": "small", "width": 4, "height": 4, "cores_per_tile": 2}, "cores": [[0, 1, 0, 0, 0]]}
EOF2
cat >"$T/pl_bad_entry.json" <<'EOF2'
{"format": "spikemesh-placement", "chip": {"name": "small", "width": 4, "height": 4, "cores_per_tile": 2},
 "cores": [[0, 300, 0, 0, 0], [300, 300, 9, 0, 0]]}
EOF2
cat >"$T/pl_gap.json" <<'EOF2'
{"format": "spikemesh-placement", "chip": {"name": "small", "width": 4, "height": 4, "cores_per_tile": 2},
 "cores": [[0, 200, 0, 0, 0], [250, 350, 1, 0, 0]]}
EOF2
cat >"$T/pl_clash.json" <<'EOF2'
{"format": "spikemesh-placement", "chip": {"name": "small", "width": 4, "height": 4, "cores_per_tile": 2},
 "cores": [[0, 200, 0, 0, 0], [200, 200, 0, 0, 0], [400, 200, 1, 0, 0]]}
EOF2
cat >"$T/pl_limit.json" <<'EOF2'
{"format": "spikemesh-placement", "chip": {"name": "small", "width": 4, "height": 4, "cores_per_tile": 2},
 "cores": [[0, 600, 0, 0, 0]]}
EOF2
expect_fail "placement: not a placement file" "pl_bad_format.json:1:12: format: not a placement file" -- run cuba:600 --chip small:4x4 --placement "$T/pl_bad_format.json"
expect_fail "placement: a tile outside the mesh" "pl_bad_entry.json:2:31: cores\\[1\\]: each core is" -- run cuba:600 --chip small:4x4 --placement "$T/pl_bad_entry.json"
expect_fail "placement: neurons not covered in order" "the next core must start at neuron 200" -- run cuba:600 --chip small:4x4 --placement "$T/pl_gap.json"
expect_fail "placement: two cores on one slot" "shares tile \\(0,0\\) slot 0" -- run cuba:600 --chip small:4x4 --placement "$T/pl_clash.json"
expect_fail "placement: a core over the chip's limits" "breaks the chip's neurons limit" -- run cuba:600 --chip small:4x4 --placement "$T/pl_limit.json"
expect_fail "placement: for another mesh" "the placement is for a 4x4 mesh" -- run cuba:600 --chip small:5x5 --placement "$T/pl.json"
# whole numbers written as floats: 2^64 (a version) and 2^63 (a seed, at most 2^63 - 1) were taken past their
# maximum ((double)UINT64_MAX rounds up to 2^64); the version was then read as 0
sed 's/"version": *1/"version": 1.8446744073709552e19/' "$T/pl.json" >"$T/pl_ver.json"
expect_fail "placement: version 2^64 written as a float" "pl_ver\\.json:[0-9]+:[0-9]+: version: must be at most 18446744073709551615, got 18446744073709551616$" \
    -- run cuba:600 --chip small:4x4 --placement "$T/pl_ver.json"
sed 's/"seed": *1/"seed": 9.223372036854775807e18/' "$T/pl.json" >"$T/pl_seed.json"
expect_fail "placement: seed 2^63 written as a float" "pl_seed\\.json:[0-9]+:[0-9]+: seed: must be at most 9223372036854775807, got 9223372036854775808$" \
    -- run cuba:600 --chip small:4x4 --placement "$T/pl_seed.json"
expect_fail "board of too many chips" "a board of 1000x1000 chips of 8x4 tiles is larger" -- run cuba --chip 'loihi*1000x1000'
expect_fail "board written badly" "or the board as XxY chips" -- run cuba --chip 'loihi*4'
expect_fail "map: unknown placer" "--placer 'random': unknown" -- map cuba --placer random
expect_fail "map: no network" "which network" -- map
expect_fail "traffic: unknown pattern" "--pattern 'zigzag': unknown" -- traffic --pattern zigzag
expect_fail "traffic: rate above 1" "--rate '2': must be at most 1" -- traffic --rate 2
expect_fail "traffic: negative rate" "--rate '-0.1': must not be negative" -- traffic --rate -0.1
expect_fail "traffic: malformed mesh" "--mesh '0x3': must be WxH" -- traffic --mesh 0x3
expect_fail "traffic: unknown router" "--router 'wormhole': must be ideal or iq" -- traffic --router wormhole
expect_fail "traffic: transpose on a rectangle" "transpose traffic needs a square mesh" -- traffic --mesh 4x3 --pattern transpose
expect_fail "traffic: zero buffer depth" "--buffer-depth '0': must be between 1" -- traffic --buffer-depth 0
expect_fail "traffic: too few cycles" "--cycles '5': must be between 100" -- traffic --cycles 5
expect_fail "traffic: unwritable histogram" "--latency-csv '/nonexistent/x.csv': cannot write" -- traffic --mesh 2x2 --cycles 100 --latency-csv /nonexistent/x.csv

# ---------------------------------------------------------------------------------------------------
# Chip files.

mk chip-no-mesh.json <<'EOF'
{
  "name": "nomesh",
  "cores_per_tile": 4,
  "core": {"max_neurons": 1024, "synapse_memory_bytes": 131072},
  "router": {"table_entries": 1024}
}
EOF
expect_fail "chip file without mesh" \
    'chip-no-mesh\.json:1:1: missing required field "mesh"' -- run good.json --chip chip-no-mesh.json --out "$T/o7"

mk chip-cores-zero.json <<'EOF'
{
  "mesh": {"width": 2, "height": 2},
  "cores_per_tile": 0,
  "core": {"max_neurons": 1024, "synapse_memory_bytes": 131072},
  "router": {"table_entries": 1024}
}
EOF
expect_fail "chip cores_per_tile 0" \
    'chip-cores-zero\.json:3:21: cores_per_tile: must be at least 1, got 0' -- run good.json --chip chip-cores-zero.json

mk chip-cores-many.json <<'EOF'
{
  "mesh": {"width": 2, "height": 2},
  "cores_per_tile": 100,
  "core": {"max_neurons": 1024, "synapse_memory_bytes": 131072},
  "router": {"table_entries": 1024}
}
EOF
expect_fail "chip cores_per_tile 100" \
    'chip-cores-many\.json:3:21: cores_per_tile: must be at most 28, got 100' \
    -- run good.json --chip chip-cores-many.json

mk chip-width-negative.json <<'EOF'
{
  "mesh": {"width": -2, "height": 2},
  "cores_per_tile": 4,
  "core": {"max_neurons": 1024, "synapse_memory_bytes": 131072},
  "router": {"table_entries": 1024}
}
EOF
expect_fail "chip negative mesh width" \
    'chip-width-negative\.json:2:21: mesh\.width: must be at least 1, got -2' \
    -- run good.json --chip chip-width-negative.json

mk chip-table-string.json <<'EOF'
{
  "mesh": {"width": 2, "height": 2},
  "cores_per_tile": 4,
  "core": {"max_neurons": 1024, "synapse_memory_bytes": 131072},
  "router": {"table_entries": "1024"}
}
EOF
expect_fail "chip table_entries as a string" \
    'chip-table-string\.json:5:31: router\.table_entries: must be a whole number, not a string' \
    -- run good.json --chip chip-table-string.json

mk chip-malformed.json <<'EOF'
{
  "mesh": {"width": 2, "height": 2},,
  "cores_per_tile": 4
}
EOF
expect_fail "chip file malformed" 'chip-malformed\.json:2:[0-9]+: malformed JSON' -- info good.json --chip chip-malformed.json

mk chip-unknown-field.json <<'EOF'
{
  "mesh": {"width": 2, "height": 2},
  "cores_per_tile": 4,
  "core": {"max_neurons": 1024, "synapse_memory_bytes": 131072, "clock_hz": 1000},
  "router": {"table_entries": 1024}
}
EOF
expect_fail "chip unknown core field" \
    'chip-unknown-field\.json:4:77: core\.clock_hz: unknown field "clock_hz"' -- info good.json --chip chip-unknown-field.json

mkdir "$T/chipdir"
expect_fail "chip path that is a directory" 'chipdir: cannot read: it is a directory' -- info good.json --chip "$T/chipdir"

# ---------------------------------------------------------------------------------------------------
# info.

expect_fail "info without a network" "^spikemesh info: which network\?" -- info
expect_fail "info with a run-only option" "option '--duration' belongs to 'run'" -- info good.json --duration 5
expect_fail "info with --out" "option '--out' belongs to 'run'" -- info good.json --out "$T/o8"
expect_fail "info on a malformed network" '^spikemesh info: malformed\.json:4:[0-9]+: malformed JSON' -- info malformed.json
expect_fail "info on a network that does not fit" "^spikemesh info: network 'cuba:40000' does not fit chip 'loihi'" \
    -- info cuba:40000
expect_fail "info --seed abc" "--seed 'abc': not a whole number" -- info good.json --seed abc
expect_fail "run --split half" "^spikemesh run: --split 'half': must be adapt, fixed or shuffle" -- run good.json --split half
expect_fail "info --split fixed" "option '--split' belongs to 'run'" -- info good.json --split fixed
SPIKEMESH_SIMD=sse
export SPIKEMESH_SIMD
expect_fail "SPIKEMESH_SIMD=sse" "^spikemesh: SPIKEMESH_SIMD='sse': must be avx512, avx2 or c" -- run good.json
unset SPIKEMESH_SIMD

# ---------------------------------------------------------------------------------------------------
# map, traffic and placement files.

# Placement files: every field has a type, unknown fields are refused (in "chip" too), and neurons must be what
# the cores cover (and so the network's count). C is a valid chip object and cores for cuba:600 on small:4x4.
C='"chip": {"name": "small:4x4", "width": 4, "height": 4, "cores_per_tile": 2}'
K='"cores": [[0, 203, 0, 0, 0], [203, 203, 0, 0, 1], [406, 194, 1, 0, 0]]'
echo "{\"format\": \"spikemesh-placement\", \"version\": \"banana\", $C, $K}" | mk pl_version_str.json
echo "{\"format\": \"spikemesh-placement\", \"version\": 99, $C, $K}" | mk pl_version_99.json
echo "{\"format\": \"spikemesh-placement\", \"neurons\": \"many\", $C, $K}" | mk pl_neurons_str.json
echo "{\"format\": \"spikemesh-placement\", \"seed\": [], $C, $K}" | mk pl_seed_array.json
echo "{\"format\": \"spikemesh-placement\", \"seed\": -1, $C, $K}" | mk pl_seed_negative.json
echo "{\"format\": \"spikemesh-placement\", \"network\": 5, $C, $K}" | mk pl_network_num.json
echo "{\"format\": \"spikemesh-placement\", \"placer\": {}, $C, $K}" | mk pl_placer_obj.json
echo "{\"format\": \"spikemesh-placement\", \"placer\": \"zzz\", $C, $K}" | mk pl_placer_unknown.json
echo "{\"format\": \"spikemesh-placement\", \"chip\": {\"name\": \"small\", \"width\": 4, \"height\": 4, \"cores_per_tile\": 2, \"zz\": 1}, $K}" \
    | mk pl_chip_extra.json
echo "{\"format\": \"spikemesh-placement\", \"chip\": \"small:4x4\", $K}" | mk pl_chip_str.json
echo "{\"format\": \"spikemesh-placement\", \"neurons\": 12345, $C, $K}" | mk pl_neurons_wrong.json
echo "{\"format\": \"spikemesh-placement\", \"neurons\": 600, $C, $K}" | mk pl_neurons_600.json
P="run cuba:600 --chip small:4x4 --placement"
expect_fail "placement: version a string" 'pl_version_str\.json:1:46: version: must be a whole number, not a string' -- $P pl_version_str.json
expect_fail "placement: version 99" 'pl_version_99\.json:1:46: version: unsupported version 99' -- $P pl_version_99.json
expect_fail "placement: neurons a string" 'pl_neurons_str\.json:1:46: neurons: must be a whole number, not a string' -- $P pl_neurons_str.json
expect_fail "placement: seed an array" 'pl_seed_array\.json:1:43: seed: must be a whole number, not an array' -- $P pl_seed_array.json
expect_fail "placement: negative seed" 'pl_seed_negative\.json:1:43: seed: must be at least 0' -- $P pl_seed_negative.json
expect_fail "placement: network a number" 'pl_network_num\.json:1:46: network: must be a string, not a number' -- $P pl_network_num.json
expect_fail "placement: placer an object" 'pl_placer_obj\.json:1:45: placer: must be a string, not an object' -- $P pl_placer_obj.json
expect_fail "placement: unknown placer" 'pl_placer_unknown\.json:1:45: placer: unknown placer "zzz"' -- $P pl_placer_unknown.json
expect_fail "placement: unknown field in chip" 'pl_chip_extra\.json:1:113: chip\.zz: unknown field "zz"' -- $P pl_chip_extra.json
expect_fail "placement: chip a string" 'pl_chip_str\.json:1:43: chip: must be an object' -- $P pl_chip_str.json
expect_fail "placement: neurons not what the cores cover" \
    'pl_neurons_wrong\.json:1:46: neurons: 12345, but the cores cover 600 neurons' -- $P pl_neurons_wrong.json
expect_fail "placement: made for another network" \
    "pl_neurons_600\.json: the placement covers 600 neurons, but network 'cuba:601' has 601" \
    -- run cuba:601 --chip small:4x4 --placement pl_neurons_600.json

# map takes --seed and --dt as run does; an unwritable --out is refused, with the reason, before any work.
expect_fail "map: --seed 2^64-1" "^spikemesh map: --seed '18446744073709551615': must be below 2\^63" \
    -- map cuba:600 --chip small:4x4 --seed 18446744073709551615 --out "$T/map-seed.json"
expect_fail "map: --seed 2^63" "--seed '9223372036854775808': must be below 2\^63" \
    -- map cuba:600 --chip small:4x4 --seed 9223372036854775808 --out "$T/map-seed.json"
expect_fail "map: --dt 0" "^spikemesh map: --dt '0': must be a positive number of ms" \
    -- map cuba:600 --chip small:4x4 --dt 0 --out "$T/map-dt.json"
mkdir "$T/mapdir"
expect_fail "map: --out a directory" "^spikemesh map: --out '.*mapdir': cannot write the file: Is a directory" \
    -- map cuba:600 --chip small:4x4 --out "$T/mapdir"
expect_fail "map: --out in a missing directory" \
    "--out '.*nosuchdir/p\.json': cannot write the file: No such file or directory" \
    -- map cuba:600 --chip small:4x4 --out "$T/nosuchdir/p.json"
expect_fail "map: --json=1" "^spikemesh map: option '--json' takes no value" -- map cuba:600 --json=1
"$SPIKEMESH" map cuba:600 --chip small:4x4 --placer order --seed 9223372036854775807 --out "$T/pl-seed.json" >/dev/null 2>&1
check "map: --seed 2^63-1 is written as it is" grep -q '"seed": 9223372036854775807,' "$T/pl-seed.json"

# traffic: flits as in chip files, the histogram refused before anything is printed, no mean of no packets.
expect_fail "traffic: --json=1" "^spikemesh traffic: option '--json' takes no value" -- traffic --json=1
expect_fail "traffic: --packet-flits 1025" "--packet-flits '1025': must be between 1 and 1024" \
    -- traffic --mesh 2x2 --cycles 100 --packet-flits 1025
expect_fail "traffic: --link-flits 1025" "--link-flits '1025': must be between 1 and 1024" \
    -- traffic --mesh 2x2 --cycles 100 --link-flits 1025
expect_fail "traffic: --latency-csv a directory" \
    "^spikemesh traffic: --latency-csv '.*mapdir': cannot write the file: Is a directory" \
    -- traffic --mesh 2x2 --cycles 100 --latency-csv "$T/mapdir"
expect_fail "traffic: --latency-csv with --sweep" "--latency-csv applies to one load, not to --sweep" \
    -- traffic --mesh 2x2 --cycles 100 --sweep --latency-csv "$T/lat.csv"
run_prog traffic --help
check "traffic --help gives the --packet-flits range" grep -q -- '--packet-flits F .*1 to 1024' "$T/.out"
run_prog traffic --mesh 2x2 --cycles 100 --rate 0
why=$(why_crashed)
[ -z "$why" ] && [ "$rc" -ne 0 ] && why="exit status $rc, expected 0"
[ -z "$why" ] && ! grep -q '^  latency  *none: no packet' "$T/.out" && why="no 'none: no packet' latency line"
[ -z "$why" ] && grep -q 'mean 0\.00' "$T/.out" && why="a mean latency of no packets"
report "traffic: no packet delivered (text)" "$why"
run_prog traffic --mesh 2x2 --cycles 100 --rate 0 --json
why=$(why_crashed)
[ -z "$why" ] && [ "$rc" -ne 0 ] && why="exit status $rc, expected 0"
[ -z "$why" ] && ! grep -q '"mean_latency_cycles":null,"p99_latency_cycles":null,"zero_load_latency_cycles":null,"mean_hops":null' "$T/.out" \
    && why="latency and hops are not null"
report "traffic: no packet delivered (JSON)" "$why"

# Output to a stdout that cannot be written (a full disk): exit 2 with a message, not 0.
if [ -w /dev/full ]; then
    for c in "run good.json --no-progress --json" "info good.json --json" "presets --json" "presets" \
        "traffic --rate 0.01 --cycles 200 --json" "run good.json --no-progress"; do
        # shellcheck disable=SC2086
        $TIMEOUT "$SPIKEMESH" $c >/dev/full 2>"$T/.err" </dev/null
        rc=$?
        if [ "$rc" -eq 2 ] && grep -q "cannot write" "$T/.err"; then why=""; else why="exit status $rc"; fi
        : >"$T/.out"
        report "$c > /dev/full" "$why"
    done
fi

# ---------------------------------------------------------------------------------------------------
# Help.

expect_help "spikemesh --help" -- --help
expect_help "spikemesh help" -- help
expect_help "spikemesh -h" -- -h
expect_help "spikemesh help --help" -- help --help
expect_help "spikemesh help info" -- help info
expect_help "spikemesh help presets" -- help presets
for c in map traffic train; do
    expect_help "spikemesh help $c" -- help "$c"
    if grep -q "^usage: spikemesh $c " "$T/.out"; then why=""; else why="printed another command's usage"; fi
    report "spikemesh help $c: the usage of $c" "$why"
done
expect_fail "spikemesh help of an unknown command" "^spikemesh help: unknown command 'frob' \\(commands: run, info, presets, map, traffic, train, help\\)" -- help frob
expect_help "spikemesh help run" -- help run
expect_help "spikemesh run --help" -- run --help
expect_help "spikemesh run -h" -- run -h
expect_help "spikemesh info --help" -- info --help
expect_help "spikemesh presets --help" -- presets --help

finish
