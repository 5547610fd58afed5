"""The transfer-linear λ sweep: siambench's L-BFGS in torch against scikit-learn as ssl-transfer runs it.

Both sides get the same float32 features (a random but structured stand-in
for pooled ResNet features: class means in a low-dimensional latent space,
mixed into ``dim`` dimensions, plus noise with a decaying spectrum, shifted
and rectified so the features are non-negative like post-ReLU averages),
the same train / val (20 % of the training split, as ssl-transfer holds
out) / test split, and the same 45 log-spaced λ in [1e-6, 1e5].

scikit-learn side, as ssl-transfer's ``linear.py`` does it: one
``LogisticRegression(solver='lbfgs', warm_start=True)`` (default
``max_iter=100``, ``tol=1e-4``: ssl-transfer passes neither), ``C = 1/λ`` for
λ in increasing order, the first strictly best val accuracy kept, then the
same estimator (warm from the last fit) refitted on train+val with the best
``C`` and scored on test. ``--sk-max-iter`` changes the cap.

siambench side: :func:`siambench.eval_linear.logistic.logistic_sweep`.

Prints the wall time of each, their ratio, the chosen λ and the test top-1
of each and their difference; ``--json`` writes them out. The default size
takes about a minute on two quiet cores, nearly all of it scikit-learn's;
the size the protocol cares about, ``--n 50000 --dim 2048 --classes 100``
(a transfer dataset the size of CIFAR or Food-101), about fifteen minutes
on one core. On a CPU both sides are bound by the same float32 matrix
products at that size, so the ratio there is the ratio of loss
evaluations; a GPU changes the cost of each of ours.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np
import torch

from common import write_json


def structured_features(n: int, dim: int, classes: int, seed: int = 0, latent: int = 64, noise: float = 2.0):
    """``(n, dim)`` float32 features and labels with class structure and a decaying spectrum."""
    rng = np.random.default_rng(seed)
    latent = min(latent, dim)
    centres = rng.normal(size=(classes, latent)).astype(np.float32)
    mix = (rng.normal(size=(latent, dim)) / np.sqrt(latent)).astype(np.float32)
    spectrum = (1.0 / np.sqrt(np.arange(1, dim + 1))).astype(np.float32)
    basis = np.linalg.qr(rng.normal(size=(dim, dim)))[0].astype(np.float32)
    y = rng.integers(0, classes, size=n)
    x = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 8192):
        rows = slice(start, min(n, start + 8192))
        m = rows.stop - rows.start
        z = centres[y[rows]] + noise * rng.normal(size=(m, latent)).astype(np.float32)
        x[rows] = z @ mix + (rng.normal(size=(m, dim)).astype(np.float32) * spectrum) @ basis
    np.maximum(x + 0.3, 0.0, out=x)
    return x, y


def sklearn_sweep(train, val, test, lambdas, max_iter: int):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    clf = LogisticRegression(solver="lbfgs", warm_start=True, max_iter=max_iter)
    best_score, best_c, iterations = 0.0, None, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for lam in sorted(lambdas):
            clf.set_params(C=1.0 / lam)
            clf.fit(*train)
            iterations.append(int(clf.n_iter_.max()))
            acc = 100.0 * clf.score(*val)
            if acc > best_score:
                best_score, best_c = acc, 1.0 / lam
        clf.set_params(C=best_c)
        clf.fit(np.concatenate([train[0], val[0]]), np.concatenate([train[1], val[1]]))
    test_acc = 100.0 * clf.score(*test)
    return {
        "seconds": time.perf_counter() - start,
        "best_lambda": 1.0 / best_c,
        "best_val": best_score,
        "test_top1": test_acc,
        "iterations": iterations,
        "refit_iterations": int(clf.n_iter_.max()),
    }


def torch_sweep(train, val, test, lambdas, classes: int, tol: float, device, order: str, precondition: bool):
    from siambench.eval_linear.logistic import logistic_sweep

    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    r = logistic_sweep(train, val, test, classes, lambdas=lambdas, tol=tol, device=device, order=order,
                       precondition=precondition)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {
        "seconds": time.perf_counter() - start,
        "best_lambda": r["best_lambda"],
        "best_val": r["best_val"],
        "test_top1": r["test"]["top1"],
        "evaluations": sum(f["evaluations"] for f in r["fits"]),
        "refit_evaluations": r["refit"]["evaluations"] if r["refit"] else 0,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10000, help="training images (train + val); test is n/4")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--classes", type=int, default=20)
    ap.add_argument("--noise", type=float, default=2.0, help="latent noise: higher is a harder problem")
    ap.add_argument("--lambdas", type=int, default=45, help="number of log-spaced λ in [1e-6, 1e5]")
    ap.add_argument("--sk-max-iter", type=int, default=100, help="scikit-learn's cap (ssl-transfer: the default, 100)")
    ap.add_argument("--tol", type=float, default=1e-4, help="siambench's stopping tolerance in the sweep")
    ap.add_argument("--order", default="strong_to_weak", choices=["strong_to_weak", "weak_to_strong"])
    ap.add_argument("--no-precondition", action="store_true", help="plain L-BFGS on (W, b)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for both sides (default: torch's)")
    ap.add_argument("--skip-sklearn", action="store_true")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    if args.threads:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    n_test = max(args.n // 4, args.classes)
    x, y = structured_features(args.n + n_test, args.dim, args.classes)
    n_val = args.n // 5
    n_train = args.n - n_val
    train, val, test = (x[:n_train], y[:n_train]), (x[n_train : args.n], y[n_train : args.n]), (x[args.n :], y[args.n :])
    lambdas = [float(v) for v in np.logspace(-6, 5, args.lambdas)]
    print(f"{n_train} train / {n_val} val / {n_test} test, dim {args.dim}, {args.classes} classes, "
          f"{len(lambdas)} λ; torch {torch.get_num_threads()} threads on {device}", flush=True)

    ours = torch_sweep(train, val, test, lambdas, args.classes, args.tol, device, args.order, not args.no_precondition)
    print(f"siambench   {ours['seconds']:8.1f} s  λ* = {ours['best_lambda']:.3g}  val {ours['best_val']:.2f}  "
          f"test {ours['test_top1']:.2f}  ({ours['evaluations']} + {ours['refit_evaluations']} loss evaluations)", flush=True)
    result = {"args": vars(args), "machine": platform.processor() or platform.machine(),
              "cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "device": str(device), "siambench": ours}
    if not args.skip_sklearn:
        sk = sklearn_sweep(train, val, test, lambdas, args.sk_max_iter)
        print(f"sklearn     {sk['seconds']:8.1f} s  λ* = {sk['best_lambda']:.3g}  val {sk['best_val']:.2f}  "
              f"test {sk['test_top1']:.2f}  ({sum(sk['iterations'])} + {sk['refit_iterations']} iterations)")
        result["sklearn"] = sk
        result["speedup"] = sk["seconds"] / ours["seconds"]
        result["test_top1_difference"] = ours["test_top1"] - sk["test_top1"]
        print(f"speed-up {result['speedup']:.1f}x, test top-1 difference {result['test_top1_difference']:+.2f} points")
    write_json(result, args.json)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
