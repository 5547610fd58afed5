"""The main job end to end: `make pretrain && make eval-all` shows the BYOL backbone beating random init."""

from siambench.report import load_records


def test_eval_all_ranks_make_pretrain_above_random_init(make_pretrain_run, random_init_run, tmp_path, run_cli):
    """Measured on shapes' test split (top-1, %): kNN 19.55 against 15.75, logistic regression
    24.5 against 21.4, the augmented linear probe 19.95 against 13.1."""
    results = tmp_path / "results"
    for ckpt in (make_pretrain_run, random_init_run):
        run_cli("eval-all", "--ckpt", str(ckpt), "--results", str(results), "--tasks", "knn,linear", "--no-progress")
    scores = {}
    for r in load_records(results):
        if r["dataset"] == "shapes":
            scores[r["checkpoint"]["name"], r["task"], r["protocol"]] = r["metrics"][r["primary_metric"]]
    stages = {(task, protocol) for _, task, protocol in scores}
    assert stages == {("knn", "default"), ("linear", "logreg"), ("linear", "tiny")}
    for task, protocol in stages:
        byol, random = scores["byol_shapes", task, protocol], scores["random-init", task, protocol]
        assert byol >= random + 1.5, f"{task}/{protocol}: BYOL {byol:.2f} against random init {random:.2f}"
