"""The CPU baseline: what it measures and how energy follows from the stated power."""

from __future__ import annotations

import pytest
import torch

from ttedge.errors import ConfigError
from ttedge.report.cpu import CPU_POWER_SOURCE, CPU_WATTS_PER_CORE, time_training


def test_timing_trains_the_model_and_derives_per_sample_figures() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(8, 4))
    before = model[0].weight.detach().clone()
    t = time_training(model, 8, 4, batch=4, name="tiny", steps=3, warmup=1, threads=1)
    assert not torch.equal(before, model[0].weight)  # it really ran SGD steps
    assert t.seconds_per_step > 0 and t.seconds_per_sample == t.seconds_per_step / 4
    assert t.watts == CPU_WATTS_PER_CORE and t.joules_per_sample == t.seconds_per_sample * CPU_WATTS_PER_CORE
    assert t.to_dict()["name"] == "tiny" and "not measured" in CPU_POWER_SOURCE
    assert torch.get_num_threads() >= 1


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ConfigError, match="batch must be an integer >= 1, got 0."):
        time_training(torch.nn.Linear(2, 2), 2, 2, batch=0, name="x")
