#!/bin/sh
# tests/nir.sh: NIR graphs through the command line: runs with --input and --dt, the flat and nested braille graphs
# give the same spikes at any thread count, unsupported and damaged files and bad input files exit 2 with file:line.
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
shared="$SRCDIR/../shared/nir"

# expect2 NAME REGEX -- ARGS...: exit status 2, one line on stderr matching REGEX, nothing on stdout.
expect2() {
    name=$1
    re=$2
    shift 3
    "$SPIKEMESH" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -ne 2 ]; then
        notok "$name: exit status $rc, expected 2"
    elif [ "$(wc -l <"$tmp/err")" -ne 1 ] || ! grep -Eq -- "$re" "$tmp/err"; then
        notok "$name: stderr does not match /$re/"
    elif [ -s "$tmp/out" ]; then
        notok "$name: wrote to stdout"
    else
        ok "$name"
        return
    fi
    sed -e 's/^/#   /' "$tmp/err"
}

# ---- without the shared files ----
mkdir "$tmp/folder.nir"
expect2 "a directory named .nir" '^spikemesh info: .*folder\.nir: cannot open: Is a directory$' -- info "$tmp/folder.nir"
printf 'step,neuron\n0,0\n' >"$tmp/text.nir"
expect2 "a text file named .nir" '^spikemesh run: .*text\.nir: not an HDF5 file' -- run "$tmp/text.nir"
expect2 "a missing .nir file" '^spikemesh info: .*absent\.nir: cannot open: No such file' -- info "$tmp/absent.nir"
expect2 "--dt with a built-in network" "^spikemesh run: --dt applies to NIR graphs \(\.nir files\); 'cuba' sets" \
    -- run cuba --dt 0.5
expect2 "--dt 0" "^spikemesh run: --dt '0': must be a positive number of ms" -- run x.nir --dt 0
expect2 "--dt not a number" "^spikemesh info: --dt 'fast': not a finite decimal number" -- info x.nir --dt fast
expect2 "--input belongs to run" "^spikemesh info: option '--input' belongs to 'run'" -- info x.nir --input a.csv
expect2 "--input for a network without inputs" \
    "^spikemesh run: .*in\.csv: network 'cuba:100' has no spike_source population" \
    -- run cuba:100 --input "$tmp/in.csv"

if [ ! -d "$shared" ]; then
    echo "# skipped: $shared not found (the real NIR files)"
    [ "$fails" -gt 0 ] && finish
    exit 77
fi

# ---- lif_norse.nir: each input spike makes one output spike, one step later ----
printf 'step,neuron\n6,0\n22,0\n27,0\n31,0\n32,0\n35,0\n37,0\n40,0\n41,0\n43,0\n' >"$tmp/in.csv"
"$SPIKEMESH" run "$shared/lif_norse.nir" --input "$tmp/in.csv" --duration 60 --out "$tmp/lif" --json \
    >"$tmp/lif.json" 2>"$tmp/lif.err"
check "lif_norse.nir runs" [ $? -eq 0 ]
check "lif_norse.nir: 60 steps of the default 1 ms" [ "$(json_num "$tmp/lif.json" steps)" = 60 ]
check "lif_norse.nir: input spikes replayed as given" \
    [ "$(awk -F, '$2 == 0 { print $1 }' "$tmp/lif/spikes.csv" | tr '\n' ' ')" = "6 22 27 31 32 35 37 40 41 43 " ]
check "lif_norse.nir: the LIF neuron spikes one step after each input" \
    [ "$(awk -F, '$2 == 1 { print $1 - 1 }' "$tmp/lif/spikes.csv" | tr '\n' ' ')" = "6 22 27 31 32 35 37 40 41 43 " ]
"$SPIKEMESH" run "$shared/lif_norse.nir" --input "$tmp/in.csv" --duration 6 --dt 0.1 --json >"$tmp/lif2.json" 2>&1
check "--dt 0.1: 60 steps in 6 ms" [ "$(json_num "$tmp/lif2.json" steps)" = 60 ]
"$SPIKEMESH" run "$shared/lif_norse.nir" --duration 10 --json >"$tmp/lif3.json" 2>&1
check "without --input, the inputs stay silent" [ "$(json_num "$tmp/lif3.json" spikes)" = 0 ]
"$SPIKEMESH" info "$shared/braille_rnn_cubalif.nir" --json >"$tmp/info.json" 2>&1
check "info on a NIR graph" [ "$(json_num "$tmp/info.json" neurons)" = 57 ]
check "info: 12*38 + 38*38 + 38*7 synapses" [ "$(json_num "$tmp/info.json" synapses)" = 2166 ]

# ---- braille, flat and nested: the same spikes, at any thread count and in both precisions ----
# a chip with 5 neurons per core spreads the 57 neurons over 12 cores, so that 4 threads have work
cat >"$tmp/chip5.json" <<'JSON'
{"name": "five", "mesh": {"width": 4, "height": 4}, "cores_per_tile": 1,
 "core": {"max_neurons": 5, "synapse_memory_bytes": 65536, "synapse_bytes": 4, "max_fan_in": 4096,
          "max_fan_out": 8192, "max_delay_steps": 16},
 "router": {"table_entries": 256}}
JSON
awk 'BEGIN { srand(3); print "step,neuron"; for (s = 0; s < 2000; s++) for (i = 0; i < 12; i++) if (rand() < 0.03) print s "," i }' \
    >"$tmp/braille.csv"
for f in braille_rnn_cubalif braille_rnn_cubalif_subgraph; do
    for t in 1 4; do
        for prec in double single; do
            "$SPIKEMESH" run "$shared/$f.nir" --input "$tmp/braille.csv" --dt 0.1 --duration 200 --threads $t \
                --precision $prec --chip "$tmp/chip5.json" --out "$tmp/$f.$t.$prec" --json >"$tmp/run.json" 2>"$tmp/err"
            check "$f, $t threads, $prec: exits 0" [ $? -eq 0 ]
            check "$f, $t threads, $prec: uses $t threads" [ "$(json_num "$tmp/run.json" threads)" = $t ]
        done
    done
done
a=braille_rnn_cubalif
b=braille_rnn_cubalif_subgraph
for prec in double single; do # 3 threads whose borders move at random after every batch of steps
    "$SPIKEMESH" run "$shared/$a.nir" --input "$tmp/braille.csv" --dt 0.1 --duration 200 --threads 3 --split shuffle \
        --precision $prec --chip "$tmp/chip5.json" --out "$tmp/$a.s3.$prec" >/dev/null 2>&1
    check "$a, 3 threads, --split shuffle, $prec: exits 0" [ $? -eq 0 ]
    check "braille $prec: 3 threads, --split shuffle = 1 thread" cmp -s "$tmp/$a.1.$prec/spikes.csv" "$tmp/$a.s3.$prec/spikes.csv"
    check "braille $prec: counters, 3 threads, --split shuffle = 1 thread" \
        cmp -s "$tmp/$a.1.$prec/traffic.json" "$tmp/$a.s3.$prec/traffic.json"
done
check "braille: more spikes than the input's" \
    [ "$(wc -l <"$tmp/$a.1.double/spikes.csv")" -gt "$(wc -l <"$tmp/braille.csv")" ]
"$SPIKEMESH" run "$shared/$a.nir" --input "$tmp/braille.csv" --dt 0.1 --duration 200 --out "$tmp/loihi" >/dev/null 2>&1
check "braille: the same spikes on another chip" cmp -s "$tmp/$a.1.double/spikes.csv" "$tmp/loihi/spikes.csv"
for prec in double single; do
    check "braille $prec: 4 threads = 1 thread" cmp -s "$tmp/$a.1.$prec/spikes.csv" "$tmp/$a.4.$prec/spikes.csv"
    check "braille $prec: counters, 4 threads = 1 thread" cmp -s "$tmp/$a.1.$prec/traffic.json" "$tmp/$a.4.$prec/traffic.json"
    check "braille $prec: nested graph = flat graph" cmp -s "$tmp/$a.1.$prec/spikes.csv" "$tmp/$b.1.$prec/spikes.csv"
    check "braille $prec: nested, 4 threads = flat, 1 thread" cmp -s "$tmp/$a.1.$prec/spikes.csv" "$tmp/$b.4.$prec/spikes.csv"
done

# A graph whose file name is not UTF-8 (Latin-1 'caf\351.nir'): the network's name, taken from it, is made valid
# UTF-8, so --json is still valid JSON.
latin="$tmp/$(printf 'caf\351').nir"
cp "$shared/lif_norse.nir" "$latin"
"$SPIKEMESH" run "$latin" --duration 5 --json --no-progress >"$tmp/latin.json" 2>"$tmp/latin.err"
check "a graph under a Latin-1 file name: exits 0" [ $? -eq 0 ]
check "a graph under a Latin-1 file name: --json is valid JSON naming it caf?.nir" python3 -c \
    'import json, sys; d = json.load(open(sys.argv[1], encoding="utf-8")); assert d["network"] == "caf?.nir", d["network"]' \
    "$tmp/latin.json"

# ---- refused ----
expect2 "cnn_sinabs.nir: Conv2d, SumPool2d, Flatten named" \
    '^spikemesh run: .*cnn_sinabs\.nir: /node/nodes/0: node "0" has type Conv2d, which spikemesh does not import \(nor .*SumPool2d.*Flatten' \
    -- run "$shared/cnn_sinabs.nir"
head -c 3000 "$shared/lif_norse.nir" >"$tmp/cut.nir"
expect2 "a truncated file" '^spikemesh info: .*cut\.nir: cannot open as HDF5 \(damaged or truncated\?\): truncated file' \
    -- info "$tmp/cut.nir"
# One byte changed in a variable-length string's heap makes libhdf5 (1.10) itself read out of bounds, a crash in
# the library; the read is guarded, so this is an error too ("the HDF5 library failed on this file ... damaged"),
# and the process ends without libhdf5's clean-up.
for at in 16859:t; do
    cp "$shared/braille_rnn_cubalif_subgraph.nir" "$tmp/hurt.nir"
    printf '%s' "${at#*:}" | dd of="$tmp/hurt.nir" bs=1 seek="${at%:*}" conv=notrunc 2>/dev/null
    for cmd in info run; do
        expect2 "one byte changed at ${at%:*}: $cmd" \
            "^spikemesh $cmd: .*hurt\\.nir: " \
            -- $cmd "$tmp/hurt.nir"
    done
done
printf 'step,neuron\n0,0\n1,0\n2;0\n' >"$tmp/bad1.csv"
expect2 "input: a malformed line" '^spikemesh run: .*bad1\.csv:4: expected STEP,NEURON' \
    -- run "$shared/lif_norse.nir" --input "$tmp/bad1.csv"
printf 'step,neuron\n0,0\n1,0\033[31mRED\n' >"$tmp/esc.csv"
expect2 "input: a line with an escape sequence is quoted with it as '?'" \
    '^spikemesh run: .*esc\.csv:3: expected STEP,NEURON \(two whole numbers below 2\^63\), got "1,0\?\[31mRED"$' \
    -- run "$shared/lif_norse.nir" --input "$tmp/esc.csv"
printf 'step,neuron\n0,0\r\r\n' >"$tmp/crcr.csv"
expect2 "input: a line ending in two carriage returns" \
    '^spikemesh run: .*crcr\.csv:2: expected STEP,NEURON \(two whole numbers below 2\^63\), got "0,0\?"$' \
    -- run "$shared/lif_norse.nir" --input "$tmp/crcr.csv"
printf 'step,neuron\n0,0\n100000,0\n5,0\n' >"$tmp/late.csv"
expect2 "input: lines past the run are still checked (order of steps)" \
    '^spikemesh run: .*late\.csv:4: step 5 comes after step 100000; lines must be in order of step$' \
    -- run "$shared/lif_norse.nir" --input "$tmp/late.csv" --duration 10
printf 'step,neuron\n0,0\n1,1\n' >"$tmp/bad2.csv"
expect2 "input: a neuron out of range" \
    '^spikemesh run: .*bad2\.csv:3: neuron 1 is out of range: the input populations have 1 neurons \(0 to 0\)' \
    -- run "$shared/lif_norse.nir" --input "$tmp/bad2.csv"
printf 'step,neuron\n5,0\n4,0\n' >"$tmp/bad3.csv"
expect2 "input: steps out of order" '^spikemesh run: .*bad3\.csv:3: step 4 comes after step 5' \
    -- run "$shared/lif_norse.nir" --input "$tmp/bad3.csv"
printf 'neuron,step\n' >"$tmp/bad4.csv"
expect2 "input: no header" '^spikemesh run: .*bad4\.csv:1: the first line must be the header "step,neuron"' \
    -- run "$shared/lif_norse.nir" --input "$tmp/bad4.csv"
expect2 "input: a missing file" '^spikemesh run: .*none\.csv: cannot open: No such file' \
    -- run "$shared/lif_norse.nir" --input "$tmp/none.csv"
finish
