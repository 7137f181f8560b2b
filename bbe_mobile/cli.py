"""The ``bbe-mobile`` command line: parses arguments and calls library functions, nothing else."""
from __future__ import annotations

import os
import sys

import click

SHARED_WEIGHTS = "../shared/weights/mobilenet_v2_0.35_224_imagenet_no_top.weights.h5"


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


class _Group(click.Group):
    """Turns library ValueErrors (bad input) into one clear line and exit code 2, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ValueError, FileNotFoundError, OSError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bbe-mobile")
def main():
    """bbe-mobile: Bounding Box Embedding person instance segmentation, from training to phones."""
    _quiet_tensorflow()


@main.command()
@click.option("--train-set", "train_sets", nargs=2, multiple=True, required=True, metavar="IMAGES_DIR ANNOTATIONS",
              help="A COCO-format training set (images directory, instances json); repeatable.")
@click.option("--val-trainable", nargs=2, default=None, metavar="IMAGES_DIR ANNOTATIONS",
              help="Also train on a val set's images with fewer than 2 people, minus the first 300 single-person "
                   "images (every 2+ person image and those 300 stay held out for evaluation).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Run directory: checkpoints, "
              "TensorBoard logs, and the final bundle (model.keras + bbe.json). An existing run resumes.")
@click.option("--backbone", type=click.Choice(["mobilenet_v2", "resnet50"]), default="mobilenet_v2", show_default=True)
@click.option("--alpha", type=float, default=0.35, show_default=True, help="MobileNetV2 width multiplier.")
@click.option("--output-stride", type=click.Choice(["8", "16"]), default="16", show_default=True,
              help="Backbone output stride (paper: train 16, test 8).")
@click.option("--aspp/--no-aspp", default=True, show_default=True, help="Atrous branches of ASPP (Table 3).")
@click.option("--backbone-weights", default=None, help="'imagenet' (download) or a Keras Applications .weights.h5; "
              f"default: {SHARED_WEIGHTS} if present, else random.")
@click.option("--init", "init_model", default=None, type=click.Path(), help="Start from this model bundle (fine-tune).")
@click.option("--crop", type=int, default=384, show_default=True, help="Training crop side, pixels (multiple of 16).")
@click.option("--base-size", type=int, default=512, show_default=True,
              help="Letterbox side the random 0.5-1.5 rescale is relative to, pixels.")
@click.option("--input-size", type=int, default=512, show_default=True, help="Input side of the saved model, pixels.")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Global batch size (all devices).")
@click.option("--steps1", type=int, default=4000, show_default=True, help="Steps at --lr1.")
@click.option("--steps2", type=int, default=800, show_default=True, help="Steps at --lr2 after that.")
@click.option("--lr1", type=float, default=1e-4, show_default=True)
@click.option("--lr2", type=float, default=1e-5, show_default=True)
@click.option("--head-lr-mult", type=float, default=10.0, show_default=True,
              help="Learning-rate multiplier of ASPP, decoder and heads.")
@click.option("--paste-prob", type=float, default=0.6, show_default=True, help="Probability of copy-paste per sample.")
@click.option("--checkpoint-every", type=int, default=200, show_default=True, help="Steps between checkpoints.")
@click.option("--strategy", type=click.Choice(["default", "mirrored", "multiworker"]), default="default",
              show_default=True, help="tf.distribute strategy (multiworker reads TF_CONFIG).")
@click.option("--logical-cpus", type=int, default=0, show_default=True,
              help="Split the CPU into N logical devices (to exercise --strategy mirrored without GPUs).")
@click.option("--max-steps", type=int, default=None, help="Stop after this many steps in this run (resumable).")
@click.option("--name", default="bbe", show_default=True, help="Model name stored in the bundle.")
@click.option("--seed", type=int, default=0, show_default=True)
def train(train_sets, val_trainable, out_dir, backbone, alpha, output_stride, aspp, backbone_weights, init_model, crop,
          base_size, input_size, batch_size, steps1, steps2, lr1, lr2, head_lr_mult, paste_prob, checkpoint_every,
          strategy, logical_cpus, max_steps, name, seed):
    """Train (or resume) a BBE model on COCO-format person data."""
    from bbe_mobile import train as training  # noqa: PLC0415
    from bbe_mobile.data import AugmentConfig, CocoPersons, split_val  # noqa: PLC0415
    from bbe_mobile.model import ModelConfig  # noqa: PLC0415

    if logical_cpus:
        training.split_logical_cpus(logical_cpus)
    datasets = [CocoPersons(images, annotations) for images, annotations in train_sets]
    if val_trainable:
        val = CocoPersons(*val_trainable)
        datasets.append(CocoPersons(*val_trainable, image_ids=split_val(val)[0]))
    if backbone_weights is None and backbone == "mobilenet_v2" and alpha == 0.35 and os.path.isfile(SHARED_WEIGHTS):
        backbone_weights = SHARED_WEIGHTS
    summary = training.train(
        datasets, out_dir,
        ModelConfig(backbone=backbone, alpha=alpha, output_stride=int(output_stride), aspp=aspp),
        training.TrainConfig(steps1=steps1, steps2=steps2, lr1=lr1, lr2=lr2, head_lr_mult=head_lr_mult,
                             batch_size=batch_size, checkpoint_every=checkpoint_every, seed=seed),
        AugmentConfig(crop=crop, base_size=base_size, paste_probability=paste_prob),
        input_size=input_size, backbone_weights=backbone_weights, init_model=init_model, strategy_name=strategy,
        name=name, max_steps_this_run=max_steps)
    click.echo(f"steps {summary['steps']}/{summary['total_steps']} (from {summary['start_step']}), "
               f"{summary['images_per_second']:.1f} images/s, {summary['wall_seconds']:.0f} s, "
               f"final loss semantic {summary['final_semantic_loss']} box {summary['final_box_loss']}")
    if summary["steps"] >= summary["total_steps"]:
        click.echo(f"model written to {out_dir}")


if __name__ == "__main__":
    main()
