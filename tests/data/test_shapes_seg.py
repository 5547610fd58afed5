import numpy as np

from siambench.data import build_dataset, get_dataset_info
from siambench.data.shapes import CLASSES, load_split, scene_masks
from siambench.data.shapes_seg import SHAPES_SEG_SCALE


def test_registry_entry():
    shapes_seg = get_dataset_info("shapes_seg")
    assert shapes_seg.embedded and shapes_seg.num_classes == 13 and shapes_seg.val_split == "val"
    assert not shapes_seg.split_sizes  # generated data has nothing on disk for `data check` to count


def test_shapes_seg_masks_are_the_scenes_classes():
    ds = build_dataset("shapes_seg", "val", num_images=24)
    scenes = load_split("val", num_images=24, objects_per_image=(1, 2), scale_range=SHAPES_SEG_SCALE)
    assert len(ds) == 24 and ds.classes == ("background", *CLASSES)
    counts = set()
    for index in range(len(ds)):
        image, mask = ds[index]
        scene = scenes.scenes[index]
        np.testing.assert_array_equal(image.numpy(), scenes.load(index).numpy())
        instance, _ = scene_masks(scene)
        # Each visible object's pixels carry its class + 1; the rest is background 0.
        expected = np.zeros_like(instance)
        for k, obj in enumerate(scene.objects):
            expected[instance == k + 1] = obj.label + 1
        np.testing.assert_array_equal(mask.numpy(), expected)
        assert (mask == 0).any() and (mask > 0).any()
        counts.add(len(scene.objects))
    assert counts == {1, 2}
