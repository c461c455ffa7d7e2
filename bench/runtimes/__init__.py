"""The inference runtimes a cell runs on: ONNX Runtime and PyTorch (:mod:`.runtime`), OpenVINO
(:mod:`.openvino_runtime`) and foreign ONNX files (:mod:`.foreign`). Bottom layer of ``bench``."""
