"""L2-regularised multinomial logistic regression on frozen features (PROTOCOLS C.3).

The transfer benchmark's linear protocol: softmax regression on pooled
features, L-BFGS, the regularisation ``λ`` chosen from 45 log-spaced values
in [1e-6, 1e5] on a validation split, then a refit on train+val with that
``λ`` and a score on test. The reference implementation (ssl-transfer) runs
scikit-learn's ``LogisticRegression(C=1/λ)`` on the raw features, so the
objective here is scikit-learn's, term for term::

    Σ_i CE(W x_i + b, y_i) + (1 / 2C) · ‖W‖²       (bias not penalised)

and the same ``C`` gives the same solution. With two classes scikit-learn
fits one weight vector (a sigmoid), not two softmax rows: so does this
module (row 0 of ``W`` and ``b`` is held at zero), which keeps ``C`` meaning
the same thing there too. Features are not standardised: that would change
the problem.

What makes it fast is a change of variables, not a change of problem. The
optimiser works on ``A`` with ``W = A · diag(p) · Vᵀ`` and a bias measured
at the feature mean, where ``V`` are the principal axes of the training
features and ``p`` scales each axis to roughly unit curvature. The penalty
``‖W‖² = ‖A · diag(p)‖²`` is unchanged by the rotation and is computed
exactly, so the minimiser is the same; L-BFGS, whose ten-pair memory cannot
learn a spectrum that spans decades, sees a better conditioned problem
(1.5 to 6 times fewer loss evaluations on the problems tried). The solver
runs in float32 (float64 on request) on the features' device (GPU when
there is one), with the softmax gradient written out (no autograd graph).

The sweep goes from strong to weak regularisation, each ``λ`` starting from
a secant prediction out of the previous two solutions. At ``λ = 1e5`` the
solution is ``W ≈ 0`` and takes a few steps; each step down the path moves
it a little; and once ``λ`` is negligible next to the data term, the warm
start already meets the tolerance and a ``λ`` costs one evaluation. The
other direction (ssl-transfer's, which scikit-learn then caps at 100
iterations) starts with the hardest, nearly unregularised problem from
zero, and its strongly regularised end gains little from warm starts: it
took three times as many evaluations on the benchmark's default problem.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ..engine.metrics import mean_per_class_accuracy, top1

DEFAULT_LAMBDAS = tuple(float(v) for v in np.logspace(-6, 5, 45))
METRICS = ("top1", "mean_per_class")
MIN_CURVATURE = 1e-8  # floor of the softmax curvature the preconditioner assumes


# ---------------------------------------------------------------- inputs and metrics


def as_tensor(x, device=None, dtype=torch.float32, chunk: int = 16384) -> torch.Tensor:
    """A numpy array (float16 memmaps included) or tensor as a ``dtype`` tensor on ``device``.

    Converted in row chunks, so a float16 memmap never becomes a float64
    copy on the way.
    """
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=dtype)
    x = np.asarray(x) if not isinstance(x, np.ndarray) else x
    out = torch.empty(x.shape, dtype=dtype, device=device)
    for start in range(0, x.shape[0], chunk):
        part = np.array(x[start : start + chunk])  # a private, writable copy of the rows
        out[start : start + chunk] = torch.from_numpy(part).to(device=device, dtype=dtype)
    return out


def _device(X, device=None) -> torch.device:
    """``device`` if given, else a tensor's own device, else CUDA when available."""
    if device is not None:
        return torch.device(device)
    if isinstance(X, torch.Tensor):
        return X.device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def as_labels(y, device=None) -> torch.Tensor:
    y = y if isinstance(y, torch.Tensor) else torch.from_numpy(np.asarray(y))
    return y.to(device=device, dtype=torch.long)


def score(pred, target, metric: str, num_classes: int | None = None) -> float:
    """``metric`` (``top1`` or ``mean_per_class``, percent) of predicted classes."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    pred, target = as_labels(pred).cpu().numpy(), as_labels(target).cpu().numpy()
    return top1(pred, target) if metric == "top1" else mean_per_class_accuracy(pred, target, num_classes)


# ---------------------------------------------------------------- the problem


def logistic_objective(X, y, W, b, C: float) -> float:
    """scikit-learn's objective ``Σ CE + ‖W‖² / (2C)`` at ``(W, b)``, in float64.

    ``W`` is ``(K, D)`` or, as scikit-learn's binary ``coef_``, ``(1, D)``.
    """
    X = as_tensor(X, dtype=torch.float64)
    y = as_labels(y, X.device)
    W = as_tensor(W, X.device, torch.float64)
    b = as_tensor(b, X.device, torch.float64).reshape(-1)
    logits = X @ W.T + b
    if W.shape[0] == 1:
        logits = torch.cat([torch.zeros_like(logits), logits], 1)
    ce = torch.logsumexp(logits, 1) - logits.gather(1, y[:, None]).squeeze(1)
    return (ce.sum() + W.pow(2).sum() / (2 * C)).item()


@dataclass
class Preconditioner:
    """Principal axes and variances of the training features, and their mean.

    With the per-sample curvature ``c`` of the softmax (the mean of
    ``p(1 − p)`` over samples and classes, 1/K at ``W = 0`` and shrinking as
    the fit grows confident), axis ``j`` of ``W`` has curvature about
    ``c · variance_j + λ/N``, and the bias (measured at the mean) about
    ``c``. Tracking ``c`` matters on separable data at weak
    regularisation, where it falls by orders of magnitude: a fixed 1/K
    would then overstate the data directions' curvature against the
    penalty's and make the problem worse conditioned than no
    preconditioning at all.
    """

    mean: torch.Tensor
    axes: torch.Tensor
    variances: torch.Tensor

    @classmethod
    def fit(cls, X: torch.Tensor, max_rows: int = 20000, seed: int = 0) -> "Preconditioner":
        """From (a seeded subset of) the training features: a preconditioner need only be close."""
        n = X.shape[0]
        if n > max_rows:
            g = torch.Generator().manual_seed(seed)
            X = X[torch.randperm(n, generator=g)[:max_rows].to(X.device)]
        mean = X.mean(0)
        centred = X - mean
        cov = (centred.T @ centred).double() / X.shape[0]
        variances, axes = torch.linalg.eigh(cov)
        return cls(mean, axes.to(X.dtype), variances.clamp_min(0).to(X.dtype))

    def scales(self, curvature: float, lam_per_sample: float) -> tuple[torch.Tensor, float]:
        """Per-axis scales of ``W`` and the bias's scale, for curvature ``c`` and penalty ``λ/N``."""
        curvature = max(curvature, MIN_CURVATURE)
        return torch.rsqrt(curvature * self.variances + lam_per_sample), 1.0 / math.sqrt(curvature)


class _Problem:
    """Loss and gradient in the preconditioned variables for one dataset."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor, num_classes: int, pre: Preconditioner | None):
        self.X, self.y, self.k = X, y, num_classes
        self.n, self.d = X.shape
        self.binary = num_classes == 2
        self.rows = 1 if self.binary else num_classes
        self.pre = pre
        self.arange = torch.arange(self.n, device=X.device)

    def set_lambda(self, lam: float, curvature: float) -> None:
        self.lam = lam
        if self.pre is None:
            self.p = torch.ones(self.d, dtype=self.X.dtype, device=self.X.device)
            self.bias_scale = 1.0
        else:
            self.p, self.bias_scale = self.pre.scales(curvature, lam / self.n)

    # variables ↔ (W, b) ---------------------------------------------------

    def to_variables(self, W: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``(W, b)`` of shape ``(rows, D)``, ``(rows,)`` → the flat optimisation variable."""
        if self.pre is None:
            return torch.cat([W.reshape(-1), b]).contiguous()
        A = (W @ self.pre.axes) / self.p
        beta = (b + W @ self.pre.mean) / self.bias_scale
        return torch.cat([A.reshape(-1), beta]).contiguous()

    def from_variables(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        A = theta[: self.rows * self.d].view(self.rows, self.d)
        beta = theta[self.rows * self.d :]
        if self.pre is None:
            return A, beta
        W = (A * self.p) @ self.pre.axes.T
        return W, beta * self.bias_scale - W @ self.pre.mean

    # objective --------------------------------------------------------------

    def _probabilities(self, W: torch.Tensor, b: torch.Tensor):
        logits = torch.addmm(b, self.X, W.T)
        if self.binary:
            logits = torch.cat([torch.zeros_like(logits), logits], 1)
        lse = torch.logsumexp(logits, 1)
        ce = (lse - logits[self.arange, self.y]).sum()
        prob = torch.exp(logits - lse[:, None])
        # mean over samples and classes of p(1 − p) = (1 − Σ_k p_k²) / K
        curvature = (1.0 - prob.pow(2).sum(1)).mean() / self.k
        return ce, prob, curvature

    def curvature(self, W: torch.Tensor, b: torch.Tensor) -> float:
        return self._probabilities(W, b)[2].item()

    def evaluate(self, theta: torch.Tensor):
        """Objective / N, its gradient in the optimisation variables, and the curvature ``c``."""
        W, b = self.from_variables(theta)
        ce, prob, curvature = self._probabilities(W, b)
        prob[self.arange, self.y] -= 1.0
        if self.binary:
            prob = prob[:, 1:]
        grad_b = prob.sum(0)
        grad_W = prob.T @ self.X + self.lam * W
        loss = (ce + 0.5 * self.lam * W.pow(2).sum()) / self.n
        if self.pre is None:
            grad = torch.cat([grad_W.reshape(-1), grad_b]) / self.n
        else:
            # W = (A·p) Vᵀ, b = β·s − W μ  ⇒  ∂/∂A = ((∂W − ∂b μᵀ) V)·p, ∂/∂β = s·∂b.
            grad_A = ((grad_W - grad_b[:, None] * self.pre.mean) @ self.pre.axes) * self.p
            grad = torch.cat([grad_A.reshape(-1), grad_b * self.bias_scale]) / self.n
        return loss, grad, curvature


class _CurvatureDrift(Exception):
    """Raised from inside L-BFGS when the preconditioner no longer fits the current point."""


def _lbfgs(problem: _Problem, theta: torch.Tensor, max_iter: int, tol: float, history: int,
           curvature: float, drift: float = 4.0) -> dict:
    """Minimise with ``torch.optim.LBFGS`` (strong Wolfe) until ``max |∇| ≤ tol``.

    Stops early, at the best point so far, once an improving point's
    softmax curvature is ``drift`` times off the one the preconditioner was
    built for (``drifted`` in the result): the caller rebuilds it there.
    The strong-Wolfe search always ends on a point it evaluated, so the
    final point's loss, gradient and curvature come from the evaluations
    already made rather than being paid for again.
    """
    param = torch.nn.Parameter(theta)
    opt = torch.optim.LBFGS(
        [param],
        lr=1.0,
        max_iter=max_iter,
        max_eval=max(int(max_iter * 1.25), 1),
        tolerance_grad=tol,
        tolerance_change=1e-12,
        history_size=history,
        line_search_fn="strong_wolfe",
    )
    recent = deque(maxlen=32)  # the line search's latest points: the final one is among them
    track = {"start": None, "best": None, "evaluations": 0}

    def closure():
        with torch.no_grad():
            loss, grad, c = problem.evaluate(param.detach())
        record = (param.detach().clone(), loss, grad, c)
        recent.append(record)
        track["evaluations"] += 1
        if track["start"] is None:
            track["start"] = loss
        if track["best"] is None or loss < track["best"][1]:
            track["best"] = record
        ratio = max(c.item(), MIN_CURVATURE) / max(curvature, MIN_CURVATURE)
        if problem.pre is not None and loss < track["start"] and not 1 / drift < ratio < drift:
            raise _CurvatureDrift
        param.grad = grad
        return loss

    drifted = False
    try:
        opt.step(closure)
        final = param.detach()
        match = next((r for r in reversed(recent) if torch.equal(r[0], final)), None)
        if match is None:
            with torch.no_grad():
                match = (final, *problem.evaluate(final))
    except _CurvatureDrift:
        drifted = True
        match = track["best"]
    final, loss, grad, c = match
    return {
        "theta": final,
        "loss": loss.item(),
        "grad_max": grad.abs().max().item(),
        "curvature": c.item(),
        "drifted": drifted,
        "iterations": int(opt.state[param].get("n_iter", 0)),
        "evaluations": track["evaluations"],
    }


def fit_logistic(
    X,
    y,
    C: float,
    num_classes: int,
    init: tuple | None = None,
    max_iter: int = 1000,
    tol: float = 1e-6,
    history: int = 10,
    device=None,
    precondition: bool | Preconditioner = True,
    dtype: torch.dtype = torch.float32,
):
    """Minimise ``Σ CE + ‖W‖²/(2C)`` (scikit-learn's ``LogisticRegression(C=C)``).

    ``X`` ``(N, D)`` features (numpy, float16 memmaps included, or a
    tensor), ``y`` labels in ``[0, num_classes)``. ``init`` is a previous
    ``(W, b)`` to start from (warm start). ``tol`` bounds the largest
    gradient entry of the objective divided by ``N`` in the preconditioned
    variables, where each axis has roughly unit curvature, so it reads as a
    scale-free stationarity measure (scikit-learn's ``tol`` bounds the raw
    gradient instead). ``precondition`` may be a :class:`Preconditioner`
    fitted once and reused, or ``False`` for plain L-BFGS on ``(W, b)``.
    ``device``: a tensor's own device, else CUDA when available.
    ``dtype=torch.float64`` solves in double precision: only needed when the
    data are separable and ``C`` is large, where the per-sample losses are
    so small that float32 stops resolving the objective's decrease.

    Returns ``(W, b, info)``: ``W`` ``(K, D)`` and ``b`` ``(K,)`` in ``dtype`` on
    that device (for two classes, row 0 is zero, as scikit-learn's single
    ``coef_`` row is row 1), and ``info`` with ``objective`` (the sum
    above), ``grad_max``, ``converged``, ``iterations``, ``evaluations``
    and ``seconds``.
    """
    start = time.perf_counter()
    X = as_tensor(X, _device(X, device), dtype)
    y = as_labels(y, X.device)
    if precondition is True:
        pre = Preconditioner.fit(X)
    else:
        pre = precondition or None
    problem = _Problem(X, y, num_classes, pre)
    W, b, info = _solve(problem, C, init, max_iter, tol, history)
    info["seconds"] = time.perf_counter() - start
    return W, b, info


def _solve(problem: _Problem, C: float, init, max_iter: int, tol: float, history: int, curvature: float | None = None):
    """One fit at ``C`` from ``init``; ``curvature`` (the softmax's at or near ``init``) sets the preconditioner."""
    rows, d, dev, dtype = problem.rows, problem.d, problem.X.device, problem.X.dtype
    if init is None:
        W = torch.zeros(rows, d, device=dev, dtype=dtype)
        b = torch.zeros(rows, device=dev, dtype=dtype)
        curvature = (1.0 - 1.0 / problem.k) / problem.k
    else:
        W = as_tensor(init[0], dev, dtype)
        b = as_tensor(init[1], dev, dtype).reshape(-1)
        if problem.binary and W.shape[0] == 2:
            W, b = W[1:] - W[:1], b[1:] - b[:1]
        if curvature is None and problem.pre is not None:
            with torch.no_grad():
                curvature = problem.curvature(W, b)
    iterations, evaluations, restarts = 0, 0, 0
    while True:
        problem.set_lambda(1.0 / C, curvature)
        run = _lbfgs(problem, problem.to_variables(W, b), max(max_iter - iterations, 1), tol, history, curvature)
        W, b = problem.from_variables(run["theta"])
        iterations += run["iterations"]
        evaluations += run["evaluations"]
        curvature = run["curvature"]
        if not run["drifted"] or iterations >= max_iter:
            break
        restarts += 1
    if problem.binary:
        W = torch.cat([torch.zeros_like(W), W])
        b = torch.cat([torch.zeros_like(b), b])
    info = {
        "C": C,
        "objective": run["loss"] * problem.n,
        "grad_max": run["grad_max"],
        "converged": run["grad_max"] <= tol,
        "iterations": iterations,
        "evaluations": evaluations,
        "restarts": restarts,
        "curvature": curvature,
    }
    return W.detach(), b.detach(), info


def predict(X, W: torch.Tensor, b: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    """Predicted classes ``argmax(X Wᵀ + b)``."""
    out = []
    for start in range(0, X.shape[0], chunk):
        x = as_tensor(X[start : start + chunk], W.device, W.dtype)
        out.append(torch.addmm(b, x, W.T).argmax(1))
    return torch.cat(out)


def evaluate(X, y, W, b, num_classes: int) -> dict:
    pred = predict(X, W, b).cpu()
    y = as_labels(y)
    return {metric: score(pred, y, metric, num_classes) for metric in METRICS}


# ---------------------------------------------------------------- the sweep


def _predict_start(path, lam: float):
    """A start for ``λ``: the last solution, moved on by the last step along the path.

    The solution moves smoothly with ``log λ``, so a secant step from the
    last two solutions lands closer than the last solution alone: about a
    fifth fewer iterations over the sweep.
    """
    if not path:
        return None
    if len(path) == 1 or path[-1][0] == path[-2][0]:
        return path[-1][1:]
    (la, Wa, ba), (lb, Wb, bb) = path
    t = (math.log(lam) - lb) / (lb - la)
    return Wb + t * (Wb - Wa), bb + t * (bb - ba)


WARM_STARTS = {
    "secant": "each λ starts from a secant step out of the previous two solutions",
    "previous": "each λ starts from the previous solution (scikit-learn's warm_start=True, ssl-transfer)",
}
REFIT_FROM = {
    "best": "the refit on train+val starts from the chosen λ's train solution",
    "last": "the refit starts from the sweep's last solution (ssl-transfer's one shared classifier)",
}


def regularisation_path(problem: _Problem, lambdas: list[float], max_iter: int = 1000, tol: float = 1e-4,
                        history: int = 10, order: str = "strong_to_weak", progress: bool = False,
                        warm_start: str = "secant"):
    """Yield ``(index, W, b, info)`` for every ``λ`` of ``lambdas``, solved in ``order`` with warm starts."""
    if order not in ("strong_to_weak", "weak_to_strong"):
        raise ValueError(f"order must be 'strong_to_weak' or 'weak_to_strong', got {order!r}")
    if warm_start not in WARM_STARTS:
        raise ValueError(f"warm_start must be one of {', '.join(WARM_STARTS)}, got {warm_start!r}")
    sign = -1.0 if order == "strong_to_weak" else 1.0
    path: list[tuple[float, torch.Tensor, torch.Tensor]] = []
    curvature = None
    for i in tqdm(sorted(range(len(lambdas)), key=lambda i: sign * lambdas[i]), desc="λ sweep",
                  disable=not progress, leave=False):
        start = _predict_start(path, lambdas[i]) if warm_start == "secant" else (path[-1][1:] if path else None)
        W, b, info = _solve(problem, 1.0 / lambdas[i], start, max_iter, tol, history, curvature)
        curvature = info["curvature"]
        path = [*path[-1:], (math.log(lambdas[i]), W, b)]
        yield i, W, b, info


def logistic_sweep(
    train,
    val,
    test,
    num_classes: int,
    lambdas=DEFAULT_LAMBDAS,
    metric: str = "top1",
    refit: bool = True,
    max_iter: int = 1000,
    tol: float = 1e-4,
    refit_tol: float = 1e-6,
    history: int = 10,
    device=None,
    precondition: bool = True,
    order: str = "strong_to_weak",
    dtype: torch.dtype | str = torch.float32,
    progress: bool = False,
    warm_start: str = "secant",
    refit_from: str = "best",
) -> dict:
    """The transfer-linear protocol: select ``λ`` on ``val``, refit on train+val, score on ``test``.

    ``train``, ``val``, ``test`` are ``(features, labels)`` pairs (``test``
    may be ``None``). Every ``λ`` is fitted on train, each fit starting
    from a prediction out of the previous ones (``order``: strongest
    regularisation first by default, see the module's docstring); the one
    with the best ``metric`` on val wins, ties going to the smallest ``λ``
    (ssl-transfer keeps the first strict improvement while it walks ``λ``
    upwards). With ``refit`` the winner is refitted on train+val, starting
    from its train solution; else its train solution is the model. The
    sweep's ``tol`` is looser than ``refit_tol``: choosing among the λ needs
    each solution only as far as its val score can tell (at 1e-4 the
    objective is typically within 1e-4, relative, of its optimum), while
    the model scored on test is solved tightly. ``device``: CUDA when
    available unless given; ``dtype`` as for :func:`fit_logistic` (or its
    name). ``warm_start`` and ``refit_from`` (:data:`WARM_STARTS`,
    :data:`REFIT_FROM`) with ``order="weak_to_strong"``, ``max_iter=100``
    and no preconditioning follow ssl-transfer's code path instead.

    Returns a dict: ``best_lambda``, ``best_C``, ``metric``, ``lambdas``,
    ``val_scores`` (aligned with ``lambdas``), ``best_val``, ``fits`` and
    ``refit`` (solver info per fit), ``W`` and ``b`` (the model, CPU
    tensors), ``test`` (``top1`` and ``mean_per_class``, percent) and
    ``seconds``.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {', '.join(METRICS)}")
    if refit_from not in REFIT_FROM:
        raise ValueError(f"refit_from must be one of {', '.join(REFIT_FROM)}, got {refit_from!r}")
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    start = time.perf_counter()
    device = _device(train[0], device)
    Xtr, ytr = as_tensor(train[0], device, dtype), as_labels(train[1], device)
    Xva, yva = as_tensor(val[0], device, dtype), as_labels(val[1], device)
    pre = Preconditioner.fit(Xtr) if precondition else None
    problem = _Problem(Xtr, ytr, num_classes, pre)

    lambdas = [float(v) for v in lambdas]
    val_scores = [math.nan] * len(lambdas)
    fits = [None] * len(lambdas)
    best, best_solution = None, None
    last = None
    for i, W, b, info in regularisation_path(problem, lambdas, max_iter, tol, history, order, progress, warm_start):
        last = (i, W, b)
        val_scores[i] = score(predict(Xva, W, b).cpu(), yva.cpu(), metric, num_classes)
        fits[i] = info
        better = best is None or val_scores[i] > val_scores[best] or (
            val_scores[i] == val_scores[best] and lambdas[i] < lambdas[best]
        )
        if better:
            best, best_solution = i, (W, b)

    best_lambda = lambdas[best]
    W, b = best_solution
    refit_info = None
    if refit:
        both = _Problem(torch.cat([Xtr, Xva]), torch.cat([ytr, yva]), num_classes, pre)
        source = best if refit_from == "best" else last[0]
        init = (W, b) if refit_from == "best" else last[1:]
        W, b, refit_info = _solve(both, 1.0 / best_lambda, init, max_iter, refit_tol, history,
                                  fits[source]["curvature"])
    result = {
        "best_lambda": best_lambda,
        "best_C": 1.0 / best_lambda,
        "metric": metric,
        "lambdas": lambdas,
        "val_scores": val_scores,
        "best_val": val_scores[best],
        "fits": fits,
        "refit": refit_info,
        "W": W.cpu(),
        "b": b.cpu(),
    }
    if test is not None:
        result["test"] = evaluate(test[0], test[1], W, b, num_classes)
    result["seconds"] = time.perf_counter() - start
    return result


def decision_scores(X, W: torch.Tensor, b: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
    """A binary model's ``decision_function``: the log-odds of class 1 (scikit-learn's ``coef_`` row)."""
    out = []
    for start in range(0, X.shape[0], chunk):
        x = as_tensor(X[start : start + chunk], W.device, W.dtype)
        out.append(x @ (W[1] - W[0]) + (b[1] - b[0]))
    return torch.cat(out)


def one_vs_rest_sweep(
    train,
    val,
    test,
    val_score,
    lambdas=DEFAULT_LAMBDAS,
    refit: bool = True,
    max_iter: int = 1000,
    tol: float = 1e-4,
    refit_tol: float = 1e-6,
    history: int = 10,
    device=None,
    dtype: torch.dtype | str = torch.float32,
    progress: bool = False,
    order: str = "strong_to_weak",
    precondition: bool = True,
    warm_start: str = "secant",
) -> dict:
    """The multi-label form of :func:`logistic_sweep` (VOC2007): one binary classifier per class.

    ``train``, ``val``, ``test`` are ``(features, labels)`` with labels
    ``(N, C)``, positive where equal to 1 (VOC's 0 "difficult" and -1 are
    negatives). For every ``λ`` the ``C`` classifiers share that ``λ``, as
    in ssl-transfer, and ``val_score(scores (N, C), labels)`` (the mean
    11-point AP) picks it. The winners are refitted on train+val; the
    result holds their test decision scores (``test_scores``, ``(N, C)``).
    """
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    start = time.perf_counter()
    device = _device(train[0], device)
    Xtr, Xva = as_tensor(train[0], device, dtype), as_tensor(val[0], device, dtype)
    ytr, yva = np.asarray(train[1]), np.asarray(val[1])
    lambdas = [float(v) for v in lambdas]
    pre = Preconditioner.fit(Xtr) if precondition else None
    scores = np.zeros((len(lambdas), len(Xva), ytr.shape[1]))
    solutions = []
    for c in tqdm(range(ytr.shape[1]), desc="classes", disable=not progress, leave=False):
        problem = _Problem(Xtr, torch.as_tensor(ytr[:, c] == 1, device=device).long(), 2, pre)
        per_lambda = {}
        for i, W, b, info in regularisation_path(problem, lambdas, max_iter, tol, history, order, False, warm_start):
            scores[i, :, c] = decision_scores(Xva, W, b).cpu().numpy()
            per_lambda[i] = (W, b, info["curvature"])
        solutions.append(per_lambda)
    val_scores = [float(val_score(scores[i], yva)) for i in range(len(lambdas))]
    best = max(range(len(lambdas)), key=lambda i: (val_scores[i], -lambdas[i]))
    result = {"best_lambda": lambdas[best], "best_C": 1.0 / lambdas[best], "lambdas": lambdas,
              "val_scores": val_scores, "best_val": val_scores[best]}
    if test is not None:
        Xboth = torch.cat([Xtr, Xva]) if refit else Xtr
        yboth = np.concatenate([ytr, yva]) if refit else ytr
        columns = []
        for c, per_lambda in enumerate(solutions):
            W, b, curvature = per_lambda[best]
            if refit:
                problem = _Problem(Xboth, torch.as_tensor(yboth[:, c] == 1, device=device).long(), 2, pre)
                W, b, _ = _solve(problem, 1.0 / lambdas[best], (W, b), max_iter, refit_tol, history, curvature)
            columns.append(decision_scores(test[0], W, b).cpu().numpy())
        result["test_scores"] = np.stack(columns, 1)
    result["seconds"] = time.perf_counter() - start
    return result
