import pytest

from siambench.errors import TrainingDivergedError
from siambench.toolkit.selection import best_point


def test_the_highest_first_key_wins_then_the_next_then_the_earliest():
    points = [{"a": 1.0, "b": 9.0}, {"a": 3.0, "b": 1.0}, {"a": 3.0, "b": 2.0}, {"a": 3.0, "b": 2.0}]
    assert best_point(points, "a") == 1
    assert best_point(points, "a", "b") == 2


def test_diverged_points_never_win_and_an_all_diverged_sweep_says_so():
    assert best_point([{"v": None}, {"v": -5.0}, {"v": None}], "v") == 1
    with pytest.raises(TrainingDivergedError, match="every point of the LR grid diverged"):
        best_point([{"v": None}], "v", what="LR grid")


def test_sweep_values_take_one_number_or_a_list_and_refuse_an_empty_one():
    from siambench.errors import ConfigError
    from siambench.toolkit.selection import sweep_values

    assert sweep_values(0.1, "sweep.lr") == [0.1] and sweep_values([1, 2.5], "sweep.lr") == [1.0, 2.5]
    assert sweep_values([30, 60], "sweep.epochs", int) == [30, 60]
    with pytest.raises(ConfigError, match="sweep.epochs must hold at least one value"):
        sweep_values([], "sweep.epochs", int)
