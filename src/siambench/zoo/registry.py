"""The zoo: published ResNet checkpoints, one registry entry per file.

Each :class:`ZooEntry` says where the file is published, how to check it,
which layout siambench reads it as, and what its authors reported for it,
every number with the README line or the paper table it comes from. URLs,
hashes and numbers are copied from the official repositories (commits named
in the sources); what a publisher does not state is left out and said so in
the entry's notes, never filled in.

A publisher's checksum is verified where one is given (a sha256, the sha256
prefix that torchvision's file names carry, or the md5 prefix of MoCo's
README). Every file's sha256 is also pinned on first download, in a file
beside it in the cache, and checked on every later use.

``$SIAMBENCH_ZOO_INDEX`` names a JSON file of further entries (a list of
objects with the fields of :class:`ZooEntry`), for a lab's own checkpoints
or a mirror; they are checked like the built-in ones.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlparse

from ..errors import CheckpointError

INDEX_ENV = "SIAMBENCH_ZOO_INDEX"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # also a folder name in the cache


@dataclass(frozen=True)
class Published:
    """One number the authors reported, in the terms of siambench's records.

    ``task``/``dataset``/``metric`` are the names a siambench record uses
    (``linear``/``imagenet``/``top1``, ``detection``/``voc0712``/``AP50``), so
    a record can be set beside it.
    """

    task: str
    dataset: str
    metric: str
    value: float
    source: str


@dataclass(frozen=True)
class ZooEntry:
    name: str
    method: str
    arch: str
    width: float
    epochs: int | None
    urls: tuple[str, ...]
    url_source: str  # where the download link is published
    layout: str  # the name in checkpoints.formats.FORMATS that detection gives
    input_normalization: str  # "imagenet" (mean/std) or "none" (raw RGB in [0, 1])
    license: str
    published: tuple[Published, ...] = ()
    transfer_row: str | None = None  # a row of report.transfer.PUBLISHED measured on this checkpoint
    sha256: str | None = None
    sha256_prefix: str | None = None
    md5_prefix: str | None = None
    size: int | None = None  # bytes, where the publisher states them exactly
    approx_size: str | None = None  # as the publisher writes it ("570 MB")
    filename: str | None = None  # default: the URL's last part
    manual: str | None = None  # the file is made by hand (a conversion): how
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def file_name(self) -> str:
        return self.filename or Path(urlparse(self.urls[0]).path).name

    @property
    def publisher_checksum(self) -> str:
        if self.sha256:
            return f"sha256 {self.sha256}"
        if self.sha256_prefix:
            return f"sha256 starting {self.sha256_prefix}"
        if self.md5_prefix:
            return f"md5 starting {self.md5_prefix}"
        return "none published; sha256 recorded at first download"

    def linear_top1(self) -> Published | None:
        return next((p for p in self.published if (p.task, p.dataset, p.metric) == ("linear", "imagenet", "top1")),
                    None)


ZOO: dict[str, ZooEntry] = {}


def register(entry: ZooEntry) -> ZooEntry:
    ZOO[entry.name] = entry
    return entry


def entries() -> dict[str, ZooEntry]:
    """The built-in entries, plus those of ``$SIAMBENCH_ZOO_INDEX`` if it is set."""
    index = os.environ.get(INDEX_ENV)
    if not index:
        return dict(ZOO)
    return {**ZOO, **{e.name: e for e in load_index(index)}}


def get_entry(name: str) -> ZooEntry:
    found = entries()
    if name not in found:
        raise CheckpointError(
            f"zoo:{name} is not in the zoo; known names: {', '.join(sorted(found))} (siambench zoo list)."
        )
    return found[name]


def load_index(path: str | Path) -> list[ZooEntry]:
    """Entries from a JSON index (a list of objects with :class:`ZooEntry`'s fields)."""
    path = Path(path)
    try:
        items = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"${INDEX_ENV}={path} is not a readable JSON zoo index ({exc}).") from None
    names = {f.name for f in fields(ZooEntry)}
    out = []
    for item in items if isinstance(items, list) else [None]:
        if (not isinstance(item, dict) or not {"name", "urls"} <= set(item) or set(item) - names
                or not _NAME.match(str(item["name"]))):
            raise CheckpointError(
                f"${INDEX_ENV}={path}: expected a list of objects with the fields {', '.join(sorted(names))} "
                f"(name and urls required; a name of letters, digits, '_', '.', '-'), found {str(item)[:120]!r}."
            )
        item = dict(item)
        item["urls"] = tuple(item["urls"])
        item["published"] = tuple(Published(**p) for p in item.get("published", ()))
        item["notes"] = tuple(item.get("notes", ()))
        try:
            out.append(ZooEntry(**item))
        except TypeError as exc:
            raise CheckpointError(f"${INDEX_ENV}={path}: entry {item['name']!r} is incomplete ({exc}).") from None
    return out


# -- sources ---------------------------------------------------------------------------------------------------------
# Each names the repository, the commit read and the file; entries add the line.

_MOCO = "github.com/facebookresearch/moco @132aea9 README.md"
_MOCO_DET = "github.com/facebookresearch/moco @132aea9 detection/README.md"
_MOCOV3 = "github.com/facebookresearch/moco-v3 @c349e6e CONFIG.md"
_SIMSIAM = "github.com/facebookresearch/simsiam @a7bc177 README.md"
_SWAV = "github.com/facebookresearch/swav @06b1b7c README.md"
_DINO = "github.com/facebookresearch/dino @7c446df README.md"
_BARLOW = "github.com/facebookresearch/barlowtwins @8e8d284 README.md"
_BYOL = "github.com/google-deepmind/deepmind-research @f5de0ed byol/README.md"
_BYOL_PAPER = "BYOL paper (Grill et al. 2020, arXiv 2006.07733)"
_SIMCLR = "github.com/google-research/simclr @383d414 README.md"
_SIMCLR_CONVERT = "github.com/tonylins/simclr-converter @139d3cb README.md"
_TV = "torchvision 0.29 torchvision/models/resnet.py, ResNet50_Weights.IMAGENET1K_V1"

_CC_BY_NC = "CC BY-NC 4.0 (non-commercial)"
_MOCO_DET_NOTE = ("VOC07+12 detection: Faster R-CNN R50-C4, 24k iterations, mean of 5 trials "
                  "(detection/README.md line 61)")


def _voc(ap50: float, ap: float, ap75: float, source: str) -> tuple[Published, ...]:
    values = (("AP50", ap50), ("AP", ap), ("AP75", ap75))
    return tuple(Published("detection", "voc0712", metric, value, source) for metric, value in values)


def _linear(value: float, source: str) -> Published:
    return Published("linear", "imagenet", "top1", value, source)


register(ZooEntry(
    "byol_r50_1000ep", "BYOL", "resnet50", 1.0, 1000,
    ("https://storage.googleapis.com/deepmind-byol/checkpoints/pretrain_res50x1.pkl",),
    f"{_BYOL} line 72", "byol-jax", "imagenet",
    f"{_CC_BY_NC} for the weights, code Apache 2.0 ({_BYOL} lines 208-212)",
    published=(
        _linear(74.4, f"{_BYOL} line 72 ('should evaluate to ~74.4% top-1'); the paper's Table 1 gives 74.3"),
        Published("semisup-1pct", "imagenet", "top1", 53.2, f"{_BYOL_PAPER}, Table 2 (as in PROTOCOLS.md C.2)"),
        Published("semisup-10pct", "imagenet", "top1", 68.8, f"{_BYOL_PAPER}, Table 2 (as in PROTOCOLS.md C.2)"),
    ),
    transfer_row="BYOL",
    approx_size="570 MB",
    notes=("the file holds the whole training state (online and target networks, optimiser); siambench reads the "
           "online encoder, with TF 'SAME' padding",
           "epochs: the paper's main 1000-epoch run (PROTOCOLS.md A.4); the README does not restate it",
           "no checksum is published; VOC detection is left out: the paper's two descriptions of its detection "
           "protocol disagree (PROTOCOLS.md E.4)"),
))

register(ZooEntry(
    "simsiam_r50_100ep_bs256", "SimSiam", "resnet50", 1.0, 100,
    ("https://dl.fbaipublicfiles.com/simsiam/models/100ep-256bs/pretrain/checkpoint_0099.pth.tar",),
    f"{_SIMSIAM} line 79", "simsiam", "imagenet", f"{_CC_BY_NC} ({_SIMSIAM} line 96)",
    published=(_linear(68.3, f"{_SIMSIAM} line 83 (batch 256, LARS linear probe)"),),
    notes=("no checksum or size is published",),
))

register(ZooEntry(
    "simsiam_r50_100ep", "SimSiam", "resnet50", 1.0, 100,
    ("https://dl.fbaipublicfiles.com/simsiam/models/100ep/pretrain/checkpoint_0099.pth.tar",),
    f"{_SIMSIAM} line 70", "simsiam", "imagenet", f"{_CC_BY_NC} ({_SIMSIAM} line 96)",
    published=(_linear(68.1, f"{_SIMSIAM} line 74 (batch 512, LARS linear probe)"),),
    notes=("no checksum or size is published",),
))

register(ZooEntry(
    "mocov2_r50_800ep", "MoCo v2", "resnet50", 1.0, 800,
    ("https://dl.fbaipublicfiles.com/moco/moco_checkpoints/moco_v2_800ep/moco_v2_800ep_pretrain.pth.tar",),
    f"{_MOCO} line 129", "moco", "imagenet", f"{_CC_BY_NC} ({_MOCO} line 142)",
    published=(_linear(71.1, f"{_MOCO} line 128"), *_voc(82.5, 57.4, 64.0, f"{_MOCO_DET} lines 54-57")),
    md5_prefix="a04e12f8",
    notes=(f"md5 prefix from {_MOCO} line 130", _MOCO_DET_NOTE),
))

register(ZooEntry(
    "mocov2_r50_200ep", "MoCo v2", "resnet50", 1.0, 200,
    ("https://dl.fbaipublicfiles.com/moco/moco_checkpoints/moco_v2_200ep/moco_v2_200ep_pretrain.pth.tar",),
    f"{_MOCO} line 120", "moco", "imagenet", f"{_CC_BY_NC} ({_MOCO} line 142)",
    published=(_linear(67.7, f"{_MOCO} line 119"), *_voc(82.4, 57.0, 63.6, f"{_MOCO_DET} lines 48-51")),
    md5_prefix="59fd9945",
    notes=(f"md5 prefix from {_MOCO} line 121", _MOCO_DET_NOTE),
))

register(ZooEntry(
    "mocov1_r50_200ep", "MoCo v1", "resnet50", 1.0, 200,
    ("https://dl.fbaipublicfiles.com/moco/moco_checkpoints/moco_v1_200ep/moco_v1_200ep_pretrain.pth.tar",),
    f"{_MOCO} line 111", "moco", "imagenet", f"{_CC_BY_NC} ({_MOCO} line 142)",
    published=(_linear(60.6, f"{_MOCO} line 110"), *_voc(81.5, 55.9, 62.6, f"{_MOCO_DET} lines 42-45")),
    md5_prefix="b251726a",
    notes=(f"md5 prefix from {_MOCO} line 112", _MOCO_DET_NOTE),
))

register(ZooEntry(
    "mocov3_r50_1000ep", "MoCo v3", "resnet50", 1.0, 1000,
    ("https://dl.fbaipublicfiles.com/moco-v3/r-50-1000ep/r-50-1000ep.pth.tar",),
    f"{_MOCOV3} line 93", "mocov3", "imagenet", "CC BY-NC 4.0 (non-commercial; moco-v3 README.md, License)",
    published=(_linear(74.6, f"{_MOCOV3} line 92"),),
    notes=("no checksum or size is published",
           "README.md's 'Reference Setups' table gives 74.8 for 1000 epochs; CONFIG.md's model table, which "
           "links this file, gives 74.6"),
))

register(ZooEntry(
    "mocov3_r50_300ep", "MoCo v3", "resnet50", 1.0, 300,
    ("https://dl.fbaipublicfiles.com/moco-v3/r-50-300ep/r-50-300ep.pth.tar",),
    f"{_MOCOV3} line 86", "mocov3", "imagenet", "CC BY-NC 4.0 (non-commercial; moco-v3 README.md, License)",
    published=(_linear(72.8, f"{_MOCOV3} line 85"),),
    notes=("no checksum or size is published",),
))

register(ZooEntry(
    "swav_r50_800ep", "SwAV", "resnet50", 1.0, 800,
    ("https://dl.fbaipublicfiles.com/deepcluster/swav_800ep_pretrain.pth.tar",),
    f"{_SWAV} line 29", "swav", "imagenet", "CC BY-NC 4.0 (non-commercial; swav LICENSE)",
    published=(_linear(75.3, f"{_SWAV} line 29 (batch 4096, multi-crop 2x224 + 6x96)"),),
    notes=("no checksum or size is published; the same file is swav's torch.hub 'resnet50' (hubconf.py line 28)",),
))

register(ZooEntry(
    "swav_r50_400ep", "SwAV", "resnet50", 1.0, 400,
    ("https://dl.fbaipublicfiles.com/deepcluster/swav_400ep_pretrain.pth.tar",),
    f"{_SWAV} line 30", "swav", "imagenet", "CC BY-NC 4.0 (non-commercial; swav LICENSE)",
    published=(_linear(74.6, f"{_SWAV} line 30 (batch 4096, multi-crop 2x224 + 6x96)"),),
    notes=("no checksum or size is published",),
))

register(ZooEntry(
    "dino_r50", "DINO", "resnet50", 1.0, None,
    ("https://dl.fbaipublicfiles.com/dino/dino_resnet50_pretrain/dino_resnet50_pretrain.pth",),
    f"{_DINO} line 76", "torchvision", "imagenet", "Apache 2.0 (dino README.md line 400)",
    published=(
        _linear(75.3, f"{_DINO} line 75"),
        Published("knn", "imagenet", "top1@k20", 67.5, f"{_DINO} line 74 (k-NN column)"),
    ),
    notes=("the backbone-only file (no fc); the full checkpoint of the same run is "
           "dino_resnet50_pretrain_full_checkpoint.pth (README line 77, siambench format 'dino')",
           "epochs are not stated in the README (they are in the run's args.txt, README line 79, not read here)",
           "the README does not name k for its k-NN column; DINO's eval_knn default list holds 20, which "
           "siambench's kNN reports as top1@k20 (PROTOCOLS.md C.4)",
           "no checksum or size is published"),
))

register(ZooEntry(
    "barlowtwins_r50", "Barlow Twins", "resnet50", 1.0, 1000,
    ("https://dl.fbaipublicfiles.com/barlowtwins/ljng/resnet50.pth",),
    f"{_BARLOW} line 34", "torchvision", "imagenet", "MIT (barlowtwins LICENSE)",
    published=(_linear(73.5, f"{_BARLOW} line 32 (1000 epochs, batch 2048)"),),
    notes=("the backbone-only file (no fc); torch.hub's hubconf.py points at another path "
           "(ep1000_bs2048_lrw0.2_lrb0.0048_lambd0.0051/resnet50.pth), the README's link is used here",
           "no checksum or size is published"),
))

register(ZooEntry(
    "simclr_v1_r50_1x", "SimCLR v1", "resnet50", 1.0, None,
    ("https://storage.cloud.google.com/simclr-gcs/checkpoints/ResNet50_1x.zip",),
    f"{_SIMCLR} line 54", "simclr-v1", "none", "Apache 2.0 (simclr LICENSE; converter LICENSE)",
    published=(
        _linear(68.9, f"{_SIMCLR_CONVERT} line 31 (after conversion, without normalisation); the TensorFlow "
                      f"checkpoint's 69.1 is in {_SIMCLR} line 54"),
    ),
    filename="resnet50-1x.pth",
    manual=("the publisher ships a TensorFlow checkpoint (ResNet50_1x.zip), which siambench does not read. "
            "Unzip it and convert it with github.com/tonylins/simclr-converter: "
            "`python convert.py ResNet50_1x/model.ckpt-225206 resnet50-1x.pth` (needs TensorFlow)"),
    notes=("converted with tonylins/simclr-converter, as the SimCLR README recommends (line 175); the "
           "converted model expects un-normalised RGB input and its fc.bias is untrained (PROTOCOLS.md D)",
           "epochs are not stated in the README; no checksum is published; the converted file's sha256 is "
           "recorded the first time siambench reads it"),
))

register(ZooEntry(
    "supervised_r50_tv1", "supervised", "resnet50", 1.0, None,
    ("https://download.pytorch.org/models/resnet50-0676ba61.pth",),
    f"{_TV}, url field", "torchvision", "imagenet",
    "BSD-3-Clause (torchvision); no separate terms are stated for the weights",
    published=(_linear(76.13, f"{_TV}, meta _metrics ImageNet-1K acc@1 76.130 (the supervised classifier itself, "
                              "not a linear probe on frozen features)"),),
    sha256_prefix="0676ba61",
    approx_size="97.8 MB",
    notes=("the sha256 prefix is the file name's suffix (torch.hub's check_hash convention)",
           "epochs are not stated beside the weights (their meta links the training recipe only)",
           "the published top-1 is the trained classifier's, not a linear probe's"),
))
