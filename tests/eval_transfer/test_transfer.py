"""The transfer stage: the one-vs-rest sweep against scikit-learn, the fine-tuning grid rules, and both
protocols end to end on a VOC2007 devkit written by the test (the multi-label path) and on digits."""

import json
import warnings

import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression

from siambench.configs import load_preset
from siambench.data.voc import VOC_CLASSES
from siambench.engine.metrics import voc11_map
from siambench.eval_linear.logistic import one_vs_rest_sweep
from siambench.eval_transfer.finetune import Splits, bn_momentum, grid_points
from siambench.evaluate import EvalContext, run_stage


def test_one_vs_rest_equals_scikit_learns_binary_fits_at_the_chosen_c():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 12)).astype(np.float32)
    labels = np.where(X[:, :4] + 0.5 * rng.normal(size=(300, 4)) > 0.3, 1, -1).astype(np.int8)
    labels[rng.random((300, 4)) < 0.05] = 0  # difficult: a negative for the protocol
    train, val, test = (X[:150], labels[:150]), (X[150:220], labels[150:220]), (X[220:], labels[220:])
    out = one_vs_rest_sweep(train, val, test, voc11_map, lambdas=np.logspace(-3, 3, 7), refit=False)
    C = out["best_C"]
    theirs = []
    for c in range(4):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = LogisticRegression(C=C, tol=1e-10, max_iter=10000).fit(train[0], train[1][:, c] == 1)
        theirs.append(clf.decision_function(test[0]))
    np.testing.assert_allclose(out["test_scores"], np.stack(theirs, 1), atol=2e-3, rtol=2e-3)
    # λ is chosen by validation mAP: every λ's score is there and the best one was taken.
    assert out["best_val"] == max(out["val_scores"])


def test_grid_and_batch_norm_rules():
    full = grid_points(load_preset("transfer", "finetune"))
    assert len(full) == 56
    lrs, wds = sorted({p[0] for p in full}), sorted({p[1] for p in full})
    np.testing.assert_allclose(lrs, np.logspace(-4, -1, 7))
    np.testing.assert_allclose(wds, [0.0, *np.logspace(-6, -3, 7)])
    assert len(grid_points(load_preset("transfer", "finetune_small"))) == 6
    # TF decay max(1 - 10/s, 0.9) as PyTorch momentum: s = 50,000 / 256 = 195 steps per epoch.
    assert bn_momentum(50000, 256) == pytest.approx(10 / 195)
    assert bn_momentum(2000, 256) == pytest.approx(0.1)


def test_trainval_of_two_official_splits_indexes_both():
    a, b = list(range(10)), list(range(100, 104))
    joined, indices = Splits((a, [0, 3]), (b, [1, 2]), (a, [])).trainval
    assert [joined[i] for i in indices] == [0, 3, 101, 102]
    same, idx = Splits((a, [5, 1]), (a, [0]), (a, [])).trainval
    assert same is a and idx == [0, 1, 5]


def write_voc(root, per_set=24, seed=0):
    """A VOC2007 devkit with every class positive in every set (the AP needs a positive per class)."""
    rng = np.random.default_rng(seed)
    devkit = root / "voc" / "VOCdevkit" / "VOC2007"
    main = devkit / "ImageSets" / "Main"
    main.mkdir(parents=True)
    (devkit / "JPEGImages").mkdir()
    sets = {"train": [], "val": [], "test": []}
    labels = {}
    counter = 0
    for name in sets:
        for k in range(per_set):
            counter += 1
            image_id = f"{counter:06d}"
            sets[name].append(image_id)
            positive = {k % 20, rng.integers(20)}
            labels[image_id] = [1 if c in positive else (0 if rng.random() < 0.05 else -1) for c in range(20)]
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            Image.new("RGB", (20, 16), colour).save(devkit / "JPEGImages" / f"{image_id}.jpg")
    sets["trainval"] = sets["train"] + sets["val"]
    for name, ids in sets.items():
        (main / f"{name}.txt").write_text("".join(f"{i}\n" for i in ids))
        for c, cls in enumerate(VOC_CLASSES):
            (main / f"{cls}_{name}.txt").write_text("".join(f"{i} {labels[i][c]:2d}\n" for i in ids))
    return root


def test_transfer_linear_on_voc_reports_11_point_map(tmp_path, random_backbone):
    root = write_voc(tmp_path / "data")
    ctx = EvalContext(str(random_backbone), data_root=str(root), results_dir=str(tmp_path / "results"),
                      device="cpu", num_workers=0, progress=False)
    record, computed = run_stage(ctx, "transfer-linear", "voc2007", None, ["lambdas.num=5"])
    assert computed and record["primary_metric"] == "map11"
    assert 0 < record["metrics"]["map11"] <= 100
    hp = record["hyperparameters"]
    assert hp["validation"] == "the dataset's val split"
    assert (hp["train_images"], hp["val_images"], hp["test_images"]) == (24, 24, 24)


@pytest.mark.slow
def test_transfer_finetune_on_digits_writes_the_chosen_point(tmp_path, random_backbone):
    ctx = EvalContext(str(random_backbone), results_dir=str(tmp_path), device="cpu", num_workers=0, progress=False)
    record, _ = run_stage(ctx, "transfer-finetune", "digits", None, ["schedule.steps=20"])
    hp = record["hyperparameters"]
    assert record["protocol"].startswith("finetune_tiny")
    assert [(p["lr"], p["wd"]) for p in hp["grid"]] == [(0.01, 0.0), (0.1, 0.0)]
    best = max(hp["grid"], key=lambda p: p["val"])
    assert (hp["lr"], hp["val_images"]) == (best["lr"], 360)
    assert record["metrics"]["val_top1"] == best["val"]
    # Digits learn something even from a random encoder in 20 steps: well above the 10 % of chance.
    assert record["metrics"]["top1"] > 20
    assert any("stand-in" in n for n in record["notes"])
    assert json.loads(json.dumps(record))  # the record is plain JSON


def test_eval_transfer_cli_skips_missing_datasets(tmp_path, random_backbone, run_cli):
    proc = run_cli("eval", "transfer", "--ckpt", str(random_backbone), "--datasets", "digits,food101",
                   "--results", str(tmp_path / "r"), "--no-progress", "--num-workers", "0", "lambdas.num=3",
                   check=False)
    assert proc.returncode == 1
    assert "record written" in proc.stdout and "skipped transfer-linear on food101" in proc.stdout
    assert "food-101/meta/classes.txt" in proc.stdout or "food-101" in proc.stdout
    assert len(list((tmp_path / "r").glob("transfer-linear__digits__*.json"))) == 1
