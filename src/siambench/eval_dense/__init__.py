"""Dense transfer: detection (detectron2), semantic segmentation and depth."""
