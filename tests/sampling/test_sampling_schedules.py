"""Weight schedules: the published DWS values, scaling to other step counts, registry and errors."""

from __future__ import annotations

import pytest

from customvid.errors import CustomvidError
from customvid.sampling.schedules import SCHEDULES, constant, linear, schedule_values, step, weight_schedule


def test_constant():
    assert schedule_values(constant(0.8), 4) == [0.8] * 4


def test_dws_published_setting():
    values = schedule_values(step(), 50)  # 0.4 for the first K=5 of 50 DDIM steps, then 0.8
    assert values[:5] == [0.4] * 5 and values[5:] == [0.8] * 45


@pytest.mark.parametrize(("num_steps", "low_steps"), [(25, 3), (10, 1), (100, 10), (2, 1), (1, 1), (51, 6)])
def test_dws_scales_by_fraction_of_steps(num_steps, low_steps):
    values = schedule_values(step(), num_steps)
    assert values.count(0.4) == low_steps and values[:low_steps] == [0.4] * low_steps


def test_step_with_k_zero_is_always_high():
    assert schedule_values(step(k=0), 5) == [0.8] * 5


def test_linear_endpoints_and_midpoint():
    values = schedule_values(linear(0.2, 1.0), 5)
    assert values[0] == 0.2 and values[-1] == 1.0 and values[2] == pytest.approx(0.6)
    assert schedule_values(linear(0.2, 1.0), 1) == [0.2]


def test_registry_specs():
    assert {"constant", "step", "dws", "linear"} <= set(SCHEDULES)
    assert schedule_values(weight_schedule("dws"), 50) == schedule_values(step(), 50)
    assert schedule_values(weight_schedule("step:0.1,0.9,1,2"), 4) == [0.1, 0.1, 0.9, 0.9]
    assert schedule_values(weight_schedule("constant:0.5"), 2) == [0.5, 0.5]
    assert schedule_values(weight_schedule(0.7), 2) == [0.7, 0.7]
    assert schedule_values(weight_schedule("0.7"), 2) == [0.7, 0.7]
    custom = lambda i, n: i / n  # noqa: E731
    assert weight_schedule(custom) is custom


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cosine", "unknown schedule"),
        ("step:1,2,3,4,5", "too many parameters"),
        ("step:0.4,0.8,6,5", "k <= of"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(CustomvidError, match=message):
        weight_schedule(spec)


def test_step_index_out_of_range():
    with pytest.raises(CustomvidError, match="outside 0..9"):
        constant()(10, 10)
