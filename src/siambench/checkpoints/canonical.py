"""``load``: any supported checkpoint → the canonical backbone every evaluation builds on.

:func:`examine` reads the file, detects (or is told) its format, extracts
the backbone, infers the architecture from the shapes and audits every key;
it reports problems instead of raising so that ``ckpt inspect`` can show
them. :func:`load` is the same, but refuses anything that would not load
completely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import CheckpointError
from ..models.resnet import PADDINGS, ResNet, ResNetSpec
from .audit import Audit, audit, describe, expected_shapes, infer_spec, summarize
from .formats import Extracted, Format, detect_format, get_format
from .source import Source, read_source


@dataclass
class CanonicalBackbone:
    """A torchvision ResNet state dict (no ``fc``, CPU tensors), its architecture, and where it came from."""

    state_dict: dict[str, torch.Tensor]
    spec: ResNetSpec
    meta: dict

    @property
    def input_normalization(self) -> str:
        """How the encoder's input was scaled in training: ``imagenet`` (mean/std) or ``none`` (raw RGB in [0, 1])."""
        return self.meta.get("input_normalization", "imagenet")

    @property
    def input_stats(self) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """``(mean, std)`` of RGB in [0, 1] that every stage normalises this encoder's input with.

        ImageNet's for almost every checkpoint; ``(0, 1)`` for the SimCLR v1
        conversions, which were trained on raw [0, 1] input.
        """
        if self.input_normalization == "none":
            return (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD

        return IMAGENET_MEAN, IMAGENET_STD

    def build_model(self, **kwargs) -> ResNet:
        """The ResNet of :attr:`spec` holding these weights; ``kwargs`` go to :class:`ResNet` (``num_classes``).

        Built on the meta device and filled by assignment (copies of the
        tensors), so no time goes into an initialisation that is overwritten.
        Loading is strict: every backbone tensor must be taken.
        """
        kwargs.pop("zero_init_residual", None)
        with torch.device("meta"):
            model = ResNet(self.spec, **kwargs)
        result = model.load_state_dict({k: v.clone() for k, v in self.state_dict.items()}, strict=False, assign=True)
        missing = [k for k in result.missing_keys if not k.startswith("fc.")]
        if missing or result.unexpected_keys:
            raise CheckpointError(
                f"the backbone does not fit a {describe(self.spec)}: missing {missing[:5]}, "
                f"unexpected {result.unexpected_keys[:5]}."
            )
        if result.missing_keys:
            model.fc = torch.nn.Linear(model.num_features, model.fc.out_features)
        return model


@dataclass
class Examination:
    """Everything ``ckpt inspect`` shows: the source, the format, the architecture and the audit."""

    source: Source
    format: Format
    extracted: Extracted | None = None
    spec: ResNetSpec | None = None
    audit: Audit | None = None
    problems: list[str] = field(default_factory=list)
    nonfinite: list[str] = field(default_factory=list)  # accepted with allow_nonfinite; recorded in the metadata

    @property
    def ok(self) -> bool:
        return not self.problems

    def backbone(self) -> CanonicalBackbone:
        if self.problems:
            raise CheckpointError(" ".join(self.problems))
        ex, spec = self.extracted, self.spec
        state_dict = {}
        for key in expected_shapes(spec):
            value = ex.tensors.get(key)
            if value is None:  # a num_batches_tracked counter: unused by BN in eval mode and with momentum set
                value = torch.zeros((), dtype=torch.long)
            elif value.is_floating_point() and value.dtype != torch.float32:
                value = value.float()
            state_dict[key] = value
        return CanonicalBackbone(state_dict, spec, self.meta())

    def meta(self) -> dict:
        src, ex = self.source, self.extracted
        meta = {
            "source_format": self.format.name,
            "source_path": str(src.path),
            "container": src.container,
            "sha256": src.sha256,
        }
        if self.spec is not None:
            meta.update(self.spec.to_dict())
            meta["depth"] = int(self.spec.arch.removeprefix("resnet"))
        if ex is not None:
            meta["prefix"] = ex.prefix
            meta["input_normalization"] = ex.flags.get("input_normalization", "imagenet")
            meta.update({k: v for k, v in ex.flags.items() if k != "input_normalization"})
            meta["dropped"] = dict(ex.dropped)
            meta["ignored_entries"] = list(ex.ignored)
            meta["notes"] = list(ex.notes)
        if self.audit is not None:
            meta["num_tensors"] = self.audit.found
            meta["expected_tensors"] = self.audit.expected
            meta["filled_num_batches_tracked"] = len(self.audit.filled)
        if src.standins:
            meta["standins"] = list(src.standins)
        if self.nonfinite:
            meta["allow_nonfinite"] = True
            meta["nonfinite_tensors"] = list(self.nonfinite)
        if src.container == "siambench-backbone":
            meta["source_meta"] = {k: v for k, v in src.metadata.items() if k != "config"}
        return meta

    def report(self) -> dict:
        """A JSON-able summary (``ckpt inspect --json``)."""
        out = self.meta()
        out["format_summary"] = self.format.summary
        out["ok"] = self.ok
        if self.audit is not None:
            out["missing"] = list(self.audit.missing)
            out["misshapen"] = [{"key": k, "shape": list(g), "expected": list(w)} for k, g, w in self.audit.misshapen]
            out["unexpected"] = list(self.audit.unexpected)
        elif self.extracted is not None and self.extracted.unexpected:
            out["unexpected"] = list(self.extracted.unexpected)
        out["problems"] = list(self.problems)
        return out


def examine(path: str | Path, format: str | None = None, prefix: str | None = None,
            allow_nonfinite: bool = False) -> Examination:
    """Read and audit a checkpoint; problems are collected, unreadable files raise :class:`CheckpointError`.

    Backbone tensors must be floating point and finite: integer "weights" or NaN/inf would load into a
    network that computes nothing meaningful. ``allow_nonfinite`` accepts NaN/inf, and the metadata says so.
    """
    source = read_source(path)
    fmt = get_format(format) if format else detect_format(source)
    where = f"{source.path} ({fmt.name})"
    result = Examination(source, fmt)
    try:
        result.extracted = ex = fmt.extract(source, prefix)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise CheckpointError(
            f"{source.path} does not have the layout of the {fmt.name!r} format ({fmt.summary}): "
            f"{type(exc).__name__}: {exc}."
        ) from None
    if prefix is not None:
        # The user named the backbone: other trunks in the file (an EMA copy, a teacher) are set aside and listed.
        for key in ex.unexpected:
            ex.dropped[f"other ({key.split('.')[0].split('/')[0]})"] += 1
        ex.unexpected = []
    if not ex.tensors:
        seen = ", ".join(f"{k} ({n})" for k, n in ex.outside.most_common(6)) or "nothing"
        result.problems.append(
            f"{where}: no tensors under the prefix {ex.prefix!r}; the file's keys start with {seen}. "
            f"Pass --prefix P (and --format NAME) to name where the backbone is."
        )
        return result
    if ex.padding not in PADDINGS:
        raise CheckpointError(
            f"{where}: the file's metadata declares padding {ex.padding!r}; expected one of {', '.join(PADDINGS)}."
        )
    try:
        result.spec = infer_spec(ex.tensors, ex.padding, where)
    except CheckpointError as exc:
        result.problems.append(str(exc))
        return result
    result.audit = audit(ex.tensors, result.spec, ex.unexpected)
    problem = result.audit.problem(where)
    if problem:
        result.problems.append(problem)
    _check_values(result, where, allow_nonfinite)
    if ex.declared and all(v is not None for v in ex.declared.values()):
        try:
            declared = ResNetSpec(ex.declared["arch"], float(ex.declared["width"]), ex.declared["stem"], ex.padding)
        except (TypeError, ValueError) as exc:
            result.problems.append(f"{where}: the architecture the file declares is not valid ({exc}).")
            return result
        if declared != result.spec:
            result.problems.append(
                f"{where}: the file declares a {describe(declared)} but its tensors are a {describe(result.spec)}."
            )
    return result


def _check_values(result: Examination, where: str, allow_nonfinite: bool) -> None:
    wanted = expected_shapes(result.spec)
    tensors = {k: v for k, v in result.extracted.tensors.items() if k in wanted and not k.endswith("num_batches_tracked")}
    integer = [f"{k} ({str(v.dtype).removeprefix('torch.')})" for k, v in tensors.items() if not v.is_floating_point()]
    if integer:
        result.problems.append(
            f"{where}: {len(integer)} backbone tensors are not floating point ({summarize(integer, limit=4)}); "
            f"weights and BatchNorm statistics are floats, so this is not a trained network."
        )
    nonfinite = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if nonfinite and not allow_nonfinite:
        result.problems.append(
            f"{where}: {len(nonfinite)} backbone tensors hold NaN or infinite values ({summarize(nonfinite, limit=6)}); "
            f"a network with them computes nothing meaningful. Pass --allow-nonfinite to read it anyway (the "
            f"metadata records it)."
        )
    elif nonfinite:
        result.nonfinite = nonfinite


def load(path: str | Path, format: str | None = None, prefix: str | None = None,
         allow_nonfinite: bool = False) -> CanonicalBackbone:
    """The canonical backbone of any supported checkpoint (a file or a siambench run folder).

    ``format`` skips detection (a name from ``siambench ckpt inspect``'s list);
    ``prefix`` names the key prefix the backbone sits under. Raises
    :class:`CheckpointError` unless every backbone tensor is found with the
    right shape and nothing that looks like backbone weights is left over.
    """
    return examine(path, format, prefix, allow_nonfinite).backbone()
