import numpy as np

from siambench.pretrain.loader import StepBatchSampler


def _steps(sampler):
    return [b for b in sampler]


def test_ranks_and_micro_batches_partition_the_global_batch_in_order():
    single = _steps(StepBatchSampler(50, 8, seed=3, total_steps=12))
    ranks = [_steps(StepBatchSampler(50, 8, seed=3, total_steps=12, rank=r, world_size=2, accumulate=2)) for r in range(2)]
    for step in range(12):
        chunks = [c for r in range(2) for c in ranks[r][2 * step : 2 * step + 2]]
        assert sum(chunks, []) == single[step]


def test_each_epoch_visits_every_sample_at_most_once():
    batches = _steps(StepBatchSampler(50, 8, seed=0, total_steps=6))  # 6 steps per epoch, tail of 2 dropped
    indices = [i for b in batches for i, _ in b]
    assert len(set(indices)) == 48 and set(indices) <= set(range(50))
    nxt = _steps(StepBatchSampler(50, 8, seed=0, total_steps=12))[6:]
    assert [i for b in nxt for i, _ in b] != indices  # a new permutation each epoch


def test_starting_at_a_step_yields_the_rest_of_the_same_sequence():
    full = _steps(StepBatchSampler(40, 8, seed=1, total_steps=15))
    tail = _steps(StepBatchSampler(40, 8, seed=1, total_steps=15, start_step=7))
    assert tail == full[7:]
    seeds = [s for b in full for _, s in b]
    assert len(set(seeds)) == len(seeds)
    assert np.all(np.array(seeds) >= 0)
