#!/usr/bin/env bash
# Fleet identity on a two-node Ray cluster on one machine (issue 27): two raylets on the loopback
# addresses 127.0.0.1 (head) and 127.0.0.2, both named by the same host name. The second node runs in
# a mount namespace of its own where the driver's model folder is hidden (an empty tmpfs over it), so
# `run --onnx` of a file that exists only on the driver has to travel with the task.
#
# Then: `report` of the gathered folder (two series), `compare` of the folder against itself (node
# against node), and the checks printed at the end. Needs the [ray] extra, unshare and mount (root).
#
# Ray 2.60 turns token authentication on for `ray start --head`; this loopback-only cluster runs with
# it off (RAY_AUTH_MODE=disabled). The head takes the host's own address (Ray ignores 127.0.0.1 for
# a head here); the second node is 127.0.0.2. Both have the same host name.
#
#   bash scripts/fleet_two_nodes.sh [OUT]        (default results/fleet/two-nodes)
set -euo pipefail
OUT=${1:-results/fleet/two-nodes}
export RAY_AUTH_MODE=disabled
PORT=${FLEET_PORT:-6391}
HEAD=127.0.0.1:$PORT
rm -rf "$OUT"
mkdir -p "$OUT"
MODELS=$(mktemp -d /tmp/mnistbench-driver-only.XXXXXX)  # the model folder only the driver sees

# the model: the quick lenet5 export if there is one, else a random linear classifier
if [ -f artifacts/mnist/quick/seed0/lenet5.onnx ]; then
  cp artifacts/mnist/quick/seed0/lenet5.onnx "$MODELS/lenet5.onnx"
else
  python3 - "$MODELS/lenet5.onnx" <<'EOF'
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
w = numpy_helper.from_array(np.random.default_rng(0).normal(0, 0.05, (784, 10)).astype(np.float32), "w")
g = helper.make_graph([helper.make_node("Flatten", ["x"], ["f"], axis=1), helper.make_node("MatMul", ["f", "w"], ["y"])],
                      "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 28, 28])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], [w])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), sys.argv[1])
EOF
fi

ray stop --force >/dev/null 2>&1 || true
cleanup() { ray stop --force >/dev/null 2>&1 || true; rm -rf "$MODELS"; }
trap cleanup EXIT
timeout 120 ray start --head --node-ip-address 127.0.0.1 --port "$PORT" --num-cpus 1 \
  --include-dashboard false --disable-usage-stats >/dev/null 2>&1
unshare -m sh -c "mount -t tmpfs none '$MODELS' && exec ray start --address $HEAD --node-ip-address 127.0.0.2 \
  --num-cpus 1 --disable-usage-stats --block" >/dev/null 2>&1 &
n=0
for _ in $(seq 10); do
  sleep 3
  n=$(timeout 30 python3 -c "import ray, logging; ray.init(address='$HEAD', logging_level=logging.ERROR, log_to_driver=False); print(sum(x['Alive'] for x in ray.nodes()))" 2>/dev/null || echo 0)
  [ "$n" = 2 ] && break
done
echo "live nodes: $n"
[ "$n" = 2 ] || { echo "the second node did not join"; exit 1; }
P=$(pgrep -f "node-ip-address 127.0.0.2" | head -1)
echo "the model folder as the second node sees it: $(nsenter -m -t "$P" ls -A "$MODELS" | wc -l) file(s); as the driver sees it: $(ls -A "$MODELS")"

set +e
timeout 600 mnistbench run --executor ray --address "$HEAD" --nodes all \
  --onnx "$MODELS/lenet5.onnx" --preprocess mnist-norm --batch-sizes 1,32 --no-null \
  --results-dir "$OUT/results" >"$OUT/run.stdout" 2>"$OUT/run.stderr"
echo "run exit: $?"
set -e
RUN=$(ls -d "$OUT"/results/*/ | head -1)
mnistbench report "$RUN" --out-dir "$OUT/report" >"$OUT/report.stdout" 2>&1
mnistbench compare "$RUN" "$RUN" --format markdown >"$OUT/compare.md" 2>"$OUT/compare.stderr" || true
set -- "$RUN"/*.csv
mnistbench compare "$1" "$2" --format markdown >"$OUT/compare-node-vs-node.md" 2>&1 || true
python3 - "$RUN" "$OUT" <<'EOF'
import csv, json, sys
from pathlib import Path
run, out = Path(sys.argv[1]), Path(sys.argv[2])
fleet = json.loads((run / "fleet.json").read_text())
print("nodes in fleet.json:", [(n["key"], n["host"], n["ip"], n["node_id"][:12], n["returncode"]) for n in fleet["nodes"]])
for c in sorted(run.glob("*.csv")):
    rows = list(csv.DictReader(open(c)))
    print(f"{c.name}: {len(rows)} rows, host {sorted({r['host'] for r in rows})}, node {sorted({r['node'] for r in rows})}")
html = (out / "report" / "report.html").read_text()
print("report hosts line:", html.split("hosts: ")[1].split(";")[0])
print("stdout of run has Ray log lines or colour codes:", any(s in (out / "run.stdout").read_text() for s in ("\x1b[", "raylet", "(pid=")))
print("compare lines:", sum(1 for ln in (out / "compare.md").read_text().splitlines() if ln.startswith("| ")) - 1)
EOF
cat "$OUT/run.stdout"
