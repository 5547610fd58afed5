"""The embedded ``shapes`` dataset: scenes of geometric shapes drawn by code.

Shapes come from twelve classes, none of them a rotated or scaled copy of
another, and every class template has the same area. Each object gets its own
random position, size, rotation and tone, so neither raw pixels nor intensity
statistics tell the classes apart well: the outline does.

A classification image (:data:`CLASSIFICATION`) shows four to six objects of
its class, each posed and toned on its own, in light grays over a dark shaded
background. Two random crops of it then share the class and little else,
which is what an augmentation-invariant encoder has to learn: crops that
land on different objects see different poses and tones, and nothing in the
background tells one image from another. Colour is left out on purpose:
BYOL's colour jitter (hue 0.1) keeps most of a hue, so a hue shared by both
views is the easiest thing for them to agree on, and on coloured scenes a
short BYOL run learned colour instead of shape (README, "What the embedded
run shows").

Detection, segmentation and depth use ``mixed`` scenes instead: a main
object among objects of any class, in colour on textured backgrounds.

Every image keeps its scene description (:class:`Scene`); :func:`render_scene`,
:func:`scene_masks` and :func:`scene_depth` derive the image, instance and
semantic masks and a depth map from it, so detection, segmentation and depth
targets always agree with the pixels.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..engine.paths import cache_dir
from .base import ArrayImageDataset
from .registry import DatasetInfo, register_dataset

CLASSES = (
    "circle", "ellipse", "semicircle", "crescent", "ring", "triangle",
    "square", "pentagon", "star", "cross", "heart", "arrow",
)
SPLITS = ("train", "val", "test")
SPLIT_SIZES = {"train": 12000, "val": 2000, "test": 2000}
BACKGROUND_KINDS = ("noise", "stripes", "checker")
BACKGROUND_DEPTH = 1.0
DEFAULT_SCALE_RANGE = (0.25, 0.42)
GENERATOR_VERSION = 2

# How a scene is composed (the module docstring says why): ``mixed`` for
# detection, segmentation and depth, ``collection`` for classification.
STYLES = {
    "mixed": {"same_class": False, "palette": "color"},
    "collection": {"same_class": True, "palette": "gray"},
}
# The ``shapes`` classification splits: four to six objects of one class.
CLASSIFICATION = {"style": "collection", "objects_per_image": (4, 6), "scale_range": (0.15, 0.24), "min_visible": 0.7}

_SUPERSAMPLE = 4
_NOISE_GRID = 6
_TEMPLATE_CANVAS = 512
_TEMPLATE_SPAN = 1.3
_COLOR_CANDIDATES = 32
_MIN_BACKGROUND_CONTRAST = 100.0
_MIN_OBJECT_CONTRAST = 60.0
_PLACEMENT_TRIES = 20
_RENDER_CHUNK = 32


@dataclasses.dataclass(frozen=True)
class Background:
    """A two-colour texture: ``kind`` picks the pattern, the rest shape it.

    ``period`` and the pattern coordinates are fractions of the image side,
    so a background renders the same at any size. ``seed`` fixes the smooth
    noise used by the ``noise`` pattern and by the shading of every pattern.
    """

    kind: str
    colors: tuple[tuple[int, int, int], tuple[int, int, int]]
    angle: float
    period: float
    phase: float
    seed: int


@dataclasses.dataclass(frozen=True)
class ShapeObject:
    """One shape in a scene, in pixel units of the scene's ``image_size``.

    ``scale`` is the square root of the shape's area in pixels (every class
    template has unit area); ``angle`` its rotation in radians about
    ``(cx, cy)``, the centroid. ``depth_order`` 0 is the farthest object,
    drawn first; ``z`` is its depth, smaller for nearer objects. ``box`` is
    ``(x0, y0, x1, y1)`` of the visible pixels after occlusion, with ``x1``
    and ``y1`` exclusive.
    """

    label: int
    cx: float
    cy: float
    scale: float
    angle: float
    color: tuple[int, int, int]
    depth_order: int
    z: float
    box: tuple[int, int, int, int]

    @property
    def name(self) -> str:
        return CLASSES[self.label]


@dataclasses.dataclass(frozen=True)
class Scene:
    """A background and objects listed far to near (``objects[i].depth_order == i``).

    The image's class is that of ``objects[main]``, the frontmost object,
    which nothing occludes.
    """

    image_size: int
    background: Background
    objects: tuple[ShapeObject, ...]
    main: int

    @property
    def label(self) -> int:
        return self.objects[self.main].label


# Templates -----------------------------------------------------------------


def _arc(radius=1.0, cx=0.0, start=0.0, stop=2 * math.pi, points=96, closed=True):
    t = np.linspace(start, stop, points, endpoint=not closed)
    return np.stack([cx + radius * np.cos(t), radius * np.sin(t)], axis=1)


def _regular(corners, inner=None):
    n = corners if inner is None else 2 * corners
    t = -math.pi / 2 + np.arange(n) * 2 * math.pi / n
    r = np.ones(n) if inner is None else np.where(np.arange(n) % 2 == 0, 1.0, inner)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def _heart():
    t = np.linspace(0, 2 * math.pi, 120, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return np.stack([x, y], axis=1) / 17


def _raw_template(name: str) -> list[tuple[np.ndarray, int]]:
    """Polygons with fill 1 (shape) or 0 (hole), drawn in order, within +-1.3."""
    w = 0.3
    shapes = {
        "circle": [(_arc(), 1)],
        "ellipse": [(_arc() * [1.0, 0.5], 1)],
        "semicircle": [(_arc(stop=math.pi, points=49, closed=False), 1)],
        "crescent": [(_arc(), 1), (_arc(radius=0.8, cx=0.45), 0)],
        "ring": [(_arc(), 1), (_arc(radius=0.55), 0)],
        "triangle": [(_regular(3), 1)],
        "square": [(_regular(4), 1)],
        "pentagon": [(_regular(5), 1)],
        "star": [(_regular(5, inner=0.42), 1)],
        "cross": [(np.array([(-w, -1), (w, -1), (w, -w), (1, -w), (1, w), (w, w),
                             (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w)]), 1)],
        "heart": [(_heart(), 1)],
        "arrow": [(np.array([(-1, -0.2), (0.15, -0.2), (0.15, -0.55), (1, 0),
                             (0.15, 0.55), (0.15, 0.2), (-1, 0.2)]), 1)],
    }
    return shapes[name]


@functools.lru_cache(maxsize=None)
def _template(label: int) -> tuple[tuple[tuple[np.ndarray, int], ...], float]:
    """Class ``label``'s polygons with unit area about their centroid, and their reach.

    Equal areas keep the object's share of the image, and so colour
    statistics, independent of the class. Area and centroid are measured on
    a raster so that holes count.
    """
    raw = _raw_template(CLASSES[label])
    pixel = 2 * _TEMPLATE_SPAN / _TEMPLATE_CANVAS
    canvas = Image.new("L", (_TEMPLATE_CANVAS, _TEMPLATE_CANVAS), 0)
    draw = ImageDraw.Draw(canvas)
    for poly, fill in raw:
        draw.polygon(((poly + _TEMPLATE_SPAN) / pixel - 0.5).ravel().tolist(), fill=255 * fill)
    ys, xs = np.nonzero(np.asarray(canvas))
    area = len(xs) * pixel**2
    centroid = (np.stack([xs.mean(), ys.mean()]) + 0.5) * pixel - _TEMPLATE_SPAN
    polys = tuple(((poly - centroid) / math.sqrt(area), fill) for poly, fill in raw)
    reach = max(float(np.linalg.norm(p, axis=1).max()) for p, fill in polys if fill)
    return polys, reach


# Rendering -----------------------------------------------------------------


def _coverage(label: int, cx: float, cy: float, scale: float, angle: float, size: int) -> tuple[np.ndarray, int, int]:
    """Anti-aliased coverage (uint8, 255 = inside) of one shape on the crop that holds it.

    Drawing at ``_SUPERSAMPLE`` times the size and box-averaging down gives
    smooth edges; drawing only the crop keeps it cheap.
    """
    polys, reach = _template(label)
    extent = reach * scale
    x0, y0 = max(math.floor(cx - extent) - 1, 0), max(math.floor(cy - extent) - 1, 0)
    x1, y1 = min(math.ceil(cx + extent) + 1, size), min(math.ceil(cy + extent) + 1, size)
    s = _SUPERSAMPLE
    canvas = Image.new("L", ((x1 - x0) * s, (y1 - y0) * s), 0)
    draw = ImageDraw.Draw(canvas)
    c, n = math.cos(angle), math.sin(angle)
    rotation = np.array([[c, n], [-n, c]])
    for poly, fill in polys:
        points = (poly @ rotation * scale + (cx - x0, cy - y0)) * s - 0.5
        draw.polygon(points.ravel().tolist(), fill=255 * fill)
    return np.asarray(canvas.reduce(s)), y0, x0


def _smooth_noise(grids: np.ndarray, size: int) -> np.ndarray:
    """Upsample ``(N, G, G)`` grids to ``(N, size, size)`` with smoothstep interpolation."""
    g = grids.shape[-1]
    s = (np.arange(size, dtype=np.float32) + 0.5) / size * (g - 1)
    i = np.minimum(np.floor(s), g - 2)
    f = s - i
    i = i.astype(int)
    f = f * f * (3 - 2 * f)
    rows = grids[:, i, :] * (1 - f)[:, None] + grids[:, i + 1, :] * f[:, None]
    return rows[:, :, i] * (1 - f) + rows[:, :, i + 1] * f


def _square_wave(u: np.ndarray, sharpness: float) -> np.ndarray:
    """A period-1 wave in [0, 1] whose edges take ``1 / (2 * sharpness)`` of a period."""
    return np.clip((np.abs(2 * (u - np.floor(u)) - 1) - 0.5) * sharpness + 0.5, 0, 1, dtype=u.dtype)


def _pattern(kind: str, params: np.ndarray, grids: np.ndarray, size: int) -> np.ndarray:
    """Blend weights in [0, 1] for backgrounds of one kind; ``params`` rows are (cos, sin, period, phase)."""
    if kind == "noise":
        texture = _smooth_noise(grids, size)
        low, high = texture.min(axis=(1, 2), keepdims=True), texture.max(axis=(1, 2), keepdims=True)
        return (texture - low) / np.maximum(high - low, np.float32(1e-6))
    cos, sin, period, phase = (params[:, j, None, None] for j in range(4))
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    x, y = coords[None, None, :], coords[None, :, None]
    u = (x * cos + y * sin) / period + phase
    if kind == "stripes":
        return _square_wave(u, np.float32(4))
    v = (y * cos - x * sin) / period + phase
    edge = np.maximum(period * (size / 2), np.float32(1))
    su, sv = _square_wave(u, edge), _square_wave(v, edge)
    return su + sv - 2 * su * sv


def _render_backgrounds(backgrounds: list[Background], size: int) -> np.ndarray:
    """``(N, size, size, 3)`` float32 backgrounds, computed a kind at a time.

    Only elementwise arithmetic touches the pixels, so a background renders
    to the same bytes alone or in a batch.
    """
    params = [(math.cos(b.angle), math.sin(b.angle), b.period, b.phase) for b in backgrounds]
    params = np.array(params, dtype=np.float32).reshape(-1, 4)
    kinds = np.array([BACKGROUND_KINDS.index(b.kind) for b in backgrounds], dtype=int)
    grid_shape = (2, _NOISE_GRID, _NOISE_GRID)
    grids = np.stack([np.random.default_rng(b.seed).random(grid_shape, dtype=np.float32) for b in backgrounds])
    t = np.empty((len(backgrounds), size, size), dtype=np.float32)
    for k, kind in enumerate(BACKGROUND_KINDS):
        idx = np.flatnonzero(kinds == k)
        if idx.size:
            t[idx] = _pattern(kind, params[idx], grids[idx, 0], size)
    shade = 0.8 + 0.4 * _smooth_noise(grids[:, 1], size)

    colors = np.array([b.colors for b in backgrounds], dtype=np.float32).reshape(-1, 2, 3, 1, 1)
    c0, c1 = colors[:, 0], colors[:, 1]
    image = shade[:, None] * c0
    image += (t * shade)[:, None] * (c1 - c0)
    np.minimum(image, 255, out=image)
    return np.ascontiguousarray(image.transpose(0, 2, 3, 1))


def _paint(image: np.ndarray, layers, scene: Scene) -> np.ndarray:
    """Composite the objects' coverages over a float background, far to near."""
    for (alpha, y0, x0), obj in zip(layers, scene.objects):
        h, w = alpha.shape
        a = alpha[..., None].astype(np.float32) / 255
        region = image[y0:y0 + h, x0:x0 + w]
        region += a * (np.array(obj.color, dtype=np.float32) - region)
    return np.rint(np.clip(image, 0, 255)).astype(np.uint8)


def _instance_mask(layers, size: int) -> np.ndarray:
    """Pixels at least half covered belong to the nearest object covering them."""
    mask = np.zeros((size, size), dtype=np.int32)
    for i, (alpha, y0, x0) in enumerate(layers):
        h, w = alpha.shape
        mask[y0:y0 + h, x0:x0 + w][alpha >= 128] = i + 1
    return mask


def _layers(scene: Scene, size: int | None):
    size = size or scene.image_size
    f = size / scene.image_size
    return size, [_coverage(o.label, o.cx * f, o.cy * f, o.scale * f, o.angle, size) for o in scene.objects]


def render_scene(scene: Scene, image_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The scene's ``(H, W, 3)`` uint8 image and ``(H, W)`` instance mask.

    The mask holds ``i + 1`` where object ``i`` is visible and 0 on the
    background. ``image_size`` defaults to the scene's own size; another
    size rescales the scene.
    """
    size, layers = _layers(scene, image_size)
    image = _paint(_render_backgrounds([scene.background], size)[0], layers, scene)
    return image, _instance_mask(layers, size)


def render_scenes(scenes: list[Scene], image_size: int | None = None) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 images of ``scenes``, identical to :func:`render_scene`'s."""
    size = image_size or (scenes[0].image_size if scenes else 64)
    return _render_all(scenes, [_layers(scene, size)[1] for scene in scenes], size)


def _render_all(scenes: list[Scene], layers: list, size: int) -> np.ndarray:
    images = np.empty((len(scenes), size, size, 3), dtype=np.uint8)
    for start in range(0, len(scenes), _RENDER_CHUNK):
        stop = start + _RENDER_CHUNK
        backgrounds = _render_backgrounds([s.background for s in scenes[start:stop]], size)
        for i, background in enumerate(backgrounds, start):
            images[i] = _paint(background, layers[i], scenes[i])
    return images


def scene_masks(scene: Scene, image_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Instance mask (object index + 1) and semantic mask (class index + 1); 0 is background."""
    size, layers = _layers(scene, image_size)
    instance = _instance_mask(layers, size)
    classes = np.array([0] + [obj.label + 1 for obj in scene.objects], dtype=np.int32)
    return instance, classes[instance]


def scene_depth(scene: Scene, image_size: int | None = None) -> np.ndarray:
    """Float32 depth map: each object's ``z`` where visible, ``BACKGROUND_DEPTH`` elsewhere."""
    instance, _ = scene_masks(scene, image_size)
    depths = np.array([BACKGROUND_DEPTH] + [obj.z for obj in scene.objects], dtype=np.float32)
    return depths[instance]


# Generation ----------------------------------------------------------------


def _random_background(rng: np.random.Generator, palette: str) -> Background:
    if palette == "gray":
        low = int(rng.integers(0, 40))
        return Background(kind="noise", colors=((low,) * 3, (low + 30,) * 3), angle=0.0, period=0.1, phase=0.0,
                          seed=int(rng.integers(2**31)))
    c0, c1 = rng.integers(0, 256, size=(2, 3)).tolist()
    return Background(
        kind=BACKGROUND_KINDS[int(rng.integers(len(BACKGROUND_KINDS)))],
        colors=(tuple(c0), tuple(c1)),
        angle=float(rng.uniform(0, math.pi)),
        period=float(rng.uniform(0.08, 0.3)),
        phase=float(rng.uniform(0, 1)),
        seed=int(rng.integers(2**31)),
    )


def _random_color(rng: np.random.Generator, background: Background, others: list,
                  palette: str) -> tuple[int, int, int]:
    """A colour that stands out from the background's colours and from the other objects.

    It depends on the background but never on the class. The ``gray``
    palette draws a light gray on its dark backgrounds.
    """
    if palette == "gray":
        return (int(rng.integers(150, 256)),) * 3
    candidates = rng.integers(0, 256, size=(_COLOR_CANDIDATES, 3)).astype(np.float64)
    c0, c1 = np.array(background.colors, dtype=np.float64)
    d = c1 - c0
    t = np.clip((candidates - c0) @ d / max(d @ d, 1e-9), 0, 1)
    score = np.linalg.norm(candidates - (c0 + t[:, None] * d), axis=1) / _MIN_BACKGROUND_CONTRAST
    for other in others:
        score = np.minimum(score, np.linalg.norm(candidates - other, axis=1) / _MIN_OBJECT_CONTRAST)
    good = np.flatnonzero(score >= 1)
    pick = good[0] if len(good) else int(np.argmax(score))
    return tuple(int(c) for c in candidates[pick])


def _random_pose(rng, label: int, size: int, scale_range) -> dict:
    """Scale, rotation and a centre that keeps the whole shape inside the image."""
    scale = float(rng.uniform(*scale_range)) * size
    angle = float(rng.uniform(0, 2 * math.pi))
    extent = _template(label)[1] * scale + 1
    lo, hi = extent, size - extent
    cx, cy = rng.uniform(lo, hi, size=2) if hi > lo else (size / 2, size / 2)
    return dict(label=label, cx=float(cx), cy=float(cy), scale=scale, angle=angle)


def _generate_scene(rng, label, size, objects_per_image, scale_range, min_visible, style):
    """A scene and its objects' coverages, far to near.

    The main object is placed first, in front; each further object goes
    behind those placed, so it never hides them and only its own visible
    share needs checking.
    """
    same_class, palette = STYLES[style]["same_class"], STYLES[style]["palette"]
    background = _random_background(rng, palette)
    count = int(rng.integers(objects_per_image[0], objects_per_image[1] + 1))
    if same_class:
        labels = [label] * count
    else:
        labels = [label] + [int(c) for c in rng.integers(len(CLASSES), size=count - 1)]
    placed, colors, layers = [], [], []
    covered = np.zeros((size, size), dtype=bool)
    for k, obj_label in enumerate(labels):
        for _ in range(_PLACEMENT_TRIES if k else 1):
            pose = _random_pose(rng, obj_label, size, scale_range)
            layer = _coverage(**pose, size=size)
            alpha, y0, x0 = layer
            inside = np.zeros_like(covered)
            inside[y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]] = alpha >= 128
            if k == 0 or (inside & ~covered).sum() >= min_visible * inside.sum():
                colors.append(_random_color(rng, background, colors, palette))
                placed.append(pose)
                layers.append(layer)
                covered |= inside
                break
    placed, colors, layers = placed[::-1], colors[::-1], layers[::-1]
    zs = np.sort(rng.uniform(0.2, 0.9, size=len(placed)))[::-1]
    boxes = _visible_boxes(_instance_mask(layers, size), len(placed))
    objects = tuple(
        ShapeObject(**pose, color=color, depth_order=i, z=float(z), box=box)
        for i, (pose, color, z, box) in enumerate(zip(placed, colors, zs, boxes))
    )
    return Scene(size, background, objects, main=len(objects) - 1), layers


def _visible_boxes(instance: np.ndarray, count: int) -> list[tuple[int, int, int, int]]:
    """``(x0, y0, x1, y1)``, exclusive ends, of each object's pixels in the instance mask."""
    boxes = []
    for i in range(count):
        ys, xs = np.nonzero(instance == i + 1)
        boxes.append((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(xs) else (0, 0, 0, 0))
    return boxes


def _generate(n, seed, image_size=64, objects_per_image=(1, 1), scale_range=DEFAULT_SCALE_RANGE, min_visible=0.5,
              style="mixed"):
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    lo, hi = objects_per_image
    if not 1 <= lo <= hi:
        raise ValueError(f"objects_per_image must be (min, max) with 1 <= min <= max, got {objects_per_image}")
    if image_size < 16:
        raise ValueError(f"image_size must be at least 16, got {image_size}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(CLASSES))
    return [
        _generate_scene(rng, int(label), image_size, objects_per_image, scale_range, min_visible, style)
        for label in labels
    ]


def generate_scenes(
    n: int,
    seed,
    *,
    image_size: int = 64,
    objects_per_image: tuple[int, int] = (1, 1),
    scale_range: tuple[float, float] = DEFAULT_SCALE_RANGE,
    min_visible: float = 0.5,
    style: str = "mixed",
) -> list[Scene]:
    """``n`` random scenes, a function of ``seed`` and the parameters alone.

    Main-object classes are balanced (each class ``n / 12`` times, in random
    order). ``objects_per_image = (min, max)`` draws the object count per
    scene; objects behind others keep at least ``min_visible`` of their area
    visible, and one that cannot is left out. ``scale_range`` bounds the
    square root of an object's area as a fraction of the image side.
    ``style`` is a key of :data:`STYLES`.
    """
    return [scene for scene, _ in _generate(n, seed, image_size, objects_per_image, scale_range, min_visible, style)]


# Dataset and cache ---------------------------------------------------------


class ShapesDataset(ArrayImageDataset):
    """A split of ``shapes``: images, main-object labels and the scene of every image."""

    def __init__(self, images: np.ndarray, scenes: list[Scene]):
        super().__init__(images, [scene.label for scene in scenes], list(CLASSES))
        self.scenes = scenes

    def describe(self, index: int) -> str:
        return f"sample {index} ({CLASSES[self.targets[index]]})"


def split_seed(seed: int, split: str) -> int:
    """Each split's own seed, so splits never share scenes and each can be rebuilt alone."""
    return int(np.random.SeedSequence([seed, SPLITS.index(split)]).generate_state(1)[0])


def _pack(images: np.ndarray, scenes: list[Scene]) -> dict[str, np.ndarray]:
    objects = [obj for scene in scenes for obj in scene.objects]
    backgrounds = [scene.background for scene in scenes]
    return {
        "images": images,
        "image_size": np.array([s.image_size for s in scenes], dtype=np.int32),
        "main": np.array([s.main for s in scenes], dtype=np.int32),
        "object_count": np.array([len(s.objects) for s in scenes], dtype=np.int32),
        "bg_kind": np.array([BACKGROUND_KINDS.index(b.kind) for b in backgrounds], dtype=np.int8),
        "bg_colors": np.array([b.colors for b in backgrounds], dtype=np.uint8).reshape(-1, 2, 3),
        "bg_params": np.array([(b.angle, b.period, b.phase) for b in backgrounds], dtype=np.float64).reshape(-1, 3),
        "bg_seed": np.array([b.seed for b in backgrounds], dtype=np.int64),
        "obj_label": np.array([o.label for o in objects], dtype=np.int16),
        "obj_pose": np.array([(o.cx, o.cy, o.scale, o.angle) for o in objects], dtype=np.float64).reshape(-1, 4),
        "obj_color": np.array([o.color for o in objects], dtype=np.uint8).reshape(-1, 3),
        "obj_z": np.array([o.z for o in objects], dtype=np.float64),
        "obj_box": np.array([o.box for o in objects], dtype=np.int32).reshape(-1, 4),
    }


def _unpack(arrays) -> tuple[np.ndarray, list[Scene]]:
    a = {key: arrays[key].tolist() for key in arrays.files if key != "images"}
    scenes, k = [], 0
    for i, count in enumerate(a["object_count"]):
        objects = tuple(
            ShapeObject(
                a["obj_label"][j], *a["obj_pose"][j], tuple(a["obj_color"][j]),
                depth_order=j - k, z=a["obj_z"][j], box=tuple(a["obj_box"][j]),
            )
            for j in range(k, k + count)
        )
        k += count
        colors = tuple(tuple(c) for c in a["bg_colors"][i])
        background = Background(BACKGROUND_KINDS[a["bg_kind"][i]], colors, *a["bg_params"][i], a["bg_seed"][i])
        scenes.append(Scene(a["image_size"][i], background, objects, a["main"][i]))
    return arrays["images"], scenes


def _save_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write to a temporary file and rename, so a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cache_path(split: str, params: dict) -> Path:
    """The cache file of one split, named by a hash of everything that shapes its content."""
    key = json.dumps({"version": GENERATOR_VERSION, "split": split, **params}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return cache_dir("shapes") / f"{split}-{digest}.npz"


def load_split(
    split: str,
    *,
    image_size: int = 64,
    num_images: int | None = None,
    seed: int = 0,
    objects_per_image: tuple[int, int] = (1, 1),
    scale_range: tuple[float, float] = DEFAULT_SCALE_RANGE,
    min_visible: float = 0.5,
    style: str = "mixed",
    cache: bool = True,
) -> ShapesDataset:
    """One split, read from the cache or generated, rendered and cached (parameters as :func:`generate_scenes`)."""
    if split not in SPLITS:
        raise ValueError(f"shapes has splits {', '.join(SPLITS)}, not {split!r}")
    params = dict(
        image_size=int(image_size),
        num_images=int(SPLIT_SIZES[split] if num_images is None else num_images),
        seed=int(seed),
        objects_per_image=[int(v) for v in objects_per_image],
        scale_range=[float(v) for v in scale_range],
        min_visible=float(min_visible),
        style=str(style),
    )
    path = cache_path(split, params) if cache else None
    if path is not None and path.exists():
        try:
            with np.load(path, allow_pickle=False) as arrays:
                return ShapesDataset(*_unpack(arrays))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            pass
    generated = _generate(
        params["num_images"], split_seed(params["seed"], split), params["image_size"],
        tuple(objects_per_image), tuple(scale_range), min_visible, style,
    )
    scenes = [scene for scene, _ in generated]
    images = _render_all(scenes, [layers for _, layers in generated], params["image_size"])
    if path is not None:
        _save_atomic(path, _pack(images, scenes))
    return ShapesDataset(images, scenes)


def build(split: str, root=None, *, image_size: int = 64, num_images: int | None = None, seed: int = 0):
    """Registry entry point, the :data:`CLASSIFICATION` scenes; ``root`` is unused because the data is generated."""
    return load_split(split, image_size=image_size, num_images=num_images, seed=seed, **CLASSIFICATION)


register_dataset(
    DatasetInfo(
        name="shapes",
        build=build,
        splits=SPLITS,
        num_classes=len(CLASSES),
        embedded=True,
        layout="embedded (generated by siambench)",
        prepare="nothing to prepare: generated on first use and cached under $SIAMBENCH_CACHE",
        description=(
            f"{len(CLASSES)} geometric shape classes, 4-6 objects of the image's class at random "
            "position, size, rotation and gray tone over a dark shaded background, 64x64 RGB; "
            "12,000 / 2,000 / 2,000 images; classes differ only in shape. Scene descriptions give "
            "boxes, masks and depth."
        ),
        eval_size=64,
        eval_crop_fraction=1.0,
        test_split="test",
        val_split="val",
    )
)
