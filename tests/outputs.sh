#!/bin/sh
# tests/outputs.sh: the files people look at parse: raster.svg and traffic.svg are well-formed SVG, trace.json is
# valid JSON with ordered timestamps, spikes.vcd has a header and monotonic times, latency.csv adds up; with
# Chromium installed, traffic.svg renders to a PNG headless.
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
if ! command -v python3 >/dev/null 2>&1; then
    echo "python3 is needed to parse the outputs (tools/bootstrap installs it)"
    exit 77
fi

"$SPIKEMESH" run cuba:2000 --duration 200 --mesh-model cycle --out "$tmp/o" --json >"$tmp/o.json" 2>"$tmp/o.err"
check "run with --mesh-model cycle --out exits 0" [ $? -eq 0 ]
for f in spikes.csv traffic.json summary.json raster.svg traffic.svg spikes.vcd trace.json latency.csv; do
    check "$f is written" [ -s "$tmp/o/$f" ]
done
check "no .part files left" [ -z "$(ls "$tmp/o" | grep part)" ]

check "raster.svg and traffic.svg are well-formed SVG" python3 - "$tmp/o" <<'PY'
import sys, xml.etree.ElementTree as ET
for name in ("raster.svg", "traffic.svg"):
    root = ET.parse(sys.argv[1] + "/" + name).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg", root.tag
    assert len(list(root.iter())) > 20, name
PY

check "raster.svg draws one mark per drawn spike of the drawn neurons" python3 - "$tmp/o" <<'PY'
import sys, csv, xml.etree.ElementTree as ET
d = sys.argv[1]
ns = "{http://www.w3.org/2000/svg}"
marks = sum(1 for g in ET.parse(d + "/raster.svg").getroot().iter(ns + "g") for r in g.iter(ns + "rect"))
# cuba:2000 has exc 0..1599 and inh 1600..1999; 300 rows of each are drawn
spikes = 0
with open(d + "/spikes.csv") as f:
    for row in csv.DictReader(f):
        n = int(row["neuron"])
        if n < 300 or 1600 <= n < 1900:
            spikes += 1
assert marks == spikes and spikes > 0, (marks, spikes)
PY

check "trace.json is a Chrome/Perfetto trace with ordered timestamps" python3 - "$tmp/o/trace.json" <<'PY'
import sys, json
t = json.load(open(sys.argv[1]))
ev = t["traceEvents"]
ts = [e["ts"] for e in ev if "ts" in e]
assert len(ts) > 100 and all(a <= b for a, b in zip(ts, ts[1:]))
assert any(e["ph"] == "X" for e in ev) and any(e["ph"] == "C" for e in ev) and any(e["ph"] == "M" for e in ev)
assert all(e.get("dur", 0) >= 0 for e in ev)
PY

check "spikes.vcd has a header and strictly increasing times" python3 - "$tmp/o/spikes.vcd" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
text = "\n".join(lines)
assert "$timescale" in text and "$enddefinitions $end" in text and "$var wire 1" in text
times = [int(l[1:]) for l in lines if l.startswith("#")]
assert len(times) > 3 and all(a < b for a, b in zip(times, times[1:]))
PY

check "spikes.vcd rises exactly at the probed neurons' spikes" python3 - "$tmp/o" <<'PY'
import sys, csv
d = sys.argv[1]
names, ident, rises, t = {}, None, set(), 0
for l in open(d + "/spikes.vcd"):
    l = l.strip()
    if l.startswith("$var"):
        p = l.split()
        pop, idx = p[4].rsplit("_", 1)
        names[p[3]] = (pop, int(idx))
    elif l.startswith("#"):
        t = int(l[1:])
    elif l[:1] == "1":
        rises.add((t, names[l[1:]]))
first = {"exc": 0, "inh": 1600}
want = set()
for row in csv.DictReader(open(d + "/spikes.csv")):
    n, s = int(row["neuron"]), int(row["step"])
    pop = "exc" if n < 1600 else "inh"
    if n - first[pop] < 4:
        want.add((s * 100000, (pop, n - first[pop])))
# a rise marks a spike that does not follow one in the previous step
assert rises <= want and len(rises) > 0, (len(rises), len(want))
PY

# spikes.vcd's times for steps that are not a whole number of ns (0.1 ns: every time was #0) and for a run
# longer than 2^63 ns (10^13 ms steps: times wrapped around): each time is a whole number of steps, increasing,
# in the unit the header gives, and the rises are the spikes of spikes.csv. The sources have no refractory
# period: a 1 ps step is not refused over the LIF default of 5 ms.
printf '{"dt_ms": 1e-7, "duration_ms": 1e-5, "populations": [{"name": "src", "size": 2, "model": "poisson", "params": {"rate_hz": 3e9}}]}' >"$tmp/dtps.json"
printf '{"dt_ms": 1e13, "duration_ms": 5e13, "populations": [{"name": "src", "size": 2, "model": "poisson", "params": {"rate_hz": 5e-11}}]}' >"$tmp/dtbig.json"
printf '{"dt_ms": 1e-9, "duration_ms": 1e-7, "populations": [{"name": "src", "size": 4, "model": "poisson", "params": {"rate_hz": 1e11}}, {"name": "out", "size": 2, "params": {"t_ref_ms": 0}}], "projections": [{"pre": "src", "post": "out", "weight_mV": 20, "delay_ms": 1e-9, "connect": {"rule": "all_to_all"}}]}' >"$tmp/dt1ps.json"
# Below 1 fs a step, or past 2^63 s a run, no VCD unit holds it: times count steps, as a comment says.
printf '{"dt_ms": 1e-14, "duration_ms": 1e-12, "populations": [{"name": "src", "size": 2, "model": "poisson", "params": {"rate_hz": 1e16}}]}' >"$tmp/dtzs.json"
printf '{"dt_ms": 1e300, "duration_ms": 2e301, "populations": [{"name": "src", "size": 2, "model": "poisson", "params": {"rate_hz": 1e-298}}]}' >"$tmp/dthuge.json"
# A step a hair off whole ns (1.0000000005 ms): 2000 steps of 1 ms would end 1 ns early; the clock must be
# finer (or round each time) so that every time is within half a unit of its step.
printf '{"dt_ms": 1.0000000005, "duration_ms": 2000.000001, "populations": [{"name": "src", "size": 2, "model": "poisson", "params": {"rate_hz": 300}}]}' >"$tmp/dtodd.json"
for net in dtps:1e-7:100 dtbig:1e13:5 dt1ps:1e-9:100 dtzs:1e-14:100 dthuge:1e300:20 dtodd:1.0000000005:2000; do
    name=${net%%:*} rest=${net#*:}
    dt=${rest%%:*} steps=${rest#*:}
    "$SPIKEMESH" run "$tmp/$name.json" --out "$tmp/$name" --no-progress >/dev/null 2>"$tmp/$name.err"
    check "$name.json (dt $dt ms) runs" [ $? -eq 0 ]
    check "$name.json: spikes.vcd times are whole steps of $dt ms in its unit, increasing, at the spikes" \
        python3 - "$tmp/$name" "$dt" "$steps" <<'PY'
import sys, csv
from fractions import Fraction
d, dt_ms, steps = sys.argv[1], Fraction(sys.argv[2]), int(sys.argv[3])
unit = {"1 s": Fraction(1000), "1 ms": Fraction(1), "1 us": Fraction(1, 10**3), "1 ns": Fraction(1, 10**6),
        "1 ps": Fraction(1, 10**9), "1 fs": Fraction(1, 10**12)}
text = open(d + "/spikes.vcd").read()
scale = text.split("$timescale")[1].split("$end")[0].strip()
u = unit[scale]                                   # ms per VCD time unit
if "$comment times count steps of" in text:       # no unit holds the step: one time unit is one step
    u = dt_ms
names, t, times, rises = {}, 0, [], set()
for l in text.split("\n"):
    if l.startswith("$var"):
        p = l.split()
        names[p[3]] = p[4]
    elif l.startswith("#"):
        t = int(l[1:])
        assert t < 2**63, t
        k = round(Fraction(t) * u / dt_ms)        # the step this time is: within half a unit of it
        assert abs(Fraction(t) * u - k * dt_ms) <= u / 2 and 0 <= k <= steps, (t, k, scale)
        times.append(t)
    elif l[:1] == "1":
        rises.add((round(Fraction(t) * u / dt_ms), names[l[1:]]))
assert all(a < b for a, b in zip(times, times[1:])), times[:10]
assert times and round(Fraction(times[-1]) * u / dt_ms) == steps, (times[-1], steps)
spiked = set()
for row in csv.DictReader(open(d + "/spikes.csv")):
    n = int(row["neuron"])
    if n < 4:
        spiked.add((int(row["step"]), "src_%d" % n))
# a rise marks a spike that does not follow one of the same neuron in the previous step
assert rises and rises <= spiked, (sorted(rises)[:5], sorted(spiked)[:5])
assert all((s, n) in rises or (s - 1, n) in spiked for s, n in spiked)
PY
done

check "latency.csv counts every delivery of the run" python3 - "$tmp/o" <<'PY'
import sys, json, csv
d = sys.argv[1]
rows = list(csv.DictReader(open(d + "/latency.csv")))
total = sum(int(r["deliveries"]) for r in rows)
deliveries = json.load(open(d + "/summary.json"))["deliveries"]
assert total == deliveries and all(int(r["latency_cycles"]) >= 1 for r in rows), (total, deliveries)
PY

# Chromium: render traffic.svg to a PNG.
chrome=$(command -v chromium || command -v chromium-browser || true)
if [ -n "$chrome" ]; then
    timeout 60 "$chrome" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$tmp/chrome" \
        --window-size=900,600 --screenshot="$tmp/traffic.png" "file://$tmp/o/traffic.svg" >/dev/null 2>&1
    check "Chromium renders traffic.svg to a PNG" python3 - "$tmp/traffic.png" <<'PY'
import sys, struct, zlib
b = open(sys.argv[1], "rb").read()
assert b[:8] == b"\x89PNG\r\n\x1a\n"
w, h = struct.unpack(">II", b[16:24])
assert w >= 300 and h >= 200
# more than one colour in the picture: something was drawn
data, pos = b"", 8
while pos < len(b):
    n, = struct.unpack(">I", b[pos:pos + 4]); kind = b[pos + 4:pos + 8]
    if kind == b"IDAT": data += b[pos + 8:pos + 8 + n]
    pos += 12 + n
raw = zlib.decompress(data)
assert len(set(raw[i:i + 3] for i in range(1, min(len(raw), 400000), 97))) > 3
PY
else
    echo "ok - # SKIP Chromium is not installed: traffic.svg not rendered"
fi
# Names with control characters and a '$end' (the network's and the chip's): every output stays well-formed.
printf '{"name": "we\\tird\\u0001 $end <&>", "duration_ms": 5, "populations": [{"name": "a", "size": 50, "v_init_mV": [-60, -50]}],
 "projections": [{"pre": "a", "post": "a", "connect": {"rule": "bernoulli", "p": 0.2}, "weight_mV": 1.0}]}\n' >"$tmp/odd.json"
printf '{"name": "chip\\t\\u0007", "mesh": {"width": 2, "height": 2}, "cores_per_tile": 2,
 "core": {"max_neurons": 64, "synapse_memory_bytes": 65536}, "router": {"table_entries": 256}}\n' >"$tmp/oddchip.json"
"$SPIKEMESH" run "$tmp/odd.json" --chip "$tmp/oddchip.json" --mesh-model cycle --out "$tmp/odd" --no-progress >/dev/null 2>&1
check "odd names: run exits 0" [ $? -eq 0 ]
check "odd names: summary.json, traffic.json and trace.json parse, raster.svg and traffic.svg are XML, the VCD comment ends once" \
    python3 - "$tmp/odd" <<'PY'
import json, sys, xml.etree.ElementTree as ET
d = sys.argv[1]
for f in ("summary.json", "traffic.json", "trace.json"):
    json.load(open(d + "/" + f, encoding="utf-8"))
for f in ("raster.svg", "traffic.svg"):
    ET.parse(d + "/" + f)
head = open(d + "/spikes.vcd", encoding="utf-8").read().split("$timescale")[0]
assert head.count("$end") == 2, head
PY

# A run into a folder where a cycle-level run wrote trace.json and latency.csv: those describe the older run
# and go, the rest is replaced.
"$SPIKEMESH" run cuba:1000 --duration 5 --out "$tmp/odd" --no-progress >/dev/null 2>&1
check "a plain run after a cycle-level one in the same --out: no trace.json or latency.csv of the older run left" \
    [ ! -e "$tmp/odd/trace.json" -a ! -e "$tmp/odd/latency.csv" -a -s "$tmp/odd/spikes.vcd" ]

finish
