#!/usr/bin/env bash
# Stage, on this host (which reaches PyPI), what the CUDA proof needs on a lent GPU machine
# (see scripts/gpu/device.sh and README, "Running the CUDA proof on a lent GPU"):
#   .gpu/part-NN         the onnxruntime-gpu wheel for the device's Python, split into parts small
#                        enough for one device call each (a call carries at most 64 MiB in all)
#   .gpu/wheel.sha256    the wheel's file name, SHA-256 and number of parts
#   .gpu/data/mnist      the four MNIST IDX files (the device cannot reach ../shared)
# .gpu/ is git-ignored; nothing here is committed.
#
# Settings (environment): ORT_VERSION (default: the onnxruntime-gpu installed here),
# DEVICE_PYTHON (default 3.12, the device image's Python), PART_MIB (default 44),
# MNISTBENCH_DATA (default ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/../.."

ver="${ORT_VERSION:-$(python3 -c 'import importlib.metadata as m; print(m.version("onnxruntime-gpu"))')}"
py="${DEVICE_PYTHON:-3.12}"
part_mib="${PART_MIB:-44}"
data="${MNISTBENCH_DATA:-$(cd .. && pwd)/shared/data}"
[ -f "$data/mnist/train-images-idx3-ubyte.gz" ] || { echo "pack.sh: no MNIST under $data/mnist (set MNISTBENCH_DATA)" >&2; exit 2; }

rm -rf .gpu && mkdir -p .gpu/wheel .gpu/data
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$py" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .gpu/wheel "onnxruntime-gpu==$ver"
whl=$(ls .gpu/wheel/*.whl)
split -b "${part_mib}M" -d -a 2 "$whl" .gpu/part-
n=$(ls .gpu/part-* | wc -l)
echo "$(cd .gpu/wheel && sha256sum "$(basename "$whl")") $n" > .gpu/wheel.sha256
rm -rf .gpu/wheel
cp -r "$data/mnist" .gpu/data/

tree_mib=$(git ls-files -z --cached --others --exclude-standard | du -ch --files0-from=- -m 2>/dev/null | tail -1 | cut -f1)
echo "staged $(basename "$whl") in $n parts of at most $part_mib MiB (+ MNIST, $(du -sm .gpu/data | cut -f1) MiB); the working tree that travels with every call is about $tree_mib MiB"
last=$(printf '%02d' $((n - 1)))
echo "device calls, one after another (the machine stays warm only ~30 s between calls):"
for i in $(seq 0 $((n - 2))); do
    printf '  run carry=[".gpu/part-%02d"]  command: bash scripts/gpu/device.sh receive\n' "$i"
done
echo "  run carry=[\".gpu/part-$last\", \".gpu/wheel.sha256\", \".gpu/data\"]  command: bash scripts/gpu/device.sh receive install train"
echo "  then: bash scripts/gpu/device.sh export bench-cuda        (repeat bench-cuda until it says complete)"
echo "        bash scripts/gpu/device.sh bench-cpu collect       (collect copies the results to \$OUT)"
