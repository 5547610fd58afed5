"""Getting a zoo checkpoint onto disk: download once, resume, verify before use.

``zoo:NAME`` resolves here (see :mod:`siambench.checkpoints.locate`). The file
lives at ``$SIAMBENCH_CACHE/zoo/NAME/<file>``. A download goes to
``<file>.part`` and continues from where it stopped (an HTTP range request)
when run again; only a file whose checksums pass is renamed to its final
name, so nothing can load a file before it is verified. A file that fails
is moved to ``<file>.bad`` and never used. Its sha256 is pinned in
``<file>.sha256`` the first time it passes, and checked on every later use.

The transfer uses the standard library's ``urllib`` (the client torch.hub
uses), because ``torch.hub.download_url_to_file`` deletes a partial file
instead of resuming it. ``SIAMBENCH_OFFLINE=1`` forbids any download.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from tqdm.auto import tqdm

from .. import __version__
from ..engine.paths import cache_dir
from ..errors import CheckpointError
from .registry import ZooEntry, get_entry

OFFLINE_ENV = "SIAMBENCH_OFFLINE"
TIMEOUT_S = 60
CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class _Interrupted(Exception):
    """The transfer stopped part-way; the ``.part`` file keeps what arrived."""


def zoo_root() -> Path:
    return cache_dir("zoo")


def cached_path(entry: ZooEntry) -> Path:
    """Where the entry's file is kept (it may not be there yet)."""
    return zoo_root() / entry.name / entry.file_name


def is_cached(entry: ZooEntry) -> bool:
    return cached_path(entry).is_file()


def pin_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def fetch(name: str, progress: bool | None = None) -> Path:
    """The verified local file of zoo entry ``name``, downloaded first if it is not cached.

    ``progress``: None shows the bar on a terminal only.
    """
    entry = get_entry(name)
    dest = cached_path(entry)
    if dest.is_file():
        verify(entry, dest, dest)
        return dest
    if entry.manual:
        dest.parent.mkdir(parents=True, exist_ok=True)
        raise CheckpointError(
            f"zoo:{entry.name} is not in the cache and cannot be downloaded ready to use: {entry.manual}. "
            f"Published at {entry.urls[0]} ({entry.url_source}). Put the result at {dest}; its sha256 is "
            f"recorded the first time it is read."
        )
    if offline():
        raise CheckpointError(_fetch_by_hand(entry, dest, f"{OFFLINE_ENV} is set, so nothing is downloaded"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _lock(dest):
        if not dest.is_file():  # another process may have finished it while this one waited
            _download(entry, dest, progress)
            return dest
    verify(entry, dest, dest)
    return dest


def verify(entry: ZooEntry, path: Path, final: Path) -> str:
    """Check ``path`` against the publisher's checksum and the pinned sha256; returns the sha256.

    On a mismatch the file is moved to ``final``'s name plus ``.bad`` and
    :class:`CheckpointError` says what differs.
    """
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False) if entry.md5_prefix else None
    size = 0
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            sha.update(block)
            size += len(block)
            if md5 is not None:
                md5.update(block)
    digest = sha.hexdigest()
    pin = pin_path(final)
    pinned = pin.read_text().split()[0] if pin.is_file() and pin.read_text().strip() else None
    problem = None
    if entry.size is not None and size != entry.size:
        problem = f"it has {size} bytes, the publisher states {entry.size}"
    elif entry.sha256 and digest != entry.sha256.lower():
        problem = f"its sha256 is {digest}, the publisher gives {entry.sha256}"
    elif entry.sha256_prefix and not digest.startswith(entry.sha256_prefix.lower()):
        problem = f"its sha256 is {digest}, the publisher's starts with {entry.sha256_prefix}"
    elif md5 is not None and not md5.hexdigest().startswith(entry.md5_prefix.lower()):
        problem = f"its md5 is {md5.hexdigest()}, the publisher's starts with {entry.md5_prefix}"
    elif pinned and digest != pinned:
        problem = (f"its sha256 is {digest}, but {pinned} was recorded when it was first downloaded ({pin}); if the "
                   f"publisher replaced the file on purpose, delete {pin.name} and run again")
    if problem:
        bad = final.with_name(final.name + ".bad")
        os.replace(path, bad)
        raise CheckpointError(
            f"zoo:{entry.name}: the file from {entry.urls[0]} failed its check: {problem}. It was not loaded and "
            f"was moved to {bad}. Run the command again to download it afresh; if it fails again, the file at "
            f"the URL is not the one published ({entry.url_source})."
        )
    if not pinned:
        pin.write_text(f"{digest}  {final.name}\n")
    return digest


def _download(entry: ZooEntry, dest: Path, progress: bool | None) -> None:
    part = dest.with_name(dest.name + ".part")
    failures = []
    for url in entry.urls:
        try:
            _transfer(url, part, entry.name, progress)
        except HTTPError as err:
            failures.append(f"{url} answered HTTP {err.code} {err.reason}")
            continue
        except _Interrupted as err:
            raise CheckpointError(
                f"zoo:{entry.name}: the download from {url} stopped after {part.stat().st_size} bytes ({err}). "
                f"Run the command again to resume it from there ({part} keeps what arrived)."
            ) from None
        except (URLError, OSError) as err:
            failures.append(f"{url} could not be reached ({getattr(err, 'reason', err)})")
            continue
        verify(entry, part, dest)
        os.replace(part, dest)
        return
    if all("could not be reached" in f for f in failures):
        raise CheckpointError(_fetch_by_hand(entry, dest, "; ".join(failures)))
    raise CheckpointError(
        f"zoo:{entry.name} could not be downloaded: {'; '.join(failures)}. The link was published in "
        f"{entry.url_source}; if it moved, fetch the file by hand and put it at {dest}."
    )


def _transfer(url: str, part: Path, label: str, progress: bool | None, retried: bool = False) -> None:
    """Fetch ``url`` into ``part``, continuing after the bytes already there when the server allows it."""
    have = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": f"siambench/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urlopen(Request(url, headers=headers), timeout=TIMEOUT_S)
    except HTTPError as err:
        if err.code == 416 and have and not retried:  # the part is not a prefix the server can continue
            part.unlink()
            return _transfer(url, part, label, progress, retried=True)
        raise
    with response:
        start = 0
        if have and response.status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            start = int(match.group(1)) if match else -1
            if start != have:
                raise _Interrupted(f"the server resumed at byte {start}, not {have}")
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        with open(part, "ab" if start else "wb") as f, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024, desc=f"zoo:{label}",
            disable=None if progress is None else not progress, dynamic_ncols=True,
        ) as bar:
            try:
                while block := response.read(CHUNK):
                    f.write(block)
                    bar.update(len(block))
            except (http.client.HTTPException, OSError) as err:  # a dropped connection, a timeout, a full disk
                raise _Interrupted(f"{type(err).__name__}: {err}") from None
    if total is not None and part.stat().st_size != total:
        raise _Interrupted(f"{part.stat().st_size} of {total} bytes arrived")


def _fetch_by_hand(entry: ZooEntry, dest: Path, why: str) -> str:
    dest.parent.mkdir(parents=True, exist_ok=True)
    return (
        f"zoo:{entry.name} is not in the cache and cannot be downloaded: {why}. Fetch it by hand from "
        f"{entry.urls[0]} (e.g. `curl -L -o {dest} {entry.urls[0]}`) and put it at {dest}; it is checked "
        f"({entry.publisher_checksum}) before it is used."
    )


@contextlib.contextmanager
def _lock(dest: Path):
    """One download per file at a time, across processes (several torchrun ranks may ask at once)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock
        yield
        return
    with open(dest.with_name(dest.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
