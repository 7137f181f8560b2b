"""Training (paper sections 3.1, 3.2, 4.4): logistic loss over all cells + L1 box loss over non-crowd person
cells, Adam with a two-stage learning rate, checkpoints with exact resume, TensorBoard logs, tf.distribute."""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bbe_mobile.bundle import build_from_config, load_bundle, save_bundle
from bbe_mobile.data import AugmentConfig, CocoPersons, Sampler, training_dataset
from bbe_mobile.grouper import GrouperConfig
from bbe_mobile.model import ModelConfig, is_head_layer

STATE_FILE = "train_state.json"


@dataclass(frozen=True)
class TrainConfig:
    """Schedule and loss. ``steps1`` at ``lr1`` then ``steps2`` at ``lr2`` (paper: 185k at 1e-4, 80k at 1e-5);
    ASPP/decoder/heads use ``head_lr_mult`` times the rate. ``batch_size`` is global (all replicas)."""

    steps1: int = 4000
    steps2: int = 800
    lr1: float = 1e-4
    lr2: float = 1e-5
    head_lr_mult: float = 10.0
    batch_size: int = 8
    box_loss_weight: float = 1.0
    balance_instances: bool = False  # box loss: every person weighs the same (else every person cell)
    freeze_backbone_bn: bool = True
    checkpoint_every: int = 200
    log_every: int = 20
    seed: int = 0

    @property
    def total_steps(self) -> int:
        return self.steps1 + self.steps2


class TrainError(ValueError):
    """Training cannot start (bad data, incompatible checkpoint, bad options)."""


def bbe_losses(person_logits, box_offsets, person, offsets, weights):
    """Per-example losses (batch,): mean logistic loss over all cells, and L1 over the four offsets summed,
    the weighted mean over the example's non-crowd person cells (0 where it has none). ``weights`` are 1 per
    cell (paper) or 1 / instance cells (``balance_instances``: then the mean over people of their mean L1)."""
    import tensorflow as tf  # noqa: PLC0415

    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=person, logits=person_logits)
    semantic = tf.reduce_mean(bce, axis=[1, 2, 3])
    if box_offsets is None:
        return semantic, tf.zeros_like(semantic)
    l1 = tf.reduce_sum(tf.abs(box_offsets - offsets) * weights, axis=[1, 2, 3])
    return semantic, l1 / tf.maximum(tf.reduce_sum(weights, axis=[1, 2, 3]), 1.0)


def make_strategy(name: str):
    """``default`` (one device), ``mirrored`` (all local devices) or ``multiworker`` (TF_CONFIG cluster)."""
    import tensorflow as tf  # noqa: PLC0415

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
                  [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise TrainError(f"unknown strategy {name!r}: use default, mirrored or multiworker")


def split_logical_cpus(count: int) -> None:
    """Expose the CPU as ``count`` logical devices (must run before TensorFlow initialises its devices)."""
    import tensorflow as tf  # noqa: PLC0415

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)


def _check_state(out_dir: Path, state: dict) -> None:
    """Refuse to resume a run directory made with another architecture, crop or schedule."""
    path = out_dir / STATE_FILE
    if path.exists():
        previous = json.loads(path.read_text())
        for key in ("model", "crop"):
            if previous.get(key) != state.get(key):
                raise TrainError(f"{out_dir} holds a run with {key}={previous.get(key)}, not {state.get(key)}: "
                                 "use another --out or the same options")


def train(
    datasets: list[CocoPersons],
    out_dir: str | os.PathLike,
    model_config: ModelConfig = ModelConfig(),
    train_config: TrainConfig = TrainConfig(),
    augment: AugmentConfig = AugmentConfig(),
    input_size: int = 512,
    backbone_weights: str | None = None,
    init_model: str | None = None,
    strategy_name: str = "default",
    grouper: GrouperConfig = GrouperConfig(),
    name: str = "bbe",
    progress: bool = True,
    max_steps_this_run: int | None = None,
) -> dict:
    """Train (or resume training in ``out_dir``) and write the final bundle into ``out_dir``.

    ``max_steps_this_run`` stops early after that many steps (the run can be resumed). Returns a summary dict:
    steps done, final losses, images/s, wall time.
    """
    import keras  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415
    from tqdm import tqdm  # noqa: PLC0415

    model_config.validate()
    if not datasets or not any(len(d) for d in datasets):
        raise TrainError("no training images")
    for d in datasets:
        d.check_files()
    out = Path(out_dir)
    state = {"model": dataclasses.asdict(model_config), "crop": augment.crop, "train": dataclasses.asdict(train_config),
             "data": [d.annotations_path for d in datasets], "input_size": input_size}
    _check_state(out, state)

    strategy = make_strategy(strategy_name)
    replicas = strategy.num_replicas_in_sync
    if train_config.batch_size % replicas:
        raise TrainError(f"batch size {train_config.batch_size} is not divisible by {replicas} replicas")
    with strategy.scope():
        model = build_from_config(model_config, None, backbone_weights if init_model is None else None)
        if init_model is not None:
            source = load_bundle(init_model)
            if source.config != model_config:
                raise TrainError(f"--init model {init_model} has architecture {source.config}, not {model_config}")
            model.set_weights(source.model.get_weights())
        if train_config.freeze_backbone_bn:
            for layer in model.layers:
                if isinstance(layer, keras.layers.BatchNormalization) and not is_head_layer(layer.name):
                    layer.trainable = False

        def schedule(mult):
            return keras.optimizers.schedules.PiecewiseConstantDecay(
                [train_config.steps1], [train_config.lr1 * mult, train_config.lr2 * mult])

        opt_backbone = keras.optimizers.Adam(schedule(1.0))
        opt_head = keras.optimizers.Adam(schedule(train_config.head_lr_mult))
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        head_vars = [v for layer in model.layers if is_head_layer(layer.name) for v in layer.trainable_weights]
        head_ids = {id(v) for v in head_vars}
        backbone_vars = [v for v in model.trainable_weights if id(v) not in head_ids]
        opt_backbone.build(backbone_vars)
        opt_head.build(head_vars)
        checkpoint = tf.train.Checkpoint(model=model, opt_backbone=opt_backbone, opt_head=opt_head, step=step)

    manager = tf.train.CheckpointManager(checkpoint, str(out / "checkpoints"), max_to_keep=2)
    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint).expect_partial()
    start = int(step.numpy())
    out.mkdir(parents=True, exist_ok=True)
    (out / STATE_FILE).write_text(json.dumps(state, indent=1) + "\n")

    samplers = [Sampler(d, augment, model_config.stride, seed=train_config.seed,
                        balance_instances=train_config.balance_instances) for d in datasets]
    dataset = training_dataset(samplers, train_config.batch_size, start_index=start * train_config.batch_size)
    dist_dataset = strategy.experimental_distribute_dataset(dataset)
    global_batch = train_config.batch_size

    def replica_step(image, person, offsets, weights):
        with tf.GradientTape() as tape:
            outputs = model(image, training=True)
            logits, boxes = (outputs[0], outputs[1]) if model_config.box_head else (outputs[0], None)
            semantic, box = bbe_losses(logits, boxes, person, offsets, weights)
            per_example = semantic + train_config.box_loss_weight * box
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
        grads = tape.gradient(loss, backbone_vars + head_vars)
        opt_backbone.apply_gradients(zip(grads[: len(backbone_vars)], backbone_vars))
        opt_head.apply_gradients(zip(grads[len(backbone_vars):], head_vars))
        return (tf.nn.compute_average_loss(semantic, global_batch_size=global_batch),
                tf.nn.compute_average_loss(box, global_batch_size=global_batch))

    @tf.function
    def train_step(batch):
        semantic, box = strategy.run(replica_step, args=batch)
        step.assign_add(1)
        return (strategy.reduce(tf.distribute.ReduceOp.SUM, semantic, axis=None),
                strategy.reduce(tf.distribute.ReduceOp.SUM, box, axis=None))

    end = train_config.total_steps
    if max_steps_this_run is not None:
        end = min(end, start + max_steps_this_run)
    writer = tf.summary.create_file_writer(str(out / "logs"))
    history: list[tuple[int, float, float]] = []
    t0 = time.time()
    bar = tqdm(total=train_config.total_steps, initial=start, disable=not progress, unit="step", dynamic_ncols=True)
    iterator = iter(dist_dataset)
    try:
        while int(step.numpy()) < end:
            semantic, box = train_step(next(iterator))
            s = int(step.numpy())
            semantic, box = float(semantic), float(box)
            if not (np.isfinite(semantic) and np.isfinite(box)):
                raise TrainError(f"loss became non-finite at step {s}: semantic {semantic}, box {box}")
            history.append((s, semantic, box))
            elapsed = time.time() - t0
            rate = (s - start) * global_batch / max(elapsed, 1e-9)
            bar.update(1)
            bar.set_postfix(loss=f"{semantic + box:.3f}", sem=f"{semantic:.3f}", box=f"{box:.3f}", img_s=f"{rate:.1f}")
            if s % train_config.log_every == 0:
                with writer.as_default(step=s):
                    tf.summary.scalar("loss/semantic", semantic)
                    tf.summary.scalar("loss/box", box)
                    tf.summary.scalar("lr/backbone", opt_backbone.learning_rate)
                    tf.summary.scalar("images_per_second", rate)
            if s % train_config.checkpoint_every == 0:
                manager.save(checkpoint_number=s)
    finally:
        bar.close()
    done = int(step.numpy())
    if done > start and (not manager.latest_checkpoint or not manager.latest_checkpoint.endswith(f"-{done}")):
        manager.save(checkpoint_number=done)
    wall = time.time() - t0
    summary = {"start_step": start, "steps": done, "total_steps": train_config.total_steps,
               "images_per_second": (done - start) * global_batch / max(wall, 1e-9), "wall_seconds": wall,
               "final_semantic_loss": history[-1][1] if history else None,
               "final_box_loss": history[-1][2] if history else None,
               "learning_rate": float(opt_backbone.learning_rate), "replicas": replicas,
               "optimizer_iterations": int(opt_backbone.iterations.numpy()),
               "history": history}
    if done >= train_config.total_steps:
        inference = build_from_config(model_config, input_size)
        inference.set_weights(model.get_weights())
        info = {"train": dataclasses.asdict(train_config), "augment": dataclasses.asdict(augment),
                "data": [d.annotations_path for d in datasets], "images": sum(len(d) for d in datasets),
                "steps": done}
        save_bundle(out, inference, model_config, input_size, grouper, name, info)
    return summary
