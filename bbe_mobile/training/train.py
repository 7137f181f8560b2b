"""Training (paper sections 3.1, 3.2, 4.4): logistic loss over all cells + L1 box loss over non-crowd person
cells, Adam with a two-stage learning rate, checkpoints with exact resume, TensorBoard logs, tf.distribute."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bbe_mobile.boxes import Anchor
from bbe_mobile.grouper import GrouperConfig
from bbe_mobile.modeling.bundle import CONFIG_FILE, build_from_config, load_bundle, save_bundle
from bbe_mobile.modeling.network import ModelConfig, is_head_layer
from bbe_mobile.training.data import AugmentConfig, CocoPersons, Sampler, training_dataset
from bbe_mobile.utils import atomic

logger = logging.getLogger(__name__)
STATE_FILE = "train_state.json"
SNAPSHOT_DIR = "snapshots"


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
    giou_loss_weight: float = 1.0  # 1 - GIoU between each cell's decoded box and its instance box (0: paper)
    balance_instances: bool = False  # box loss: every person weighs the same (else every person cell)
    freeze_backbone_bn: bool = True
    freeze_blocks: int = 0  # MobileNetV2: the stem and blocks 0..n-1 keep their (ImageNet) weights
    checkpoint_every: int = 200
    snapshot_every: int = 1000  # steps between model bundles kept in RUN/snapshots/step-NNNNNN (0: none)
    log_every: int = 20
    seed: int = 0

    @property
    def total_steps(self) -> int:
        return self.steps1 + self.steps2


class TrainError(ValueError):
    """Training cannot start (bad data, incompatible checkpoint, bad options)."""


def giou_per_cell(box_offsets, offsets, max_log_scale: float = Anchor.max_log_scale):
    """Generalised IoU (batch, H, W) in [-1, 1] between the boxes that predicted and target offsets
    (batch, H, W, 4: dx, dy, dw, dh, Girshick) decode to at the same anchor. IoU is invariant to scaling each
    axis, so the boxes are decoded in anchor units (anchor = unit square at the origin); log-scales are clamped
    to ``max_log_scale`` as the grouper decodes them."""
    import tensorflow as tf  # noqa: PLC0415

    def corners(o):
        half_w = 0.5 * tf.exp(tf.clip_by_value(o[..., 2], -max_log_scale, max_log_scale))
        half_h = 0.5 * tf.exp(tf.clip_by_value(o[..., 3], -max_log_scale, max_log_scale))
        return o[..., 0] - half_w, o[..., 1] - half_h, o[..., 0] + half_w, o[..., 1] + half_h

    px1, py1, px2, py2 = corners(box_offsets)
    tx1, ty1, tx2, ty2 = corners(offsets)
    inter = tf.nn.relu(tf.minimum(px2, tx2) - tf.maximum(px1, tx1)) * tf.nn.relu(tf.minimum(py2, ty2) - tf.maximum(py1, ty1))
    union = (px2 - px1) * (py2 - py1) + (tx2 - tx1) * (ty2 - ty1) - inter
    hull = (tf.maximum(px2, tx2) - tf.minimum(px1, tx1)) * (tf.maximum(py2, ty2) - tf.minimum(py1, ty1))
    return inter / union - (hull - union) / hull


def bbe_losses(person_logits, box_offsets, person, offsets, weights):
    """Per-example losses (batch,) ``(semantic, l1, giou)``: mean logistic loss over all cells; L1 over the four
    offsets summed and 1 - GIoU of the decoded boxes, each the weighted mean over the example's non-crowd person
    cells (0 where it has none). ``weights`` (batch, H, W, 1) are 1 per cell (paper) or 1 / instance cells
    (``balance_instances``: then the mean over people of their mean loss)."""
    import tensorflow as tf  # noqa: PLC0415

    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=person, logits=person_logits)
    semantic = tf.reduce_mean(bce, axis=[1, 2, 3])
    if box_offsets is None:
        return semantic, tf.zeros_like(semantic), tf.zeros_like(semantic)
    total = tf.maximum(tf.reduce_sum(weights, axis=[1, 2, 3]), 1.0)
    l1 = tf.reduce_sum(tf.abs(box_offsets - offsets) * weights, axis=[1, 2, 3]) / total
    giou = giou_per_cell(box_offsets, offsets)
    giou_loss = tf.reduce_sum((1.0 - giou) * weights[..., 0], axis=[1, 2]) / total
    return semantic, l1, giou_loss


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
    """Refuse to resume a run directory made with another architecture, crop or schedule. Architecture fields
    added since the run started count at their defaults (the run was made with them)."""
    path = out_dir / STATE_FILE
    if path.exists():
        previous = json.loads(path.read_text())
        if isinstance(previous.get("model"), dict):
            defaults = {f.name: f.default for f in dataclasses.fields(ModelConfig)}
            previous["model"] = {**defaults, **previous["model"]}
        for key in ("model", "crop"):
            if previous.get(key) != state.get(key):
                raise TrainError(f"{out_dir} holds a run with {key}={previous.get(key)}, not {state.get(key)}: "
                                 "use another --out or the same options")


@dataclass
class Trainee:
    """A model ready to train: its backbone and head variables (ASPP, decoder, heads) and one Adam each."""

    model: object
    backbone_vars: list
    head_vars: list
    opt_backbone: object
    opt_head: object


def in_frozen_blocks(layer_name: str, blocks: int) -> bool:
    """True for a MobileNetV2 layer (Keras Applications names) of the stem or of blocks 0..``blocks``-1."""
    if blocks <= 0:
        return False
    if layer_name.startswith(("Conv1", "bn_Conv1", "expanded_conv_")):
        return True
    match = re.match(r"block_(\d+)_", layer_name)
    return bool(match) and int(match.group(1)) < blocks


def freeze_backbone_batch_norm(model) -> None:
    """Keep the backbone's batch norm in inference mode (moving averages), even in ``model(x, training=True)``;
    the heads' batch norm (ASPP, decoder, box tower) still uses batch statistics when training."""
    import keras  # noqa: PLC0415

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization) and not is_head_layer(layer.name):
            layer.trainable = False


def prepare_training(model_config: ModelConfig, train_config: TrainConfig, backbone_weights: str | None = None,
                     init_model: str | None = None) -> Trainee:
    """Build the model (flexible input size) with backbone weights or the weights of ``init_model``, freeze the
    backbone's batch norm if asked, and build the two optimisers (two-stage schedule, heads x ``head_lr_mult``).
    Call inside the ``tf.distribute`` strategy's scope."""
    import keras  # noqa: PLC0415

    model = build_from_config(model_config, None, backbone_weights if init_model is None else None)
    if init_model is not None:
        source = load_bundle(init_model)
        # the output stride only sets dilations and upsampling factors, not weights: a stride-16 model fine-tunes at 8
        if dataclasses.replace(source.config, output_stride=model_config.output_stride) != model_config:
            raise TrainError(f"--init model {init_model} has architecture {source.config}, not {model_config}")
        model.set_weights(source.model.get_weights())
    if train_config.freeze_blocks and model_config.backbone != "mobilenet_v2":
        raise TrainError("freezing backbone blocks needs the mobilenet_v2 backbone")
    if train_config.freeze_backbone_bn:
        freeze_backbone_batch_norm(model)
    for layer in model.layers:
        if in_frozen_blocks(layer.name, train_config.freeze_blocks):
            layer.trainable = False

    def schedule(mult):
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            [train_config.steps1], [train_config.lr1 * mult, train_config.lr2 * mult])

    head_vars = [v for layer in model.layers if is_head_layer(layer.name) for v in layer.trainable_weights]
    head_ids = {id(v) for v in head_vars}
    backbone_vars = [v for v in model.trainable_weights if id(v) not in head_ids]
    opt_backbone = keras.optimizers.Adam(schedule(1.0))
    opt_head = keras.optimizers.Adam(schedule(train_config.head_lr_mult))
    opt_backbone.build(backbone_vars)
    opt_head.build(head_vars)
    return Trainee(model, backbone_vars, head_vars, opt_backbone, opt_head)


def make_replica_step(trainee: Trainee, model_config: ModelConfig, train_config: TrainConfig, global_batch: int):
    """One optimisation step on one replica's share of a batch (image, person, offsets, weights as ``data.py``
    yields them); returns the replica's (semantic, box L1, 1 - GIoU) losses scaled for a SUM reduction."""
    import tensorflow as tf  # noqa: PLC0415

    variables = trainee.backbone_vars + trainee.head_vars
    split = len(trainee.backbone_vars)

    def replica_step(image, person, offsets, weights):
        with tf.GradientTape() as tape:
            outputs = trainee.model(image, training=True)
            logits, boxes = (outputs[0], outputs[1]) if model_config.box_head else (outputs[0], None)
            semantic, box, giou = bbe_losses(logits, boxes, person, offsets, weights)
            per_example = semantic + train_config.box_loss_weight * box + train_config.giou_loss_weight * giou
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
        grads = tape.gradient(loss, variables)
        trainee.opt_backbone.apply_gradients(zip(grads[:split], trainee.backbone_vars))
        trainee.opt_head.apply_gradients(zip(grads[split:], trainee.head_vars))
        return tuple(tf.nn.compute_average_loss(v, global_batch_size=global_batch) for v in (semantic, box, giou))

    return replica_step


def checkpoint_problem(prefix: str) -> str | None:
    """Why the TF checkpoint at ``prefix`` (``DIR/ckpt-N``) cannot be restored, or None if every tensor in it
    reads back (the reader checks each tensor's CRC32C, so truncation and flipped bytes are caught)."""
    import tensorflow as tf  # noqa: PLC0415

    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as exc:  # TF raises DataLossError, NotFoundError, OutOfRangeError... for damaged files
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'unreadable'}"
    return None


def checkpoint_steps(directory: str | os.PathLike) -> list[int]:
    """Steps of the ``ckpt-N`` checkpoints in ``directory``, newest first, found from their index files (TF writes
    the ``checkpoint`` state file after them, so a run killed in between has checkpoints it does not name)."""
    return sorted((int(m.group(1)) for p in Path(directory).glob("ckpt-*.index")
                   if (m := re.fullmatch(r"ckpt-(\d+)\.index", p.name))), reverse=True)


def restore_newest_intact(checkpoint, directory: Path) -> str | None:
    """Restore ``checkpoint`` from the newest intact ``ckpt-N`` in ``directory`` (found from the files, so a
    damaged ``checkpoint`` state file does not hide them); each damaged one is logged (this module's logger,
    WARNING) and skipped. A checkpoint that does not read back while its ``ckpt-N_temp`` directory is still there
    was being written when its run stopped (TF writes the shards there, merges them into ``ckpt-N.*``, then
    removes it): it is skipped as never written. Returns the prefix restored, None if there is none (or only
    unfinished ones); TrainError if written checkpoints exist but none is intact."""
    problems = []
    for step in checkpoint_steps(directory):
        prefix = str(directory / f"ckpt-{step}")
        problem = checkpoint_problem(prefix)
        if problem is None:
            checkpoint.restore(prefix).expect_partial()
            return prefix
        if Path(prefix + "_temp").is_dir():
            logger.warning("checkpoint %s was being written when its run stopped (%s): skipped", prefix, problem)
            continue
        problems.append(f"ckpt-{step} ({problem})")
        logger.warning("checkpoint %s is damaged (%s): falling back to the one before it", prefix, problem)
    if problems:
        raise TrainError(f"no intact checkpoint in {directory}: " + "; ".join(problems)
                         + " (remove the directory to start over)")
    return None


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
        trainee = prepare_training(model_config, train_config, backbone_weights, init_model)
        model, opt_backbone = trainee.model, trainee.opt_backbone
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        checkpoint = tf.train.Checkpoint(model=model, opt_backbone=opt_backbone, opt_head=trainee.opt_head, step=step)

    manager = tf.train.CheckpointManager(checkpoint, str(out / "checkpoints"), max_to_keep=2)
    restore_newest_intact(checkpoint, out / "checkpoints")
    start = int(step.numpy())
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out / STATE_FILE, json.dumps(state, indent=1) + "\n")  # a kill must not truncate it

    def info_at(s: int) -> dict:
        return {"train": dataclasses.asdict(train_config), "augment": dataclasses.asdict(augment),
                "data": [d.annotations_path for d in datasets], "images": sum(len(d) for d in datasets),
                "steps": s, "images_seen": s * train_config.batch_size}

    def bundle_parts() -> tuple:
        inference = build_from_config(model_config, input_size)
        inference.set_weights(model.get_weights())
        return inference, model_config, input_size, grouper

    def snapshot(s: int) -> None:
        """Keep the model at step ``s`` as a bundle (a learning curve evaluates these); one a killed run left
        without its ``bbe.json`` is written again."""
        target = out / SNAPSHOT_DIR / f"step-{s:06d}"
        if train_config.snapshot_every and s and s % train_config.snapshot_every == 0 \
                and not (target / CONFIG_FILE).is_file():
            save_bundle(target, *bundle_parts(), name, info_at(s))

    snapshot(start)

    samplers = [Sampler(d, augment, model_config.stride, seed=train_config.seed,
                        balance_instances=train_config.balance_instances) for d in datasets]
    dataset = training_dataset(samplers, train_config.batch_size, start_index=start * train_config.batch_size)
    dist_dataset = strategy.experimental_distribute_dataset(dataset)
    global_batch = train_config.batch_size

    replica_step = make_replica_step(trainee, model_config, train_config, global_batch)

    @tf.function
    def train_step(batch):
        losses = strategy.run(replica_step, args=batch)
        step.assign_add(1)
        return tuple(strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in losses)

    end = train_config.total_steps
    if max_steps_this_run is not None:
        end = min(end, start + max_steps_this_run)
    writer = tf.summary.create_file_writer(str(out / "logs"))
    history: list[tuple[int, float, float, float]] = []
    step_seconds: list[float] = []
    t0 = time.time()
    bar = tqdm(total=train_config.total_steps, initial=start, disable=not progress, unit="step", dynamic_ncols=True)
    iterator = iter(dist_dataset)
    try:
        while int(step.numpy()) < end:
            t_step = time.perf_counter()
            semantic, box, giou = (float(v) for v in train_step(next(iterator)))
            s = int(step.numpy())
            if not np.isfinite([semantic, box, giou]).all():
                raise TrainError(f"loss became non-finite at step {s}: semantic {semantic}, box {box}, giou {giou}")
            history.append((s, semantic, box, giou))
            step_seconds.append(time.perf_counter() - t_step)
            elapsed = time.time() - t0
            rate = (s - start) * global_batch / max(elapsed, 1e-9)
            bar.update(1)
            bar.set_postfix(sem=f"{semantic:.3f}", box=f"{box:.3f}", giou=f"{giou:.3f}", img_s=f"{rate:.1f}")
            if s % train_config.log_every == 0:
                with writer.as_default(step=s):
                    tf.summary.scalar("loss/semantic", semantic)
                    tf.summary.scalar("loss/box", box)
                    tf.summary.scalar("loss/giou", giou)
                    tf.summary.scalar("lr/backbone", opt_backbone.learning_rate)
                    tf.summary.scalar("images_per_second", rate)
            if s % train_config.checkpoint_every == 0:
                manager.save(checkpoint_number=s)
            snapshot(s)
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
               "final_giou_loss": history[-1][3] if history else None,
               "learning_rate": float(opt_backbone.learning_rate), "replicas": replicas,
               "optimizer_iterations": int(opt_backbone.iterations.numpy()),
               "history": history, "step_seconds": step_seconds}
    if done >= train_config.total_steps:
        save_bundle(out, *bundle_parts(), name, info_at(done))
    return summary
