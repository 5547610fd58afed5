"""kNN evaluation: FAISS against a chunked and an unchunked torch search.

All three answer the same question from the same inputs, a float16 bank and
float16 queries held in memory as a feature cache would give them: build a
float32 l2-normalised bank, find the top-k neighbours of every query at the
largest k, and vote with ``siambench.engine.knn.knn_vote`` (exp(s/T)) for
each k. They differ only in the search:

* ``faiss``: ``siambench.eval_knn.knn_classify`` (``IndexFlatIP`` on a CPU,
  queries in blocks of ``--faiss-chunk``);
* ``torch-chunked``: ``queries[block] @ bank.T`` then ``topk``, blocks of
  ``--torch-chunk`` queries, which bounds the similarity block to
  ``chunk x bank`` floats;
* ``torch-full``: one ``queries @ bank.T`` of ``queries x bank`` floats, then
  ``topk`` (skipped when that matrix would not fit in the memory available).

The clustered data are generated once into float16 ``.npy`` files; each
method runs in its own subprocess, which reads them into memory, and the time
covers everything after that (wall clock, and the CPU time of all the
process's threads, which shifts less when other work shares the cores).
``--rounds`` repeats the three, in alternating order, and reports medians.
Peak memory is the subprocess's high-water resident set (``VmHWM``) read
right after the method, also given net of the resident set just before it
started (the inputs and the imported libraries, warmed up). The same figure
from ``os.wait4`` (``ru_maxrss``) would also count the interpreter's exit,
which with torch and FAISS loaded adds about 0.25 GiB that no method uses.

The top-1 predictions of the three are compared for every k; the script
fails if any method disagrees with FAISS on more than ``--max-disagree`` of
the queries (near-ties in float32 are the only legitimate source of
disagreement).

    .venv/bin/python benchmarks/knn.py                           # 200k x 2048 bank, 10k queries
    .venv/bin/python benchmarks/knn.py --bank 50000 --queries 2000 --dim 512
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

METHODS = ("faiss", "torch-chunked", "torch-full")
GEN_CHUNK = 8192


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--bank", type=int, default=200_000, help="training features (rows of the bank)")
    p.add_argument("--queries", type=int, default=10_000)
    p.add_argument("--dim", type=int, default=2048)
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--ks", type=int, nargs="+", default=[10, 20, 100, 200])
    p.add_argument("--temperature", type=float, default=0.07)
    p.add_argument("--spread", type=float, default=8.0, help="noise std around each class centre, per dimension")
    p.add_argument("--faiss-chunk", type=int, default=8192)
    p.add_argument("--torch-chunk", type=int, default=1024)
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--max-disagree", type=float, default=0.001, help="fraction of queries")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    p.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def make_features(n: int, args, stream: int, path: Path) -> None:
    """Clustered float16 features and their labels, written to ``path``-features.npy and ``path``-labels.npy."""
    centers = np.random.default_rng([args.seed, 0]).standard_normal((args.classes, args.dim), dtype=np.float32)
    features = np.lib.format.open_memmap(f"{path}-features.npy", mode="w+", dtype=np.float16, shape=(n, args.dim))
    labels = np.lib.format.open_memmap(f"{path}-labels.npy", mode="w+", dtype=np.int64, shape=(n,))
    for i, start in enumerate(range(0, n, GEN_CHUNK)):
        stop = min(start + GEN_CHUNK, n)
        rng = np.random.default_rng([args.seed, stream, i])
        labels[start:stop] = rng.integers(0, args.classes, stop - start)
        block = rng.standard_normal((stop - start, args.dim), dtype=np.float32)
        block *= args.spread
        block += centers[labels[start:stop]]
        features[start:stop] = block
    features.flush()
    labels.flush()


def load(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels read into memory (not mapped, so that they count as the process's own memory)."""
    return np.load(f"{path}-features.npy"), np.load(f"{path}-labels.npy")


def rss_bytes(field: str = "VmRSS") -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def available_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def torch_bank(features):
    """Float32 l2-normalised copy of a float16 array, built block by block (one full copy, as FAISS holds)."""
    import torch
    import torch.nn.functional as F

    bank = torch.empty(features.shape, dtype=torch.float32)
    for start in range(0, len(features), GEN_CHUNK):
        block = torch.from_numpy(features[start : start + GEN_CHUNK]).float()
        bank[start : start + GEN_CHUNK] = F.normalize(block, dim=1)
    return bank


def vote(sims, idx, train_labels, ks, num_classes, temperature, out, start):
    from siambench.engine.knn import knn_vote

    neighbor_labels = train_labels[idx]
    for k in ks:
        kk = min(k, sims.shape[1])
        scores = knn_vote(sims[:, :kk], neighbor_labels[:, :kk], num_classes, temperature)
        out[k][start : start + len(sims)] = scores.argmax(1)


def run_torch(train, train_labels, test, args, chunk):
    import torch
    import torch.nn.functional as F

    bank = torch_bank(train)
    labels = torch.from_numpy(train_labels)
    k_max = min(max(args.ks), len(bank))
    preds = {k: torch.empty(len(test), dtype=torch.int64) for k in args.ks}
    for start in range(0, len(test), chunk):
        queries = F.normalize(torch.from_numpy(test[start : start + chunk]).float(), dim=1)
        sims, idx = (queries @ bank.T).topk(k_max, dim=1)
        vote(sims, idx, labels, args.ks, args.classes, args.temperature, preds, start)
    return {k: v.numpy() for k, v in preds.items()}


def run_faiss(train, train_labels, test, test_labels, args):
    from siambench.eval_knn import knn_classify

    result = knn_classify(
        train, train_labels, test, test_labels, args.classes, ks=args.ks,
        temperature=args.temperature, query_chunk=args.faiss_chunk, use_gpu=False, return_predictions=True,
    )
    return result["predictions"]


def run(method, train, train_labels, test, test_labels, args):
    import torch

    with torch.no_grad():
        if method == "faiss":
            return run_faiss(train, train_labels, test, test_labels, args)
        if method == "torch-chunked":
            return run_torch(train, train_labels, test, args, args.torch_chunk)
        return run_torch(train, train_labels, test, args, len(test))


def worker(args) -> None:
    """One method in this process.

    A small warm-up runs first, so that what the libraries allocate on first
    use (BLAS and OpenMP buffers, thread stacks) is part of the baseline and
    not charged to the method.
    """
    import torch

    train, train_labels = load(args.workdir / "train")
    test, test_labels = load(args.workdir / "test")
    n = min(len(train), 4 * max(args.ks))
    run(args.worker, train[:n], train_labels[:n], test[:256], test_labels[:256], args)

    baseline = rss_bytes()
    t0, c0 = time.perf_counter(), time.process_time()
    preds = run(args.worker, train, train_labels, test, test_labels, args)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    accuracy = {k: float((p == test_labels).mean() * 100) for k, p in preds.items()}
    np.savez(args.workdir / f"{args.worker}.npz", **{str(k): p for k, p in preds.items()})
    info = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "baseline_rss": baseline,
        "peak_rss": rss_bytes("VmHWM"),
        "top1": accuracy,
        "threads": torch.get_num_threads(),
    }
    (args.workdir / f"{args.worker}.json").write_text(json.dumps(info))


def launch(method: str, argv: list[str], workdir: Path) -> dict:
    cmd = [sys.executable, __file__, *argv, "--worker", method, "--workdir", str(workdir)]
    returncode = subprocess.run(cmd).returncode
    if returncode != 0:
        raise SystemExit(f"{method} failed with exit code {returncode}")
    return json.loads((workdir / f"{method}.json").read_text())


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return 0

    gib = 2**30
    bank_gib = args.bank * args.dim * 4 / gib
    full_gib = args.queries * args.bank * 4 / gib
    methods = list(args.methods)
    if "torch-full" in methods and (full_gib + 2.5 * bank_gib) * gib > 0.9 * available_bytes():
        print(f"torch-full skipped: its {args.queries} x {args.bank} similarities ({full_gib:.1f} GiB) do not fit")
        methods.remove("torch-full")
    print(
        f"bank {args.bank} x {args.dim} (float32 {bank_gib:.2f} GiB), {args.queries} queries, "
        f"{args.classes} classes, ks {args.ks}, {os.cpu_count()} CPUs"
    )

    with tempfile.TemporaryDirectory(prefix="knn-bench-") as tmp:
        workdir = Path(tmp)
        make_features(args.bank, args, 1, workdir / "train")
        make_features(args.queries, args, 2, workdir / "test")
        runs = {m: [] for m in methods}
        for r in range(args.rounds):
            for m in methods if r % 2 == 0 else methods[::-1]:
                runs[m].append(launch(m, argv, workdir))
        preds = {m: dict(np.load(workdir / f"{m}.npz")) for m in methods}
    results = {}
    for m, infos in runs.items():
        results[m] = dict(infos[-1], rounds=infos)
        for key in ("seconds", "cpu_seconds"):
            results[m][key] = statistics.median(i[key] for i in infos)

    for r in results.values():
        r["net_rss"] = r["peak_rss"] - r["baseline_rss"]
    ref = results.get("faiss")
    header = ("method", "wall s", "x faiss", "cpu s", "x faiss", "peak GiB", "net GiB", "x faiss")
    print(f"\n{header[0]:<14}" + "".join(f"{h:>9}" for h in header[1:]))
    for m, r in results.items():
        ratio = {key: r[key] / ref[key] if ref else float("nan") for key in ("seconds", "cpu_seconds", "net_rss")}
        print(
            f"{m:<14}{r['seconds']:>9.1f}{ratio['seconds']:>9.2f}{r['cpu_seconds']:>9.1f}{ratio['cpu_seconds']:>9.2f}"
            f"{r['peak_rss'] / gib:>9.2f}{r['net_rss'] / gib:>9.2f}{ratio['net_rss']:>9.2f}"
        )

    print()
    for m, r in results.items():
        print(f"{m} top-1 %: " + ", ".join(f"k{k} {v:.2f}" for k, v in r["top1"].items()))
    worst = 0.0
    for m in methods if "faiss" in preds else []:
        if m != "faiss":
            diff = {k: int((preds[m][k] != preds["faiss"][k]).sum()) for k in preds["faiss"]}
            worst = max(worst, max(diff.values()) / args.queries)
            print(f"{m} vs faiss, queries with another top-1: " + ", ".join(f"k{k} {d}" for k, d in diff.items()))

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        summary = {"args": {k: str(v) for k, v in vars(args).items()}, "results": results}
        args.json.write_text(json.dumps(summary, indent=2))
    if worst > args.max_disagree:
        print(f"FAIL: a method disagrees with FAISS on {worst:.2%} of the queries")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
