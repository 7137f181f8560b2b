"""Training: ``data`` (COCO person sets, augmentation, the ``tf.data`` pipeline) and ``train`` (losses, the
two-stage schedule, checkpoints and snapshots)."""
