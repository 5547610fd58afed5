import torch

from siambench.engine.io import save_torch, sha256_file


def test_the_same_weights_saved_twice_hash_alike(tmp_path):
    """Records are keyed by the checkpoint's sha256: saving the same tensors must give the same bytes."""
    state = {"conv1.weight": torch.arange(12.0).view(3, 4)}
    first, second = save_torch(state, tmp_path / "a.pth"), save_torch(state, tmp_path / "sub" / "b.pth")
    assert sha256_file(first) == sha256_file(second)
    assert torch.equal(torch.load(second, weights_only=True)["conv1.weight"], state["conv1.weight"])
