import dataclasses

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from siambench.data import registry, shapes

CHANCE = 1 / len(shapes.CLASSES)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMBENCH_CACHE", str(tmp_path))
    return tmp_path / "shapes"


@pytest.fixture(scope="module")
def knn_splits():
    train = shapes.load_split("train", num_images=3000, cache=False, **shapes.CLASSIFICATION)
    test = shapes.load_split("test", num_images=1200, cache=False, **shapes.CLASSIFICATION)
    return train, test


@pytest.fixture(scope="module")
def crowded():
    return shapes.generate_scenes(60, 11, objects_per_image=(2, 4), scale_range=(0.16, 0.3))


def _mask_box(mask):
    ys, xs = np.nonzero(mask)
    return (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def _alone(scene, obj):
    """Where ``obj`` would be visible with nothing in front of it."""
    return shapes.scene_masks(dataclasses.replace(scene, objects=(obj,), main=0))[0] == 1


def test_same_seed_gives_identical_images_and_scenes():
    a, b = shapes.generate_scenes(24, 7), shapes.generate_scenes(24, 7)
    assert a == b
    assert shapes.render_scenes(a).tobytes() == shapes.render_scenes(b).tobytes()


def test_different_seed_or_split_differs():
    a, b = shapes.generate_scenes(24, 7), shapes.generate_scenes(24, 8)
    assert a != b
    assert not np.array_equal(shapes.render_scenes(a), shapes.render_scenes(b))
    assert len({shapes.split_seed(0, split) for split in shapes.SPLITS}) == 3


def test_render_scene_matches_batch_rendering():
    scenes = shapes.generate_scenes(40, 2)
    images = shapes.render_scenes(scenes)
    for scene, image in zip(scenes, images):
        assert np.array_equal(shapes.render_scene(scene)[0], image)


def test_cache_returns_what_a_fresh_generation_gives(cache, monkeypatch):
    first = shapes.load_split("val", num_images=36, seed=3)
    files = list(cache.glob("*.npz"))
    assert len(files) == 1 and not list(cache.glob("*.tmp"))

    fresh = shapes.load_split("val", num_images=36, seed=3, cache=False)
    monkeypatch.setattr(shapes, "_generate", lambda *a, **k: pytest.fail("cache was not used"))
    cached = shapes.load_split("val", num_images=36, seed=3)
    for other in (fresh, cached):
        assert np.array_equal(other.images, first.images)
        assert other.scenes == first.scenes
        assert other.targets == first.targets


def test_cache_key_covers_every_parameter(cache):
    shapes.load_split("val", num_images=12)
    shapes.load_split("val", num_images=12, seed=1)
    shapes.load_split("val", num_images=12, image_size=48)
    shapes.load_split("test", num_images=12)
    shapes.load_split("val", num_images=13)
    assert len(list(cache.glob("*.npz"))) == 5


def test_unreadable_cache_is_regenerated(cache):
    dataset = shapes.load_split("val", num_images=12)
    (path,) = cache.glob("*.npz")
    path.write_bytes(b"not an npz")
    assert np.array_equal(shapes.load_split("val", num_images=12).images, dataset.images)


def test_registered_and_built_through_the_entry():
    info = registry._REGISTRY["shapes"]
    assert info.embedded and info.splits == ("train", "val", "test")
    assert info.num_classes == len(shapes.CLASSES) >= 10
    assert (info.eval_size, info.eval_crop_fraction, info.test_split, info.val_split) == (64, 1.0, "test", "val")
    dataset = info.build("val", None, num_images=24, image_size=32, seed=5)
    assert isinstance(dataset, shapes.ShapesDataset)
    assert dataset.images.shape == (24, 32, 32, 3) and dataset.images.dtype == np.uint8
    assert dataset.classes == list(shapes.CLASSES) and len(dataset.scenes) == 24
    image, label = dataset[0]
    assert tuple(image.shape) == (3, 32, 32) and label == dataset.scenes[0].label


def test_classification_scenes_hold_several_objects_of_the_image_class(knn_splits):
    train, _ = knn_splits
    counts = [len(scene.objects) for scene in train.scenes]
    assert min(counts) >= 4 and max(counts) <= 6 and 4.5 < np.mean(counts) < 5.5
    for scene, image in zip(train.scenes[:200], train.images):
        assert {obj.label for obj in scene.objects} == {scene.label}
        assert len({obj.color for obj in scene.objects}) > 1
        assert all(len(set(obj.color)) == 1 and obj.color[0] >= 150 for obj in scene.objects)
        assert np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 0], image[..., 2])
        instance, _ = shapes.scene_masks(scene)
        for i, obj in enumerate(scene.objects):
            assert (instance == i + 1).sum() >= 0.7 * _alone(scene, obj).sum() - 2


def test_the_registry_builds_classification_scenes_and_dense_stages_keep_mixed_ones():
    built = registry._REGISTRY["shapes"].build("val", None, num_images=24)
    assert built.scenes == shapes.load_split("val", num_images=24, cache=False, **shapes.CLASSIFICATION).scenes
    mixed = shapes.generate_scenes(24, 3, objects_per_image=(2, 4))
    assert any(len({obj.label for obj in scene.objects}) > 1 for scene in mixed)
    assert any(len(set(obj.color)) > 1 for scene in mixed for obj in scene.objects)
    with pytest.raises(ValueError, match="style must be one of mixed, collection"):
        shapes.generate_scenes(2, 0, style="single")


def test_default_split_sizes():
    assert shapes.SPLIT_SIZES == {"train": 12000, "val": 2000, "test": 2000}


def test_labels_are_balanced():
    labels = [scene.label for scene in shapes.generate_scenes(600, 4)]
    counts = np.bincount(labels, minlength=len(shapes.CLASSES))
    assert len(shapes.CLASSES) >= 10
    assert counts.min() == counts.max() == 50


def test_masks_and_boxes_agree_with_the_pixels():
    for scene in shapes.generate_scenes(48, 9):
        image, instance = shapes.render_scene(scene)
        instance_again, semantic = shapes.scene_masks(scene)
        assert np.array_equal(instance, instance_again)
        (obj,) = scene.objects
        assert _mask_box(instance == 1) == obj.box
        assert np.all(semantic[instance == 1] == obj.label + 1)
        assert np.all(semantic[instance == 0] == 0)
        inside = image[instance == 1].astype(int)
        assert np.abs(np.median(inside, axis=0) - obj.color).max() <= 1


def test_occluded_objects_exclude_their_occluders(crowded):
    occluded = 0
    for scene in crowded:
        instance, semantic = shapes.scene_masks(scene)
        alone = [_alone(scene, obj) for obj in scene.objects]
        for i, obj in enumerate(scene.objects):
            assert obj.depth_order == i
            in_front = np.logical_or.reduce(alone[i + 1:] + [np.zeros_like(alone[i])])
            visible = instance == i + 1
            assert np.array_equal(visible, alone[i] & ~in_front)
            assert _mask_box(visible) == obj.box
            assert np.all(semantic[visible] == obj.label + 1)
            occluded += int(visible.sum() < alone[i].sum())
        assert scene.main == len(scene.objects) - 1
        assert np.array_equal(instance == len(scene.objects), alone[-1])
    assert occluded >= 10


def test_depth_is_smaller_on_nearer_objects(crowded):
    for scene in crowded:
        depth = shapes.scene_depth(scene)
        instance, _ = shapes.scene_masks(scene)
        assert depth.dtype == np.float32
        assert np.all(depth[instance == 0] == shapes.BACKGROUND_DEPTH)
        zs = [obj.z for obj in scene.objects]
        assert all(far > near for far, near in zip(zs, zs[1:]))
        assert max(zs) < shapes.BACKGROUND_DEPTH
        for i, obj in enumerate(scene.objects):
            assert np.allclose(depth[instance == i + 1], obj.z)


def test_render_at_another_size_rescales_the_scene():
    scene = shapes.generate_scenes(1, 0)[0]
    image, instance = shapes.render_scene(scene, image_size=128)
    assert image.shape == (128, 128, 3) and instance.shape == (128, 128)
    big = np.array(_mask_box(instance == 1))
    assert np.abs(big - 2 * np.array(scene.objects[0].box)).max() <= 2


def test_raw_pixel_knn_is_near_chance_measured_14_percent(knn_splits):
    """k-NN on raw pixels scored 0.141 against a chance level of 0.083."""
    train, test = knn_splits
    flat = lambda d: d.images.reshape(len(d), -1).astype(np.float32)  # noqa: E731
    knn = KNeighborsClassifier(n_neighbors=20, metric="cosine").fit(flat(train), train.targets)
    assert knn.score(flat(test), test.targets) < 2 * CHANCE


def test_colour_histogram_is_not_predictive_measured_11_percent(knn_splits):
    """k-NN on 512-bin colour histograms scored 0.108 against a chance level of 0.083."""

    def histogram(dataset):
        q = dataset.images.astype(np.int64) // 32
        codes = (q[..., 0] * 64 + q[..., 1] * 8 + q[..., 2]).reshape(len(dataset), -1)
        return np.stack([np.bincount(row, minlength=512) for row in codes]) / codes.shape[1]

    train, test = knn_splits
    knn = KNeighborsClassifier(n_neighbors=20).fit(histogram(train), train.targets)
    assert knn.score(histogram(test), test.targets) < 2 * CHANCE
