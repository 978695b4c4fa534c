"""Device names are checked against this machine before any work: one clear DeviceError each."""
from __future__ import annotations

import pytest
import torch

from netgaze._util.devices import check_device
from netgaze.errors import UserError, one_line, state_dict_mismatch


@pytest.mark.parametrize("name, message", [("gpu", "unknown device 'gpu'"), ("cuda:-1", "unknown device"),
                                           ("meta", "not supported"), ("", "unknown device")])
def test_unknown_devices(name, message):
    with pytest.raises(UserError, match=message):
        check_device(name)


def test_cuda_is_checked_against_the_gpus_here(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError, match="no usable CUDA GPU"):
        check_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert check_device("cuda:1") == torch.device("cuda", 1) and check_device("cuda") == torch.device("cuda")
    with pytest.raises(UserError, match=r"has 2 CUDA GPU\(s\), cuda:0 to cuda:1"):
        check_device("cuda:2")
    assert check_device("cpu") == torch.device("cpu")


def test_state_dict_mismatch_is_one_line():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    state = {"0.weight": torch.zeros(5, 3), "0.bias": torch.zeros(4), "9.weight": torch.zeros(1)}
    with pytest.raises(RuntimeError) as caught:
        model.load_state_dict(state)
    assert "\n" in str(caught.value)
    line = state_dict_mismatch(caught.value)
    assert "\n" not in line
    assert "2 missing tensor(s) such as 1.weight" in line and "1 unexpected tensor(s) such as 9.weight" in line
    assert "size mismatch for 0.weight" in line
    assert one_line("a\n  b\n\nc") == "a; b; c"
