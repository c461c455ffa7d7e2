#!/usr/bin/env bash
# The load study committed in results/load/ (README there): these commands, as they ran on
# 2026-12-02 (session 10). Each CSV's .system.json names the commit it ran at:
#   4a04919: single-stream, multi-stream, server-peak, server-peak-batched, curve, curve-batched, closed-loop
#            (pinned to CPU 0 with `taskset -c 0`, the other CPU running a calibration study and tests)
#   137fd04: ab/ and offline (pinned to CPU 1, `taskset -c 1`)
#   d80a97e: server-peak-batched-openvino (CPU 0): OpenVINO with batching again, after the fix that keeps
#            one compiled request per batch size (at 4a04919 it recompiled at every change of size)
# Needs the quick exports of lenet5, zhu-mlp and rich-cnn with their int8 variants:
#   mnistbench train lenet5 zhu-mlp rich-cnn --profile quick && mnistbench export lenet5 zhu-mlp rich-cnn --profile quick --int8
set -euxo pipefail
OUT=${1:-results/load}
M="lenet5 zhu-mlp rich-cnn --profile quick --variant fp32,int8 --runtime onnxruntime,openvino"
mkdir -p "$OUT"
mnistbench load $M --scenario single-stream --repeat 3 --min-duration-s 2 --out "$OUT/single-stream.csv"
mnistbench load $M --scenario multi-stream --max-batch 8 --repeat 3 --min-duration-s 2 --out "$OUT/multi-stream.csv"
mnistbench load $M --scenario server --find-peak --latency-bound-ms 5 --repeat 3 --min-duration-s 1 --out "$OUT/server-peak.csv"
mnistbench load $M --scenario server --find-peak --latency-bound-ms 5 --max-batch 16 --max-queue-delay-ms 1 --repeat 3 --min-duration-s 1 --out "$OUT/server-peak-batched.csv"
mnistbench load lenet5 --profile quick --scenario server --qps-range 1000:13000:2000 --repeat 3 --min-duration-s 2 --out "$OUT/curve.csv"
mnistbench load lenet5 --profile quick --scenario server --qps-range 1000:13000:2000 --max-batch 16 --max-queue-delay-ms 1 --repeat 3 --min-duration-s 2 --out "$OUT/curve-batched.csv"
mnistbench run $M --threads 1 --batch-sizes 1,32,128,512 --out "$OUT/closed-loop.csv"
python scripts/load_ab.py "$OUT/ab" --trials 5 --min-duration-s 1
mnistbench load $M --scenario offline --max-batch 128 --repeat 3 --min-duration-s 2 --accuracy --out "$OUT/offline.csv"
mnistbench load lenet5 --profile quick --precision bf16 --runtime openvino --scenario single-stream --min-duration-s 1 --no-null --out "$OUT/bf16-refused.csv" || test $? -eq 1   # no bf16 on this CPU: an error row, exit 1
mnistbench load lenet5 zhu-mlp rich-cnn --profile quick --variant fp32,int8 --runtime openvino --scenario server --find-peak --latency-bound-ms 5 --max-batch 16 --max-queue-delay-ms 1 --repeat 3 --min-duration-s 1 --no-null --out "$OUT/server-peak-batched-openvino.csv"
mnistbench report "$OUT" --out-dir "$OUT/report"
python scripts/load_tables.py "$OUT" > "$OUT/tables.md"
# committed small (results/ stays a few MB): the closed-loop samples packed, LoadGen's logs one tar.xz
# per CSV (tar xJf to read them), the per-sample timings (<csv>.queries/, ~10 MB) not committed
python scripts/pack_samples.py "$OUT"
for d in "$OUT"/*.loadgen "$OUT"/ab/*.loadgen; do tar cJf "$d.tar.xz" -C "$(dirname "$d")" "$(basename "$d")" && rm -rf "$d"; done
rm -rf "$OUT"/*.queries "$OUT"/ab/*.queries
