"""The 12-dataset transfer benchmark: linear (frozen features) and fine-tuned."""
