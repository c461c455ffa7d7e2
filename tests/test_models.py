"""Every registered model: output shape, parameter count and FLOPs equal to its spec.

Parametrised over list_models(), so a model is tested the day it is registered.
"""

from __future__ import annotations

import pytest
import torch
from mnistbench.models.errors import UsageError
from mnistbench.models.registry import build_model, get_spec, list_models, register, select
from torch.utils.flop_counter import FlopCounterMode

ALL = list_models()


def test_all_nine_paper_models_registered_in_papers_order_then_speed_cnn():
    assert ALL == ["xiao-digit", "rich-cnn", "fan-resnet", "swapan-cnn", "zhu-mlp", "zhu-autoencoder",
                   "zhu-cnn", "zhu-conv-autoencoder", "lenet5", "speed-cnn"]
    outside = [n for n in ALL if get_spec(n).extra.get("outside_papers")]
    assert outside == ["speed-cnn"] and "not a paper" in get_spec("speed-cnn").ref


@pytest.mark.parametrize("name", ALL)
def test_forward_shape_params_and_flops_match_spec(name):
    spec = get_spec(name)
    model = spec.build().eval()
    x = torch.rand(3, *spec.input_shape)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        y = model(x[:1])
    assert fc.get_total_flops() == spec.flops
    with torch.no_grad():
        y = model(x)
    assert y.shape == ((3, 10) if spec.task == "classify" else (3, 1, 28, 28))
    assert y.dtype == torch.float32
    assert sum(p.numel() for p in model.parameters()) == spec.num_params


@pytest.mark.parametrize("name", ALL)
def test_spec_is_complete(name):
    s = get_spec(name)
    assert s.paper and s.citation and s.ref
    assert s.preprocess in ("unit", "mnist-norm", "signed", "raw")
    assert s.reported.text and s.reported.metric == ("accuracy" if s.task == "classify" else "mse")
    for profile in ("paper", "quick", "smoke"):
        assert s.recipe_for(profile).batch_size > 0
    assert s.quick.note.startswith("quick"), "the quick profile must say what it cuts"


def test_papers_md_figures():
    # Figures stated in ../shared/PAPERS.md.
    assert get_spec("xiao-digit").num_params == 1_007_590
    assert get_spec("rich-cnn").num_params == 3_274_634
    assert get_spec("swapan-cnn").num_params == 607_394
    assert get_spec("zhu-mlp").num_params == 238_510
    assert get_spec("zhu-cnn").num_params == 61_610
    assert get_spec("lenet5").num_params == 61_706
    assert abs(get_spec("fan-resnet").num_params - 4.33e6) < 0.01e6
    assert abs(get_spec("fan-resnet").flops - 0.99e9) < 0.01e9
    assert get_spec("rich-cnn").reported.value == 0.9928


def test_rich_cnn_init_follows_tensorflow_code():
    m = build_model("rich-cnn")
    conv = m.features[0]
    assert torch.all(conv.bias == 0.1)
    assert conv.weight.abs().max() <= 0.2 + 1e-6  # truncated at 2 std
    assert 0.07 < conv.weight.std() < 0.1


def test_registry_errors_and_wildcards():
    with pytest.raises(UsageError, match="valid models: xiao-digit"):
        get_spec("resnet50")
    assert list_models("zhu-*") == ["zhu-mlp", "zhu-autoencoder", "zhu-cnn", "zhu-conv-autoencoder"]
    assert list_models(exclude=["zhu-*", "*resnet*"]) == ["xiao-digit", "rich-cnn", "swapan-cnn", "lenet5", "speed-cnn"]
    assert [s.name for s in select(["lenet5", "zhu-m*", "lenet5"])] == ["lenet5", "zhu-mlp"]
    with pytest.raises(UsageError, match="matches no model"):
        select(["vgg*"])
    with pytest.raises(ValueError, match="already registered"):
        register(get_spec("lenet5"))
    with pytest.raises(UsageError, match="unknown profile"):
        get_spec("lenet5").recipe_for("fast")
