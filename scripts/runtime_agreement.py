"""Top-1 agreement of OpenVINO with ONNX Runtime on the full test set, per classifier.

An independent check of issue 13's "OpenVINO fp32 and ONNX Runtime fp32 agree on at least 99.9%
of top-1 predictions": each exported classifier is scored here with plain ``onnxruntime`` (CPU EP,
as written: fp32) and plain ``openvino`` (the same ONNX file reshaped to a static batch of 100,
compiled for the CPU with ``INFERENCE_PRECISION_HINT`` f32, and again with bf16), on the 10,000
test images preprocessed as ``mnistbench run`` does (``bench.pipeline.eval_inputs``). Nothing of
mnistbench's runner is used, so a bug there cannot hide here.

    python scripts/runtime_agreement.py --artifacts-dir artifacts --profile quick \
        > results/cross-runtime/agreement.md

Prints a markdown table: per classifier, predictions that differ (of 10,000) and the agreement,
OpenVINO fp32 and bf16 each against ONNX Runtime fp32, and each runtime's accuracy.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np
import onnxruntime as ort
import openvino as ov
from mnistbench.bench.measure.pipeline import Artifacts, eval_inputs
from mnistbench.models.data import load_dataset
from mnistbench.models.registry import select

BATCH = 100  # 10,000 test images = 100 static batches of 100: no padding


def ort_logits(path: Path, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i:i + BATCH]})[0] for i in range(0, len(x), BATCH)])


def ov_logits(path: Path, x: np.ndarray, precision: str) -> np.ndarray:
    core = ov.Core()
    m = core.read_model(str(path))
    m.reshape({m.inputs[0].get_any_name(): [BATCH, *x.shape[1:]]})
    c = core.compile_model(m, "CPU", {"INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": 1})
    req = c.create_infer_request()
    return np.concatenate([np.array(req.infer([x[i:i + BATCH]])[c.outputs[0]]) for i in range(0, len(x), BATCH)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts-dir", type=Path, default=Path("artifacts"))
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--data-dir", type=Path, default=None)
    args = ap.parse_args()
    arts = Artifacts(args.artifacts_dir, args.dataset, args.profile, 0)
    data = load_dataset(args.dataset, args.data_dir, download=False, progress=False)
    print(f"OpenVINO {ov.__version__} and ONNX Runtime {ort.__version__}, {platform.processor() or platform.machine()}, "
          f"{args.dataset} test set (10,000 images), {args.profile} exports, 1 thread each\n")
    print("| model | ORT fp32 accuracy | OV fp32 accuracy | OV fp32 vs ORT fp32: differ | agreement | "
          "OV bf16 accuracy | OV bf16 vs ORT fp32: differ | agreement |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for spec in select(None):
        if spec.task != "classify":
            continue
        path = arts.dir / f"{spec.name}.onnx"
        if not path.is_file():
            print(f"| {spec.name} | (no export at {path}) |||||||")
            continue
        x, y = eval_inputs(spec, data)
        ref = ort_logits(path, x).argmax(1)
        cells = [f"{np.mean(ref == y):.2%}"]
        for prec in ("f32", "bf16"):
            p = ov_logits(path, x, prec).argmax(1)
            differ = int(np.sum(p != ref))
            if prec == "f32":
                cells.append(f"{np.mean(p == y):.2%}")
                cells += [str(differ), f"{1 - differ / len(ref):.2%}"]
            else:
                cells += [f"{np.mean(p == y):.2%}", str(differ), f"{1 - differ / len(ref):.2%}"]
        print(f"| {spec.name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
