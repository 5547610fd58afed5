"""zoo:NAME against a local server: download, resume, checksums, errors, offline use."""

from __future__ import annotations

import hashlib

import pytest
import torch

from siambench.checkpoints import load
from siambench.checkpoints.locate import locate
from siambench.errors import CheckpointError
from siambench.zoo import download
from siambench.zoo.download import cached_path, fetch, pin_path
from siambench.zoo.registry import INDEX_ENV


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


@pytest.fixture
def no_torch_load(monkeypatch):
    """Fail the test if anything calls torch.load; returns the list of paths it was asked to load."""
    calls = []

    def refuse(path, *args, **kwargs):
        calls.append(path)
        raise AssertionError(f"torch.load({path}) was called")

    monkeypatch.setattr(torch, "load", refuse)
    return calls


def test_clean_download_then_cached(server, add_entry, moco_bytes):
    base, files = server
    files.content["/moco.pth.tar"] = moco_bytes
    entry = add_entry("t_clean", f"{base}/moco.pth.tar", sha256=sha256(moco_bytes))
    path = fetch("t_clean", progress=False)
    assert path == cached_path(entry) and path.read_bytes() == moco_bytes
    assert pin_path(path).read_text().split()[0] == sha256(moco_bytes)
    assert not path.with_name(path.name + ".part").exists()
    assert files.requests == [("/moco.pth.tar", None)]
    assert fetch("t_clean", progress=False) == path
    assert len(files.requests) == 1, "a cached file is not downloaded again"


def test_scheme_resolves_everywhere_a_checkpoint_is_accepted(server, add_entry, moco_bytes):
    base, files = server
    files.content["/moco.pth.tar"] = moco_bytes
    entry = add_entry("t_scheme", f"{base}/moco.pth.tar")
    assert locate("zoo:t_scheme") == cached_path(entry)
    backbone = load("zoo:t_scheme")
    assert backbone.meta["source_format"] == "moco" and backbone.spec.arch == "resnet18"
    assert backbone.meta["sha256"] == sha256(moco_bytes)


def test_interrupted_download_resumes_with_a_range_request(server, add_entry, moco_bytes):
    base, files = server
    files.content["/moco.pth.tar"] = moco_bytes
    files.cut_once["/moco.pth.tar"] = 100_000
    entry = add_entry("t_resume", f"{base}/moco.pth.tar", sha256=sha256(moco_bytes))
    with pytest.raises(CheckpointError, match="stopped after 100000 bytes.*resume"):
        fetch("t_resume", progress=False)
    dest = cached_path(entry)
    part = dest.with_name(dest.name + ".part")
    assert not dest.exists() and part.stat().st_size == 100_000
    assert fetch("t_resume", progress=False).read_bytes() == moco_bytes
    assert files.requests[-1] == ("/moco.pth.tar", "bytes=100000-")
    assert not part.exists()


def test_resume_when_the_server_ignores_range_starts_over(server, add_entry, moco_bytes):
    base, files = server
    files.content["/moco.pth.tar"] = moco_bytes
    files.cut_once["/moco.pth.tar"] = 50_000
    files.ignore_range.add("/moco.pth.tar")
    add_entry("t_norange", f"{base}/moco.pth.tar", sha256=sha256(moco_bytes))
    with pytest.raises(CheckpointError):
        fetch("t_norange", progress=False)
    assert fetch("t_norange", progress=False).read_bytes() == moco_bytes


def test_a_part_longer_than_the_file_is_fetched_afresh(server, add_entry, moco_bytes):
    base, files = server
    files.content["/moco.pth.tar"] = moco_bytes
    entry = add_entry("t_416", f"{base}/moco.pth.tar", sha256=sha256(moco_bytes))
    dest = cached_path(entry)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.with_name(dest.name + ".part").write_bytes(b"x" * (len(moco_bytes) + 10))
    assert fetch("t_416", progress=False).read_bytes() == moco_bytes


@pytest.mark.parametrize("check", ["sha256", "sha256_prefix", "md5_prefix", "size"])
def test_a_wrong_checksum_moves_the_file_aside_and_never_loads_it(server, add_entry, moco_bytes, no_torch_load, check):
    base, files = server
    files.content["/moco.pth.tar"] = moco_bytes
    wrong = {"sha256": "0" * 64, "sha256_prefix": "00000000", "md5_prefix": "00000000", "size": len(moco_bytes) + 1}
    right = {"sha256": sha256(moco_bytes), "sha256_prefix": sha256(moco_bytes)[:8],
             "md5_prefix": hashlib.md5(moco_bytes).hexdigest()[:8], "size": len(moco_bytes)}
    assert right[check] != wrong[check]
    entry = add_entry("t_bad", f"{base}/moco.pth.tar", **{check: wrong[check]})
    with pytest.raises(CheckpointError, match="failed its check.*was not loaded"):
        load("zoo:t_bad")
    dest = cached_path(entry)
    assert not dest.exists() and not pin_path(dest).exists()
    assert dest.with_name(dest.name + ".bad").read_bytes() == moco_bytes
    assert no_torch_load == []
    add_entry("t_good", f"{base}/moco.pth.tar", **{check: right[check]})
    assert fetch("t_good", progress=False).read_bytes() == moco_bytes


def test_nothing_is_loaded_before_its_hash_is_checked(server, add_entry, moco_bytes, monkeypatch):
    """When torch.load first sees the file, it sits at its final name with its sha256 pinned."""
    base, files = server
    files.content["/moco.pth.tar"] = moco_bytes
    entry = add_entry("t_order", f"{base}/moco.pth.tar", sha256=sha256(moco_bytes))
    seen = []
    real_load = torch.load

    def spy(path, *args, **kwargs):
        seen.append((str(path), pin_path(cached_path(entry)).is_file()))
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    load("zoo:t_order")
    assert seen and all(path == str(cached_path(entry)) and pinned for path, pinned in seen)


def test_a_cached_file_that_changed_since_download_is_refused(server, add_entry, moco_bytes, no_torch_load):
    base, files = server
    files.content["/moco.pth.tar"] = moco_bytes
    entry = add_entry("t_pin", f"{base}/moco.pth.tar")  # no published checksum: the pin guards it
    path = fetch("t_pin", progress=False)
    path.write_bytes(_flip(moco_bytes, 1000))
    with pytest.raises(CheckpointError, match="recorded when it was first downloaded"):
        load("zoo:t_pin")
    assert not path.exists() and path.with_name(path.name + ".bad").exists()
    assert no_torch_load == []
    files.content["/moco.pth.tar"] = _flip(moco_bytes, 2000)  # the publisher's file changed too
    with pytest.raises(CheckpointError, match="recorded when it was first downloaded"):
        fetch("t_pin", progress=False)
    assert not cached_path(entry).exists()


def test_404_names_the_url(server, add_entry):
    base, _ = server
    add_entry("t_404", f"{base}/missing.pth")
    with pytest.raises(CheckpointError, match=r"missing\.pth answered HTTP 404"):
        fetch("t_404", progress=False)


def test_a_second_url_is_tried_after_a_404(server, add_entry, moco_bytes):
    base, files = server
    files.content["/mirror/moco.pth.tar"] = moco_bytes
    entry = add_entry("t_mirror", (f"{base}/gone/moco.pth.tar", f"{base}/mirror/moco.pth.tar"),
                                 sha256=sha256(moco_bytes))
    assert fetch("t_mirror", progress=False).read_bytes() == moco_bytes
    assert cached_path(entry).name == "moco.pth.tar"


def test_redirects_are_followed_and_resumed(server, add_entry, moco_bytes):
    base, files = server
    files.content["/real/moco.pth.tar"] = moco_bytes
    files.redirects["/moco.pth.tar"] = f"{base}/real/moco.pth.tar"
    files.cut_once["/real/moco.pth.tar"] = 70_000
    add_entry("t_redirect", f"{base}/moco.pth.tar", sha256=sha256(moco_bytes))
    with pytest.raises(CheckpointError, match="stopped after 70000 bytes"):
        fetch("t_redirect", progress=False)
    assert fetch("t_redirect", progress=False).read_bytes() == moco_bytes
    assert files.requests[-2:] == [("/moco.pth.tar", "bytes=70000-"), ("/real/moco.pth.tar", "bytes=70000-")]


def test_offline_without_cache_says_what_to_fetch_and_where(add_entry, monkeypatch):
    entry = add_entry("t_offline", "https://example.invalid/ckpt/moco.pth.tar")
    monkeypatch.setenv(download.OFFLINE_ENV, "1")
    with pytest.raises(CheckpointError) as err:
        fetch("t_offline", progress=False)
    message = str(err.value)
    assert "https://example.invalid/ckpt/moco.pth.tar" in message and str(cached_path(entry)) in message


def test_unreachable_server_without_cache_says_what_to_fetch_and_where(server, add_entry):
    base, _ = server
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/moco.pth.tar"
    entry = add_entry("t_unreachable", url)
    with pytest.raises(CheckpointError, match="could not be reached") as err:
        fetch("t_unreachable", progress=False)
    assert url in str(err.value) and str(cached_path(entry)) in str(err.value)


def test_offline_with_cache_needs_no_server(server, add_entry, moco_bytes, monkeypatch):
    base, files = server
    files.content["/moco.pth.tar"] = moco_bytes
    add_entry("t_cached", f"{base}/moco.pth.tar", sha256=sha256(moco_bytes))
    path = fetch("t_cached", progress=False)
    files.content.clear()
    monkeypatch.setenv(download.OFFLINE_ENV, "1")
    assert load("zoo:t_cached").meta["sha256"] == sha256(moco_bytes)
    assert fetch("t_cached", progress=False) == path


def test_a_file_put_there_by_hand_is_checked_and_used(add_entry, moco_bytes, monkeypatch):
    entry = add_entry("t_by_hand", "https://example.invalid/moco.pth.tar", sha256=sha256(moco_bytes))
    monkeypatch.setenv(download.OFFLINE_ENV, "1")
    dest = cached_path(entry)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(moco_bytes)
    assert fetch("t_by_hand", progress=False) == dest and pin_path(dest).is_file()


def test_manual_entries_explain_the_conversion(add_entry):
    entry = add_entry("t_manual", "https://example.invalid/ResNet50_1x.zip", filename="resnet50-1x.pth",
                                 manual="convert it with the converter")
    with pytest.raises(CheckpointError, match="convert it with the converter") as err:
        fetch("t_manual", progress=False)
    assert str(cached_path(entry)) in str(err.value)


def test_unknown_names_list_the_zoo():
    with pytest.raises(CheckpointError, match="not in the zoo; known names: .*mocov2_r50_800ep"):
        fetch("no_such_checkpoint")


def test_an_index_file_adds_entries(server, write_index, monkeypatch, moco_bytes):
    base, files = server
    files.content["/moco.pth.tar"] = moco_bytes
    index = write_index([{
        "name": "t_indexed", "method": "MoCo v2", "arch": "resnet18", "width": 0.25, "epochs": 1,
        "urls": [f"{base}/moco.pth.tar"], "url_source": "test", "layout": "moco", "input_normalization": "imagenet",
        "license": "test", "sha256": sha256(moco_bytes),
        "published": [{"task": "knn", "dataset": "digits", "metric": "top1@k20", "value": 50.0, "source": "test"}],
    }])
    monkeypatch.setenv(INDEX_ENV, index)
    assert fetch("t_indexed", progress=False).read_bytes() == moco_bytes


@pytest.mark.parametrize("item", [{"name": "../escape", "urls": ["http://x/y"]}, {"name": "x"},
                                  {"name": "x", "urls": ["http://x/y"], "colour": "red"}])
def test_a_bad_index_is_one_clear_error(write_index, monkeypatch, item):
    monkeypatch.setenv(INDEX_ENV, write_index([item]))
    with pytest.raises(CheckpointError, match="SIAMBENCH_ZOO_INDEX"):
        fetch("x")
