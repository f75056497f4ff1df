"""Per-step weight schedules: pure functions ``schedule(step_index, num_steps) -> float``.

Used for adapter weights during sampling (CustomCrafter's Dynamic Weighted Video Sampling) and anything else
that varies over the denoising steps. Step 0 is the first (noisiest) step.
"""

from __future__ import annotations

from collections.abc import Callable

from customvid.errors import CustomvidError
from customvid.sampling._spec import parse_spec

Schedule = Callable[[int, int], float]


def _check(step_index: int, num_steps: int) -> None:
    if num_steps < 1 or not 0 <= step_index < num_steps:
        raise CustomvidError(f"schedule step {step_index} is outside 0..{num_steps - 1}")


def constant(value: float = 1.0) -> Schedule:
    value = float(value)

    def schedule(step_index: int, num_steps: int) -> float:
        _check(step_index, num_steps)
        return value

    return schedule


def step(low: float = 0.4, high: float = 0.8, k: float = 5, of: float = 50) -> Schedule:
    """CustomCrafter's DWS: `low` for the first k of `of` steps (layout/motion), then `high` (appearance).

    Published: 0.4 for the first K = 5 of 50 DDIM steps, then 0.8. For another step count n the same
    *fraction* k/of of the trajectory stays low: step i is low iff i/n < k/of, i.e. the first ceil(n*k/of)
    steps (25 steps -> 3, 10 -> 1, 100 -> 10); any k > 0 keeps at least step 0 low.
    """
    low, high, k, of = float(low), float(high), float(k), float(of)
    if of <= 0 or not 0 <= k <= of:
        raise CustomvidError(f"step schedule needs 0 <= k <= of and of > 0, got k={k}, of={of}")

    def schedule(step_index: int, num_steps: int) -> float:
        _check(step_index, num_steps)
        return low if step_index * of < k * num_steps else high  # i/n < k/of without float division

    return schedule


def linear(start: float = 0.0, end: float = 1.0) -> Schedule:
    """From `start` at the first step to `end` at the last (a single step gets `start`)."""
    start, end = float(start), float(end)

    def schedule(step_index: int, num_steps: int) -> float:
        _check(step_index, num_steps)
        return start if num_steps == 1 else start + (end - start) * step_index / (num_steps - 1)

    return schedule


# name -> factory; "step:0.4,0.8,5,50" -> step(0.4, 0.8, 5, 50). "dws" is CustomCrafter's name for `step`.
SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "constant": constant,
    "step": step,
    "dws": step,
    "linear": linear,
}


def weight_schedule(spec: str | float | Schedule) -> Schedule:
    """A schedule from a spec ('constant:0.8', 'step', 'dws:0.4,0.8,5,50', 'linear:0.2,1'), a number (also
    written as text, '0.8', as on a command line), or a callable (returned as is)."""
    if callable(spec):
        return spec
    if isinstance(spec, int | float):
        return constant(spec)
    try:
        return constant(float(spec))
    except ValueError:
        pass
    name, values = parse_spec(str(spec), "schedule")
    factory = SCHEDULES.get(name)
    if factory is None:
        raise CustomvidError(f"unknown schedule {name!r}; expected one of {sorted(SCHEDULES)}")
    try:
        return factory(*values)
    except TypeError:
        raise CustomvidError(f"too many parameters for schedule {name!r}: {spec!r}") from None


def schedule_values(schedule: Schedule, num_steps: int) -> list[float]:
    """The schedule's value at every step, e.g. for logging or plots."""
    return [schedule(i, num_steps) for i in range(num_steps)]
