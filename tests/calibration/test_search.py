import math

import pytest

from mcdropout.calibration._search import minimize_bounded


def test_finds_the_minimum_of_a_parabola():
    found = minimize_bounded(lambda x: (x - 0.3) ** 2 + 1.0, -5.0, 5.0)
    assert found.x == pytest.approx(0.3, abs=1e-6)
    assert found.value == pytest.approx(1.0, abs=1e-12)
    assert not found.at_bound


def test_finds_the_deeper_of_two_basins():
    # A shallow minimum at -2 and a deeper one at 3: the grid picks the
    # right basin before the golden-section search refines it.
    def objective(x: float) -> float:
        return min((x + 2) ** 2 + 0.5, (x - 3) ** 2)

    found = minimize_bounded(objective, -5.0, 5.0)
    assert found.x == pytest.approx(3.0, abs=1e-6)


@pytest.mark.parametrize(("slope", "edge"), [(1.0, -1.0), (-1.0, 2.0)])
def test_a_monotone_objective_ends_at_a_bound(slope, edge):
    found = minimize_bounded(lambda x: slope * x, -1.0, 2.0)
    assert found.x == pytest.approx(edge)
    assert found.at_bound


def test_counts_evaluations():
    calls = []

    def objective(x: float) -> float:
        calls.append(x)
        return math.cosh(x - 0.1)

    minimize_bounded(objective, -3.0, 3.0, n_grid=21, tol=1e-6)
    # 21 grid points plus about log(0.6 / 1e-6) / log(1.618) = 28 steps.
    assert 21 + 25 <= len(calls) <= 21 + 32
    assert all(-3.0 <= x <= 3.0 for x in calls)
