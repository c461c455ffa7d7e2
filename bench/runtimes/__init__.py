"""The inference runtimes a cell runs on, behind one interface (:mod:`.base`: :class:`~.base.Runtime`,
:func:`~.base.register`, :func:`~.base.get_runtime`): ONNX Runtime (:mod:`.ort`, sessions in
:mod:`.ort_session`, their options in :mod:`.providers`, the per-call limit in :mod:`.calls`, the
placement audit in :mod:`.placement`, all re-exported by :mod:`.runtime`), PyTorch eager
(:mod:`.torch_eager`), ``torch.compile`` (:mod:`.torch_compile`) and OpenVINO (:mod:`.openvino_runtime`),
registered in that order when this package is imported; foreign ONNX files are inspected by
:mod:`.foreign`. Bottom layer of ``bench``."""

# Each registers its runtime; this order is the order `--runtime` lists them in.
from . import ort, torch_eager, torch_compile, openvino_runtime  # noqa: F401, I001
