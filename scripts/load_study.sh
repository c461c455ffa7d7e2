#!/usr/bin/env bash
# The load study committed in results/load/ (README there): exactly these commands, in this order.
# Needs the quick exports of lenet5, zhu-mlp and rich-cnn with their int8 variants:
#   mnistbench train lenet5 zhu-mlp rich-cnn --profile quick && mnistbench export lenet5 zhu-mlp rich-cnn --profile quick --int8
set -euxo pipefail
OUT=${1:-results/load}
M="lenet5 zhu-mlp rich-cnn --profile quick --variant fp32,int8 --runtime onnxruntime,openvino"
mkdir -p "$OUT"
mnistbench load $M --scenario single-stream --repeat 3 --min-duration-s 2 --out "$OUT/single-stream.csv"
mnistbench load $M --scenario multi-stream --max-batch 8 --repeat 3 --min-duration-s 2 --out "$OUT/multi-stream.csv"
mnistbench load $M --scenario offline --max-batch 128 --repeat 3 --min-duration-s 2 --accuracy --out "$OUT/offline.csv"
mnistbench load $M --scenario server --find-peak --latency-bound-ms 5 --repeat 3 --min-duration-s 1 --out "$OUT/server-peak.csv"
mnistbench load $M --scenario server --find-peak --latency-bound-ms 5 --max-batch 16 --max-queue-delay-ms 1 --repeat 3 --min-duration-s 1 --out "$OUT/server-peak-batched.csv"
mnistbench load lenet5 --profile quick --scenario server --qps-range 1000:13000:2000 --repeat 3 --min-duration-s 2 --out "$OUT/curve.csv"
mnistbench load lenet5 --profile quick --scenario server --qps-range 1000:13000:2000 --max-batch 16 --max-queue-delay-ms 1 --repeat 3 --min-duration-s 2 --out "$OUT/curve-batched.csv"
mnistbench run $M --threads 1 --batch-sizes 1,32,128,512 --out "$OUT/closed-loop.csv"
python scripts/load_ab.py "$OUT/ab" --trials 10 --min-duration-s 1
mnistbench report "$OUT" --out-dir "$OUT/report"
# OpenVINO bf16 on this CPU (no avx512_bf16/AMX): an error row and exit 1, recorded
mnistbench load lenet5 --profile quick --precision bf16 --runtime openvino --scenario single-stream --min-duration-s 1 --no-null --out "$OUT/bf16-refused.csv" || test $? -eq 1
