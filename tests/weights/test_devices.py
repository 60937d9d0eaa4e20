"""yue.weights.devices: devices and precisions that cannot work are refused before any load, saying what to use
instead."""
import pytest
import torch

from yue.weights import loading
from yue.weights.devices import check_device, check_precision, check_stage2
from yue.weights.hub import ModelLoadError


def test_device_names_are_checked():
    assert check_device("cpu") == torch.device("cpu")
    with pytest.raises(ModelLoadError, match="device 'gpu' is not a device name: use cpu, cuda or cuda:N"):
        check_device("gpu")
    if not torch.cuda.is_available():
        assert check_device(None) == torch.device("cpu")
        with pytest.raises(ModelLoadError, match="sees no CUDA GPU: use device cpu"):
            check_device("cuda:1")


@pytest.mark.parametrize("name", ["mps", "xpu", "meta"])
def test_devices_the_models_never_ran_on_are_refused_by_name(name):
    """--device mps said something about truncated downloads, much later: refused at once, naming what works."""
    with pytest.raises(ModelLoadError, match=f"device {name} is not supported: this program runs on cpu or cuda"):
        check_device(name)


def test_nf4_on_the_cpu_needs_layers_64_wide(tiny_lm_dir):
    """bitsandbytes' CPU nf4 kernel works from 64 inputs (the tiny stage 1), not on the 32-wide tiny stage 2."""
    cpu = torch.device("cpu")
    check_precision(tiny_lm_dir / "s1", cpu, "nf4")
    check_precision(tiny_lm_dir / "s2", cpu, "int8")
    with pytest.raises(ModelLoadError, match="cannot run as nf4 on the cpu: .* this model's are 32. Use precision "
                                             "int8 or fp32"):
        check_precision(tiny_lm_dir / "s2", cpu, "nf4")


def test_load_models_refuses_nf4_before_loading_anything(tiny_lm_dir, monkeypatch):
    """The refusal comes before stage 1 is loaded, not after it has run (the issue's '[32, 0]' shape error)."""
    monkeypatch.setattr(loading, "_load_lm_folder", lambda *a: pytest.fail("a model was loaded"))
    with pytest.raises(ModelLoadError, match="cannot run as nf4 on the cpu"):
        loading.load_models(stage1=tiny_lm_dir / "s1", stage2=tiny_lm_dir / "s2", codec=False, precision="nf4",
                            device="cpu")


def test_a_stage1_checkpoint_given_as_stage2_is_refused(tiny_lm_dir, monkeypatch):
    """Both stages are LLaMAs, so a stage-1 folder would load as stage 2 and make noise: refused before loading."""
    check_stage2(tiny_lm_dir / "s2")
    monkeypatch.setattr(loading, "_load_lm_folder", lambda *a: pytest.fail("a model was loaded"))
    with pytest.raises(ModelLoadError, match=r"s1 is a stage-1 checkpoint \(tiny-s1 architecture\), given as stage 2"):
        loading.load_models(stage1=tiny_lm_dir / "s1", stage2=tiny_lm_dir / "s1", codec=False, device="cpu")
