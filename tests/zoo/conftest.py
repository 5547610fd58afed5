"""A local HTTP server standing in for the publishers, and zoo entries that point at it.

The server runs ``http.server`` on 127.0.0.1 in a thread. It serves bytes
from a dict, honours ``Range: bytes=N-`` (206 with Content-Range), can
redirect, can cut a response short (the connection drops after some bytes),
can ignore Range headers, and records every request it gets.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from siambench.zoo import registry
from siambench.zoo.registry import Published, ZooEntry


@dataclass
class Files:
    content: dict[str, bytes] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    cut_once: dict[str, int] = field(default_factory=dict)  # path → bytes sent before the connection drops
    ignore_range: set[str] = field(default_factory=set)
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)


class _Handler(BaseHTTPRequestHandler):
    files: Files

    def log_message(self, *args):
        pass

    def do_GET(self):
        files = self.files
        files.requests.append((self.path, self.headers.get("Range")))
        if self.path in files.redirects:
            self.send_response(302)
            self.send_header("Location", files.redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = files.content.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and self.path not in files.ignore_range:
            start = int(match.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        cut = files.cut_once.pop(self.path, None)
        self.wfile.write(body[start:start + cut] if cut is not None else body[start:])
        if cut is not None:
            self.close_connection = True


@pytest.fixture
def server():
    """``(base_url, files)``: put bytes in ``files.content[path]`` and fetch ``base_url + path``."""
    files = Files()
    handler = type("Handler", (_Handler,), {"files": files})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", files
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def tiny_moco_bytes(seed: int = 0) -> bytes:
    """A MoCo v2 layout checkpoint (module.encoder_q.*, an fc MLP, a queue) of a quarter-width ResNet-18."""
    import io

    from siambench.models import build_resnet

    torch.manual_seed(seed)
    model = build_resnet("resnet18", 0.25, "imagenet")
    sd = {f"module.encoder_q.{k}": v for k, v in model.state_dict().items()}
    sd["module.encoder_q.fc.0.weight"] = torch.randn(8, model.num_features)
    sd["module.queue"] = torch.randn(8, 16)
    buffer = io.BytesIO()
    torch.save({"epoch": 1, "arch": "resnet18", "state_dict": sd}, buffer)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def moco_bytes() -> bytes:
    return tiny_moco_bytes()


def make_entry(name: str, urls, **kwargs) -> ZooEntry:
    fields = dict(method="MoCo v2", arch="resnet18", width=0.25, epochs=1, url_source="the test server",
                  layout="moco", input_normalization="imagenet", license="test only",
                  published=(Published("knn", "digits", "top1@k20", 50.0, "a test value"),))
    fields.update(kwargs)
    return ZooEntry(name, urls=tuple([urls] if isinstance(urls, str) else urls), **fields)


@pytest.fixture
def add_entry(monkeypatch):
    """``add_entry(name, urls, **fields)``: a test-only entry, registered for the duration of a test."""

    def add(name: str, urls, **kwargs) -> ZooEntry:
        entry = make_entry(name, urls, **kwargs)
        monkeypatch.setitem(registry.ZOO, entry.name, entry)
        return entry

    return add


@pytest.fixture
def write_index(tmp_path):
    """``write_index(items)``: a JSON zoo index file holding ``items``; returns its path."""

    def write(items: list[dict]) -> str:
        path = tmp_path / "zoo_index.json"
        path.write_text(json.dumps(items))
        return str(path)

    return write
