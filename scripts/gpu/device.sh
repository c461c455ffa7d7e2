#!/usr/bin/env bash
# The CUDA proof (issue "The CUDA path done right", README "Running the CUDA proof on a lent GPU"),
# run on the lent GPU machine from the repository root, one device call after another:
#
#   bash scripts/gpu/device.sh STEP [STEP ...]
#
#   status      what is staged, installed, trained and measured so far
#   receive     keep the .gpu/ files this call carried (wheel parts, checksum, MNIST) in the stage
#   install     reassemble the onnxruntime-gpu wheel, check its SHA-256, install it and mnistbench
#               into the stage (ahead of the image's CPU-only onnxruntime) and prove that the CUDA EP
#               and torch's CUDA really run (`mnistbench doctor`)
#   train       every paper recipe on CUDA, bf16 autocast and channels-last (fan-resnet's 30 epochs
#               included); models already trained are skipped, so a call that runs out resumes
#   export      fp32 export with parity checks, then the fp16 variant
#   bench-cuda  the CUDA matrix: ONNX Runtime (end-to-end, device, device-graph; fp32 and fp16) and
#               PyTorch eager (end-to-end, device), every batch size; stopped cleanly at the call's
#               budget and resumed (`run --resume`) by the next call
#   bench-cpu   the CPU EP and PyTorch CPU on the same machine, fp32, for the CPU/CUDA comparison
#   speedrun    optional: time to 99% test accuracy of speed-cnn on the GPU (5 seeds, bf16, channels-last)
#   reproduce   optional: fan-resnet's full paper recipe over 3 seeds (its CPU runs were reduced);
#               resumable like bench
#   collect     put in $OUT the benchmark CSVs with their system descriptions, and one tarball of
#               everything (results, raw samples, logs, training logs; at most 8 files come back)
#
# Everything persists in /tmp/mnistbench-gpu (GPU_STAGE) while the machine stays warm (about 30 s between
# calls); a machine handed back loses it, and `status` says what is missing.
# Settings (environment): BUDGET_S seconds this call may spend on its steps (default 540, under
# the 600-s limit of one call); BATCH_SIZES (default 1,8,32,128,512,1024,4096); MODELS
# (space-separated, default every registered model); PYTHON (default python3, the image's).
set -uo pipefail
cd "$(dirname "$0")/../.."
stage=${GPU_STAGE:-/tmp/mnistbench-gpu}
py=${PYTHON:-python3}
deadline=$((SECONDS + ${BUDGET_S:-540}))
batch=${BATCH_SIZES:-1,8,32,128,512,1024,4096}
export PYTHONPATH="$stage/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export MNISTBENCH_DATA="$stage/data" MNISTBENCH_ARTIFACTS="$stage/artifacts"
res="$stage/results"
mkdir -p "$stage/parts" "$res"
# ONNX Runtime's CUDA EP loads cuBLAS, cuDNN and the CUDA runtime by name: point it at the
# image's nvidia-* pip packages (the ones torch uses).
nvlibs=$("$py" -c 'import glob, site; print(":".join(sorted({p for s in site.getsitepackages() for p in glob.glob(s + "/nvidia/**/lib", recursive=True)})))')
export LD_LIBRARY_PATH="${nvlibs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

die() { echo "device.sh: $*" >&2; exit 2; }
left() { echo $((deadline - SECONDS)); }
mb() { "$py" -m mnistbench.bench.cli "$@"; }
models() { [ -n "${MODELS:-}" ] && echo "$MODELS" || "$py" -c 'from mnistbench.models.registry import select; print(" ".join(s.name for s in select(None)))'; }

step_status() {
    echo "staged parts: $(ls "$stage/parts" 2>/dev/null | grep -c '^part-' || true)  checksum: $([ -f "$stage/parts/wheel.sha256" ] && cut -d' ' -f3,4 "$stage/parts/wheel.sha256" || echo missing)  MNIST: $([ -d "$stage/data/mnist" ] && echo yes || echo no)"
    if "$py" -c 'import onnxruntime, mnistbench' 2>/dev/null; then
        echo "installed: $("$py" -c 'import onnxruntime as o; print("onnxruntime", o.__version__, o.__file__)')"
    else
        echo "installed: no"
    fi
    echo "trained: $(ls "$MNISTBENCH_ARTIFACTS"/mnist/paper/seed0/*.safetensors 2>/dev/null | xargs -rn1 basename | sed 's/.safetensors//' | tr '\n' ' ')"
    for f in "$res"/*.csv; do [ -f "$f" ] && echo "results: $(basename "$f") $(($(wc -l < "$f") - 1)) rows"; done
    return 0
}

step_receive() {
    [ -d .gpu ] || die "this call carried no .gpu/ files (run scripts/gpu/pack.sh on the host, then carry them)"
    for f in .gpu/part-* .gpu/wheel.sha256; do [ -f "$f" ] && cp "$f" "$stage/parts/"; done
    [ -d .gpu/data/mnist ] && mkdir -p "$stage/data" && cp -r .gpu/data/mnist "$stage/data/"
    step_status
}

step_install() {
    local sums="$stage/parts/wheel.sha256"
    [ -f "$sums" ] || die "no wheel.sha256 staged yet: carry .gpu/wheel.sha256"
    read -r sha name n < "$sums"
    local have; have=$(ls "$stage/parts" | grep -c '^part-')
    [ "$have" -eq "$n" ] || die "$have of $n wheel parts staged (missing: $(for i in $(seq 0 $((n - 1))); do p=$(printf 'part-%02d' "$i"); [ -f "$stage/parts/$p" ] || printf '%s ' "$p"; done)); carry them with 'receive'"
    cat "$stage/parts"/part-* > "$stage/$name"
    echo "$sha  $stage/$name" | sha256sum -c --quiet || die "the reassembled $name does not match its SHA-256"
    rm -rf "$stage/site"
    "$py" -m pip install -q --no-deps --no-index --no-compile --target "$stage/site" "$stage/$name" \
        || die "pip could not install $name into $stage/site"
    # mnistbench as pyproject.toml maps it (package-dir), by links to this checkout: no build step,
    # so nothing depends on the image's setuptools
    mkdir -p "$stage/site/mnistbench"
    cp bench/_root/__init__.py "$stage/site/mnistbench/"
    for sub in models exporters bench; do ln -sfn "$PWD/$sub" "$stage/site/mnistbench/$sub"; done
    "$py" -c 'import onnxruntime as o, torch; print("onnxruntime", o.__version__, o.get_available_providers(), "| torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")'
    mb doctor --no-sweep 2>&1 | tee "$res/doctor.log"
    "$py" - <<'PY' || die "the CUDA EP is not usable here (line above); nothing would be labelled CUDA"
import sys
from mnistbench.bench.runtimes.runtime import check_provider
from mnistbench.models.errors import ProviderUnavailableError
try:
    check_provider("cuda")
except ProviderUnavailableError as exc:
    sys.exit(str(exc))
print("CUDA EP: usable (a session ran on CUDAExecutionProvider)")
PY
}

step_train() {
    local m ckpt rc
    for m in $(models); do
        ckpt="$MNISTBENCH_ARTIFACTS/mnist/paper/seed0/$m.safetensors"
        [ -f "$ckpt" ] && { echo "train $m: already trained"; continue; }
        [ "$(left)" -gt 20 ] || { echo "train: budget spent; call 'train' again to go on"; return 0; }
        echo "train $m (paper recipe, cuda, bf16, channels-last), $(left) s left in this call"
        timeout --signal=INT "$(left)" "$py" -m mnistbench.bench.cli train "$m" --profile paper --device cuda \
            --amp bf16 --channels-last 2>&1 | tee -a "$res/train.log"
        rc=${PIPESTATUS[0]}
        [ "$rc" -eq 0 ] || { echo "train $m: stopped (exit $rc); call 'train' again"; return 0; }
    done
    echo "train: every model trained"
}

step_export() {
    mb export $(models) --profile paper --fp16 2>&1 | tee "$res/export.log"  # fp32 (parity), then fp16
}

bench() {  # $1: cuda|cpu, then run's options
    local which=$1 csv="$res/$1.csv" rc
    shift
    local more=()
    [ -f "$csv" ] && more=(--resume)
    [ "$(left)" -gt 30 ] || { echo "bench-$which: budget spent; call 'bench-$which' again"; return 0; }
    # SIGINT at the budget: the cell in progress is dropped whole, every finished row is kept.
    timeout --signal=INT "$(left)" "$py" -m mnistbench.bench.cli run $(models) --profile paper \
        --batch-sizes "$batch" --out "$csv" "${more[@]}" "$@" 2>&1 | tee -a "$res/bench-$which.log"
    rc=${PIPESTATUS[0]}
    case $rc in
        0) echo "bench-$which: complete";;
        124) echo "bench-$which: stopped at this call's budget; call 'bench-$which' again to resume";;
        1) echo "bench-$which: complete, with error rows (each says why; see the log)";;
        *) echo "bench-$which: failed with exit $rc (see the line above)";;
    esac
}

step_bench-cuda() { bench cuda --provider cuda --io-mode end-to-end,device --cuda-graph --variant fp32,fp16 \
    --runtime onnxruntime,torch; }
step_bench-cpu() { bench cpu --provider cpu --variant fp32 --runtime onnxruntime,torch; }

step_speedrun() {
    timeout --signal=INT "$(left)" "$py" -m mnistbench.bench.cli speedrun speed-cnn --seeds 5 --device cuda \
        --amp bf16 --channels-last --out "$res/speedrun.csv" 2>&1 | tee "$res/speedrun.log"
}

step_reproduce() {
    local csv="$res/reproduce-fan-resnet.csv" more=()
    [ -f "$csv" ] && more=(--resume)
    timeout --signal=INT "$(left)" "$py" -m mnistbench.bench.cli reproduce fan-resnet --seeds 3 --device cuda \
        --no-ae-study --out "$csv" "${more[@]}" 2>&1 | tee -a "$res/reproduce.log"
    [ "${PIPESTATUS[0]}" -ne 124 ] || echo "reproduce: stopped at this call's budget; call 'reproduce' again to resume"
}

step_collect() {
    [ -n "${OUT:-}" ] || die "OUT is not set (collect copies to the device call's \$OUT)"
    # at most 8 files come back: the two benchmark CSVs and their systems beside, everything in the tarball
    for f in cuda.csv cuda.system.json cpu.csv cpu.system.json; do [ -f "$res/$f" ] && cp "$res/$f" "$OUT"/; done
    tar -czf "$OUT/logs-and-samples.tar.gz" -C "$stage" results \
        $(cd "$stage" && ls -d artifacts/mnist/paper/seed0/*.json artifacts/mnist/paper/seed0/*.train.csv 2>/dev/null)
    ls -la "$OUT"
}

[ $# -gt 0 ] || die "name one or more steps: status receive install train export bench-cuda bench-cpu speedrun reproduce collect"
for s in "$@"; do
    declare -F "step_$s" > /dev/null || die "unknown step '$s'"
    echo "== $s"
    "step_$s"
done
