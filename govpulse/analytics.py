"""Pure analytics on store outputs (no I/O): survival curves of reply delays."""

from __future__ import annotations

from collections.abc import Sequence


def survival_curve(dist: Sequence[tuple[int, int, int]]) -> list[tuple[int, float]]:
    """Kaplan–Meier estimate of the share of letters still unanswered after N days.

    `dist` is ``Store.delay_distribution`` output: (days, answered after that
    many days, open letters of that age).  Open letters are censored at their
    age, not dropped and not counted as answered — dropping them would make
    slow departments look fast.  Returns (days, share unanswered) steps
    starting at (0, 1.0).
    """
    at_risk = sum(a + c for _, a, c in dist)
    share = 1.0
    curve: list[tuple[int, float]] = [(0, 1.0)]
    for days, answered, censored in sorted(dist):
        if at_risk <= 0:
            break
        if answered:
            share *= 1.0 - answered / at_risk
            if curve and curve[-1][0] == days:
                curve[-1] = (days, share)
            else:
                curve.append((days, share))
        at_risk -= answered + censored
    return curve


def share_unanswered_after(curve: Sequence[tuple[int, float]], days: int) -> float:
    """Read the step function returned by `survival_curve` at `days`."""
    value = 1.0
    for d, share in curve:
        if d > days:
            break
        value = share
    return value
