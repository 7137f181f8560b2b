"""Where a training step's time goes, and whether the input pipeline keeps up (issue 13).

For each configuration (the base flags, then every ``--variant``), in interleaved rounds:

- **pipeline**: samples/s of ``data.training_dataset`` alone, with the parallelism ``train`` uses;
- **model step**: images/s of ``train.make_replica_step`` (forward, loss, backward, both Adam updates) on one
  cached batch;
- **whole run**: images/s of the same step fed by the real pipeline, as ``train`` runs it (the pipeline and
  the model share the cores);
- **split**: forward time of the network cut after the backbone, the ASPP, the decoder and the heads, and with
  the loss (a stage's share: the difference of successive cuts); backward time of the whole network and loss
  with the gradients of the variables of a stage and every later one (the tape backpropagates only that deep; a
  stage's share: the difference of successive sets; ``loss``: the gradient of the outputs alone); the optimiser
  row is the full step minus the forward and the deepest backward.

Prints one table per measure: median and min-max over rounds. Variants override fields of the base
configuration, e.g. ``--variant crop=320`` ``--variant decoder_filters=96`` ``--variant freeze_blocks=4``
``--variant threads=1``.

    python benchmarks/train_profile.py --alpha 1.0 --rounds 3 --steps 8 --variant crop=320 --variant freeze_blocks=4
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from dataclasses import dataclass

from bbe_mobile.utils.paths import SHARED

MINI = SHARED / "data" / "coco-person-mini"
EXTRA = SHARED / "data" / "coco-person-extra"


@dataclass(frozen=True)
class ProfileConfig:
    """One configuration to time: the model, the crop side (px), the batch, frozen backbone blocks, the loss
    weights and the TensorFlow thread count (0: TensorFlow's default, as ``train`` runs)."""

    alpha: float = 1.0
    crop: int = 384
    batch_size: int = 8
    aspp_filters: int = 128
    decoder_filters: int = 128
    freeze_blocks: int = 0
    giou_loss_weight: float = 1.0
    pipeline_parallel: int = 2
    threads: int = 0

    def label(self, base: "ProfileConfig") -> str:
        changed = [f"{f.name}={getattr(self, f.name)}" for f in dataclasses.fields(self)
                   if getattr(self, f.name) != getattr(base, f.name)]
        return ", ".join(changed) or "base"


def parse_variant(base: ProfileConfig, text: str) -> ProfileConfig:
    """``"crop=320,threads=1"`` -> ``base`` with those fields replaced (types from the base's fields)."""
    fields = {f.name: f for f in dataclasses.fields(ProfileConfig)}
    changes = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key not in fields or not value:
            raise SystemExit(f"error: bad --variant item {item!r}: use NAME=VALUE with NAME one of {', '.join(fields)}")
        changes[key] = type(getattr(base, key))(value)
    return dataclasses.replace(base, **changes)


def training_sets():
    """The training data of the README's training example (mini train, extra, trainable val images)."""
    from bbe_mobile.training.data import CocoPersons, split_val  # noqa: PLC0415

    val = CocoPersons(str(MINI / "val"), str(MINI / "instances_person_val.json"))
    return [CocoPersons(str(MINI / "train"), str(MINI / "instances_person_train.json")),
            CocoPersons(str(EXTRA / "images"), str(EXTRA / "instances_person_extra.json")),
            CocoPersons(str(MINI / "val"), str(MINI / "instances_person_val.json"), image_ids=split_val(val)[0])]


class Profiled:
    """A built configuration: the trainee, its compiled step, its pipeline and the stage cuts."""

    def __init__(self, config: ProfileConfig, datasets):
        import tensorflow as tf  # noqa: PLC0415

        from bbe_mobile.modeling.network import ModelConfig  # noqa: PLC0415
        from bbe_mobile.training.data import AugmentConfig, Sampler, training_dataset  # noqa: PLC0415
        from bbe_mobile.training.train import TrainConfig, bbe_losses, make_replica_step, prepare_training  # noqa: PLC0415

        self.config = config
        self.model_config = ModelConfig(alpha=config.alpha, aspp_filters=config.aspp_filters,
                                        decoder_filters=config.decoder_filters)
        self.train_config = TrainConfig(batch_size=config.batch_size, freeze_blocks=config.freeze_blocks,
                                        giou_loss_weight=config.giou_loss_weight)
        self.trainee = prepare_training(self.model_config, self.train_config)
        samplers = [Sampler(d, AugmentConfig(crop=config.crop), self.model_config.stride) for d in datasets]
        self.dataset = training_dataset(samplers, config.batch_size, parallel=config.pipeline_parallel)
        self.step = tf.function(make_replica_step(self.trainee, self.model_config, self.train_config,
                                                  config.batch_size))
        self.batch = next(iter(self.dataset))
        self.cuts = self._cuts(bbe_losses)

    def _cuts(self, bbe_losses):
        """(name, forward fn, backward fn) per stage. Forward: the network cut after the stage (after the heads:
        with the loss), so a stage's forward is the difference of successive cuts. Backward: the whole network
        and loss run forward, then the gradients of the trainable variables of this stage and every later one
        (for ``loss``: of the network's outputs only); the tape backpropagates only as deep as those variables,
        so a stage's backward is the difference of successive sets."""
        import keras  # noqa: PLC0415
        import tensorflow as tf  # noqa: PLC0415

        model = self.trainee.model
        tensors = {
            "backbone": [model.get_layer("aspp0").input, model.get_layer("decoder_low_level").input],
            "aspp": [model.get_layer("aspp_project_relu").output, model.get_layer("decoder_low_level").input],
            "decoder": [model.get_layer("decoder_conv1_relu").output],
            "heads": list(model.outputs),
        }
        image, person, offsets, weights = self.batch
        weights_g, box_w = self.train_config.giou_loss_weight, self.train_config.box_loss_weight

        def loss_of(out):
            semantic, box, giou = bbe_losses(out[0], out[1], person, offsets, weights)
            return tf.reduce_sum(semantic + box_w * box + weights_g * giou)

        def total(out):
            return tf.add_n([tf.reduce_sum(o) for o in tf.nest.flatten(out)])

        forwards = [(name, keras.Model(model.input, outputs), total) for name, outputs in tensors.items()]
        forwards.append(("loss", model, loss_of))
        trainable = {id(v) for v in self.trainee.backbone_vars + self.trainee.head_vars}
        order = list(tensors)
        stage_vars = {name: [] for name in order}
        for layer in model.layers:
            stage = next((n for n, prefixes in STAGE_PREFIXES.items() if layer.name.startswith(prefixes)), "backbone")
            stage_vars[stage] += [v for v in layer.trainable_weights if id(v) in trainable]
        # Closures, not default arguments: tf.function would take a list of variables passed as an argument for
        # tensors (their values), and the gradients of those are None (the first version of this split was).
        def forward_fn(sub, reduce):
            return tf.function(lambda: reduce(sub(image, training=True)))

        def backward_fn(later):
            def backward():
                with tf.GradientTape() as tape:
                    outputs = model(image, training=True)
                    tape.watch(outputs)
                    value = loss_of(outputs)
                return tape.gradient(value, later if later is not None else list(outputs))
            return tf.function(backward)

        return [(name, forward_fn(sub, reduce),
                 backward_fn([v for stage in order[k:] for v in stage_vars[stage]] if name != "loss" else None))
                for k, (name, sub, reduce) in enumerate(forwards)]

    def time_model_step(self, steps: int) -> float:
        """Images/s of the full step on the cached batch (one untimed call first)."""
        self.step(*self.batch)
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step(*self.batch)
        return steps * self.config.batch_size / (time.perf_counter() - t0)

    def time_pipeline(self, steps: int) -> float:
        """Samples/s of the input pipeline alone (a fresh iterator: its first batch is untimed)."""
        iterator = iter(self.dataset)
        next(iterator)
        t0 = time.perf_counter()
        for _ in range(steps):
            next(iterator)
        return steps * self.config.batch_size / (time.perf_counter() - t0)

    def time_whole_run(self, steps: int) -> float:
        """Images/s of the step fed by the pipeline, as ``train`` runs it."""
        iterator = iter(self.dataset)
        self.step(*next(iterator))
        t0 = time.perf_counter()
        for _ in range(steps):
            self.step(*next(iterator))
        return steps * self.config.batch_size / (time.perf_counter() - t0)

    def time_split(self, repeats: int) -> dict[str, tuple[float, float]]:
        """Per stage (forward ms, backward ms): forward from the growing cuts, backward from the shrinking variable
        sets (see ``_cuts``), and ``optimizer`` (the full step minus the whole forward and the deepest backward):
        medians of ``repeats`` interleaved passes over every cut and the step."""
        for _, forward, backward in self.cuts:
            forward(), backward()
        samples = {name: ([], []) for name, _, _ in self.cuts}
        steps = []
        for _ in range(repeats):
            for name, forward, backward in self.cuts:
                samples[name][0].append(_timed(forward))
                samples[name][1].append(_timed(backward))
            steps.append(_timed(lambda: self.step(*self.batch)))
        forward = {name: statistics.median(f) for name, (f, _) in samples.items()}
        backward = {name: statistics.median(b) - forward["loss"] for name, (_, b) in samples.items()}
        names = list(samples)  # forward cuts grow and backward sets shrink along this order
        split = {name: (forward[name] - (forward[names[k - 1]] if k else 0.0),
                        backward[name] - (backward[names[k + 1]] if k + 1 < len(names) else 0.0))
                 for k, name in enumerate(names)}
        split["optimizer"] = (0.0, statistics.median(steps) - forward["loss"] - backward["backbone"])
        return split


# Layer-name prefixes of the stages after the backbone (every other layer belongs to the backbone).
STAGE_PREFIXES = {"aspp": ("aspp", "image_pooling"), "decoder": ("decoder",), "heads": ("person_logits", "box_offsets")}


def _timed(fn) -> float:
    """Milliseconds of one call, its results fetched (so the work is done)."""
    import tensorflow as tf  # noqa: PLC0415

    t0 = time.perf_counter()
    for r in tf.nest.flatten(fn()):
        if r is not None:
            r.numpy()
    return (time.perf_counter() - t0) * 1000


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for f in dataclasses.fields(ProfileConfig):
        parser.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    parser.add_argument("--variant", action="append", default=[], help="NAME=VALUE[,NAME=VALUE] overrides")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over all configurations")
    parser.add_argument("--steps", type=int, default=8, help="timed steps (batches) per measure and round")
    parser.add_argument("--split-repeats", type=int, default=3, help="timed calls per cut for the split")
    args = parser.parse_args(argv)
    if not MINI.is_dir() or not EXTRA.is_dir():
        print(f"error: training data not found under {SHARED / 'data'} (coco-person-mini and coco-person-extra)",
              file=sys.stderr)
        return 1
    base = ProfileConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ProfileConfig)})
    configs = [base] + [parse_variant(base, v) for v in args.variant]
    threads = {c.threads for c in configs}
    if len(threads) > 1:
        print("error: TensorFlow's thread count is fixed per process: run one --threads value per invocation",
              file=sys.stderr)
        return 1
    import tensorflow as tf  # noqa: PLC0415

    if base.threads:
        tf.config.threading.set_intra_op_parallelism_threads(base.threads)
        tf.config.threading.set_inter_op_parallelism_threads(base.threads)
    datasets = training_sets()
    built = [Profiled(c, datasets) for c in configs]
    rates = {id(p): {"pipeline": [], "model step": [], "whole run": []} for p in built}
    splits = {id(p): [] for p in built}
    for r in range(args.rounds):
        for p in built if r % 2 == 0 else reversed(built):
            rates[id(p)]["model step"].append(p.time_model_step(args.steps))
            rates[id(p)]["whole run"].append(p.time_whole_run(args.steps))
            rates[id(p)]["pipeline"].append(p.time_pipeline(args.steps))
            splits[id(p)].append(p.time_split(args.split_repeats))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    print(f"\nTraining throughput, images/s, median (min-max) of {args.rounds} interleaved rounds of {args.steps} "
          f"steps; base: {base}\n")
    print("| configuration | pipeline alone | model step (cached batch) | whole run | whole / model |")
    print("|---|---|---|---|---|")
    for p in built:
        m = rates[id(p)]
        ratio = [w / s for w, s in zip(m["whole run"], m["model step"])]
        print(f"| {p.config.label(base)} | {_spread(m['pipeline'])} | {_spread(m['model step'])} | "
              f"{_spread(m['whole run'])} | {_spread(ratio)} |")
    stages = [name for name, _, _ in built[0].cuts]
    print("\nModel-step split, ms per batch (forward / backward; the optimiser row is the full step minus forward "
          "and backward), median over rounds\n")
    print("| configuration | " + " | ".join(stages) + " | optimizer | step |")
    print("|---|" + "---|" * (len(stages) + 2))
    for p in built:
        cells, total = [], 0.0
        for name in stages + ["optimizer"]:
            f = statistics.median(s[name][0] for s in splits[id(p)])
            b = statistics.median(s[name][1] for s in splits[id(p)])
            total += f + b
            cells.append(f"{f:.0f} / {b:.0f}" if name != "optimizer" else f"{b:.0f}")
        print(f"| {p.config.label(base)} | " + " | ".join(cells) + f" | {total:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
