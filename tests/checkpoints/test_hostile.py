"""Hostile and malformed files: each ends in exit status 2 and one clear line, runs nothing, stays in memory bounds.

The corpus is written by the tests. Every file is read by ``siambench ckpt inspect`` in one child process
(torch is imported once); the child resets its peak-RSS counter before each file and reports it after, so the
memory bound below is asserted per file, measured outside the test process.
"""

import json
import os
import pickle
import socket
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

PEAK_RSS_LIMIT = 1.5 * 2**30  # bytes, per file

DRIVER = r"""
import contextlib, io, json, sys
from siambench.cli import main

def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0

out = {}
for path in json.loads(sys.argv[1]):
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM; where not allowed the figure is the peak so far, still an upper bound
    except OSError:
        pass
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(["ckpt", "inspect", path])
    out[path] = {"rc": rc, "err": err.getvalue(), "peak": peak()}
print(json.dumps(out))
"""


class RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class ObjectArray:
    """``numpy.ndarray((n,), dtype('O'))``: 8·n bytes of pointers, filled, from a file of a hundred bytes."""

    def __init__(self, n, dtype="O"):
        self.n, self.dtype = n, dtype

    def __reduce__(self):
        return np.ndarray, ((self.n,), np.dtype(self.dtype))


class AllocatesTensor:
    """``torch.Tensor(n)``: an uninitialised tensor of ``n`` floats, asked for by a file of a hundred bytes."""

    def __reduce__(self):
        return torch.Tensor, (2**36,)


def torch_zip(path, data_pkl: bytes, compress=zipfile.ZIP_STORED):
    """A zip laid out as torch.save lays it out, holding ``data_pkl`` as its pickle."""
    with zipfile.ZipFile(path, "w", compression=compress) as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/byteorder", "little", compress_type=zipfile.ZIP_STORED)
        zf.writestr("archive/version", "3\n", compress_type=zipfile.ZIP_STORED)
    return path


def legacy_with(obj, path, protocol=2):
    torch.save(obj, path, _use_new_zipfile_serialization=False, pickle_protocol=protocol)
    return path


def _metadata_classes(n):
    """``n`` classes that pickle as ``argparse.Meta{i}`` (admitted as inert stand-ins, each a new name)."""
    import argparse

    classes = []
    for i in range(n):
        cls = type(f"Meta{i}", (), {"__module__": "argparse"})
        setattr(argparse, cls.__name__, cls)
        classes.append(cls)
    return classes


def build_corpus(root: Path, marker: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """name → (path, fragments the one-line message must hold)."""
    cases = {}
    evil = {"state_dict": {"w": torch.ones(2)}, "args": RunsACommand(marker)}
    for p in (2, 4, 5):
        path = root / f"evil_p{p}.pkl"
        path.write_bytes(pickle.dumps({"experiment_state": RunsACommand(marker)}, protocol=p))
        cases[f"reduce-pickle-p{p}"] = (path, ("refused", "system", "Nothing from the file was executed"))
        path = root / f"evil_p{p}.pth"
        torch.save(evil, path, pickle_protocol=p)
        cases[f"reduce-torch-zip-p{p}"] = (path, ("refused", "posix.system", "Nothing from the file was executed"))
        cases[f"reduce-torch-legacy-p{p}"] = (legacy_with(evil, root / f"evil_legacy_p{p}.pth", p),
                                             ("refused", "posix.system", "Nothing from the file was executed"))
    n = 2**28  # 2 GiB of pointers if the object array were made
    path = root / "objects.pkl"
    path.write_bytes(pickle.dumps({"w": ObjectArray(n)}, protocol=2))
    cases["numpy-object-array-pickle"] = (path, ("refused", "dtype object"))
    cases["numpy-object-array-torch-zip"] = (torch_zip(root / "objects.pth", pickle.dumps({"w": ObjectArray(n)},
                                                                                           protocol=2)),
                                             ("refused", "dtype object"))
    cases["torch-tensor-constructor"] = (torch_zip(root / "alloc.pth", pickle.dumps({"w": AllocatesTensor()},
                                                                                  protocol=2)),
                                         ("refused", "torch.Tensor(...)"))
    path = root / "declared.pkl"
    path.write_bytes(pickle.dumps({"w": ObjectArray(2**30, "f8")}, protocol=4))
    cases["numpy-declared-size"] = (path, ("refused", "declares 8589934592 bytes", "more than the whole file"))
    bomb = pickle.dumps({"w": bytes(64 << 20)}, protocol=4)
    cases["zip-deflate-bomb"] = (torch_zip(root / "bomb.pth", bomb, zipfile.ZIP_DEFLATED),
                                 ("refused", "archive/data.pkl", "compressed", str(len(bomb))))
    cases["dev-zero"] = (Path("/dev/zero"), ("/dev/zero is a character device, not a regular file",))
    fifo = root / "fifo.pth"
    os.mkfifo(fifo)
    cases["fifo"] = (fifo, ("is a FIFO (named pipe), not a regular file",))
    sock = root / "s.pth"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock))
    cases["socket"] = (sock, ("is a socket, not a regular file",))
    loop = root / "loop.pth"
    loop.symlink_to(root / "loop2.pth")
    (root / "loop2.pth").symlink_to(loop)
    cases["symlink-loop"] = (loop, ("symlink loop",))
    many = root / "many_classes.pth"
    legacy_with({"args": [cls() for cls in _metadata_classes(200)], "w": torch.ones(1)}, many)
    cases["200-metadata-classes"] = (many, ("no layout siambench recognises",))
    header = json.dumps({"__metadata__": {"x": "y"}}).encode()
    path = root / "short.safetensors"
    path.write_bytes(struct.pack("<Q", 1 << 40) + header)
    cases["safetensors-header-beyond-file"] = (path, ("header declares 1099511627776 bytes", "truncated"))
    for name, content in (("not-json", "{'arch': resnet18"), ("list", "[1, 2]")):
        run = root / f"meta_{name}"
        run.mkdir()
        torch.save({"conv1.weight": torch.ones(1)}, run / "backbone.pth")
        (run / "meta.json").write_text(content)
        cases[f"meta-json-{name}"] = (run, ("meta.json", "not valid JSON" if name == "not-json" else "JSON list"))
    return cases


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    marker = root / "executed"
    cases = build_corpus(root, marker)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps([str(p) for p, _ in cases.values()])],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    return {name: (results[str(path)], fragments) for name, (path, fragments) in cases.items()}, marker


CASES = ["reduce-pickle-p2", "reduce-pickle-p4", "reduce-pickle-p5", "reduce-torch-zip-p2", "reduce-torch-zip-p4",
         "reduce-torch-zip-p5", "reduce-torch-legacy-p2", "reduce-torch-legacy-p4", "reduce-torch-legacy-p5",
         "numpy-object-array-pickle", "numpy-object-array-torch-zip", "numpy-declared-size", "torch-tensor-constructor", "zip-deflate-bomb",
         "dev-zero", "fifo", "socket", "symlink-loop", "200-metadata-classes", "safetensors-header-beyond-file",
         "meta-json-not-json", "meta-json-list"]


@pytest.mark.parametrize("case", CASES)
def test_hostile_file(case, hostile):
    results, marker = hostile
    result, fragments = results[case]
    err = result["err"]
    assert result["rc"] == 2, err
    assert err.startswith("siambench: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert result["peak"] < PEAK_RSS_LIMIT, f"peak RSS {result['peak'] / 2**30:.2f} GiB"
    assert not marker.exists()
