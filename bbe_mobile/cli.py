"""The ``bbe-mobile`` command line: parses arguments and calls library functions, nothing else."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from bbe_mobile.utils import paths, quiet



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
@click.option("--verbose", is_flag=True, help="Show TensorFlow, oneDNN, absl and LiteRT start-up lines (hidden by "
              f"default; or set {quiet.VERBOSE_ENV}=1).")
def main(verbose):
    """bbe-mobile: Bounding Box Embedding person instance segmentation, from training to phones."""
    quiet.quiet_start_up(verbose)


@main.command()
@click.option("--train-set", "train_sets", nargs=2, multiple=True, required=True, metavar="IMAGES_DIR ANNOTATIONS",
              help="A COCO-format training set (images directory, instances json); repeatable.")
@click.option("--val-trainable", nargs=2, default=None, metavar="IMAGES_DIR ANNOTATIONS",
              help="Also train on a val set's images with fewer than 2 people, minus the first 300 single-person "
                   "images (every 2+ person image and those 300 stay held out for evaluation).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Run directory: checkpoints, "
              "TensorBoard logs, and the final bundle (model.keras + bbe.json). An existing run resumes.")
@click.option("--backbone", type=click.Choice(["mobilenet_v2", "resnet50"]), default="mobilenet_v2", show_default=True)
@click.option("--alpha", type=float, default=1.0, show_default=True, help="MobileNetV2 width multiplier.")
@click.option("--output-stride", type=click.Choice(["8", "16"]), default="16", show_default=True,
              help="Backbone output stride (paper: train 16, test 8).")
@click.option("--aspp/--no-aspp", default=True, show_default=True, help="Atrous branches of ASPP (Table 3).")
@click.option("--backbone-weights", default=None, help="'imagenet' (download) or a Keras Applications .weights.h5; "
              "default, from ../shared/weights beside the checkout if present (else random): alpha 1.0 "
              "mobilenet_v2_1.0_movenet_lightning_no_top.weights.h5 (person-trained), alpha 0.35 "
              "mobilenet_v2_0.35_224_imagenet_no_top.weights.h5.")
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
@click.option("--box-loss-weight", type=float, default=1.0, show_default=True, help="Weight of the L1 box loss.")
@click.option("--giou-loss-weight", type=float, default=1.0, show_default=True,
              help="Weight of the 1 - GIoU loss between each person cell's decoded box and its instance box.")
@click.option("--box-tower", type=click.IntRange(0, 8), default=0, show_default=True,
              help="Separable 3x3 conv layers of the box head's own before its 1x1 conv (0: shares the decoder's).")
@click.option("--balance-instances/--no-balance-instances", default=False, show_default=True,
              help="Box loss: every person weighs the same instead of every person cell (helps small people).")
@click.option("--paste-prob", type=float, default=0.6, show_default=True, help="Probability of copy-paste per sample.")
@click.option("--max-pastes", type=int, default=3, show_default=True, help="Most people pasted into one sample.")
@click.option("--paste-height", type=float, nargs=2, default=(0.25, 0.8), show_default=True,
              help="Range of pasted people's heights, fractions of the crop side.")
@click.option("--scale-range", type=float, nargs=2, default=(0.5, 1.5), show_default=True,
              help="Random rescale range relative to --base-size (paper: 0.5 1.5).")
@click.option("--checkpoint-every", type=int, default=200, show_default=True, help="Steps between checkpoints.")
@click.option("--strategy", type=click.Choice(["default", "mirrored", "multiworker"]), default="default",
              show_default=True, help="tf.distribute strategy (multiworker reads TF_CONFIG).")
@click.option("--logical-cpus", type=int, default=0, show_default=True,
              help="Split the CPU into N logical devices (to exercise --strategy mirrored without GPUs).")
@click.option("--freeze-blocks", type=click.IntRange(0, 17), default=0, show_default=True,
              help="MobileNetV2: keep the stem and blocks 0..N-1 at their backbone weights (faster steps).")
@click.option("--snapshot-every", type=int, default=1000, show_default=True,
              help="Steps between model bundles kept in RUN/snapshots/step-NNNNNN for learning curves (0: none).")
@click.option("--max-steps", type=int, default=None, help="Stop after this many steps in this run (resumable).")
@click.option("--name", default="bbe", show_default=True, help="Model name stored in the bundle.")
@click.option("--seed", type=int, default=0, show_default=True)
def train(train_sets, val_trainable, out_dir, backbone, alpha, output_stride, aspp, backbone_weights, init_model, crop,
          base_size, input_size, batch_size, steps1, steps2, lr1, lr2, head_lr_mult, box_loss_weight, giou_loss_weight,
          box_tower, balance_instances,
          paste_prob, max_pastes, paste_height, scale_range, checkpoint_every,
          freeze_blocks, snapshot_every, strategy, logical_cpus, max_steps, name, seed):
    """Train (or resume) a BBE model on COCO-format person data."""
    from bbe_mobile.modeling.network import ModelConfig  # noqa: PLC0415
    from bbe_mobile.training import train as training  # noqa: PLC0415
    from bbe_mobile.training.data import AugmentConfig, CocoPersons, split_val  # noqa: PLC0415

    if logical_cpus:
        training.split_logical_cpus(logical_cpus)
    datasets = [CocoPersons(images, annotations) for images, annotations in train_sets]
    if val_trainable:
        val = CocoPersons(*val_trainable)
        datasets.append(CocoPersons(*val_trainable, image_ids=split_val(val)[0]))
    default_weights = paths.MOBILENET_V2_WEIGHTS.get(alpha) if backbone == "mobilenet_v2" else None
    if backbone_weights is None and default_weights is not None and default_weights.is_file():
        backbone_weights = str(default_weights)
    _say_initial_weights(backbone, alpha, backbone_weights, init_model, out_dir)
    summary = training.train(
        datasets, out_dir,
        ModelConfig(backbone=backbone, alpha=alpha, output_stride=int(output_stride), aspp=aspp, box_tower=box_tower),
        training.TrainConfig(steps1=steps1, steps2=steps2, lr1=lr1, lr2=lr2, head_lr_mult=head_lr_mult,
                             batch_size=batch_size, box_loss_weight=box_loss_weight,
                             giou_loss_weight=giou_loss_weight,
                             balance_instances=balance_instances, checkpoint_every=checkpoint_every,
                             freeze_blocks=freeze_blocks, snapshot_every=snapshot_every, seed=seed),
        AugmentConfig(crop=crop, base_size=base_size, scale_range=tuple(scale_range), paste_probability=paste_prob,
                      max_pastes=max_pastes, paste_height=tuple(paste_height)),
        input_size=input_size, backbone_weights=backbone_weights, init_model=init_model, strategy_name=strategy,
        name=name, max_steps_this_run=max_steps)
    click.echo(f"steps {summary['steps']}/{summary['total_steps']} (from {summary['start_step']}), "
               f"{summary['images_per_second']:.1f} images/s on {summary['replicas']} device(s), "
               f"{summary['wall_seconds']:.0f} s, "
               f"final loss semantic {summary['final_semantic_loss']} box {summary['final_box_loss']}")
    if summary["steps"] >= summary["total_steps"]:
        click.echo(f"model written to {out_dir}")


class _EchoHandler(logging.Handler):
    """Prints the package's log records as plain lines on stdout."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(record.getMessage())


@main.command(name="average")
@click.argument("out", type=click.Path(file_okay=False))
@click.argument("snapshots", nargs=-1, required=True, type=click.Path())
@click.option("--name", default=None, help="Name of the new bundle (default: the snapshots' name).")
def average_command(out, snapshots, name):
    """Average the weights of SNAPSHOTS (bundles of one training run, e.g. RUN/snapshots/step-*) into a new
    bundle OUT: weight averaging along the run, usually better than any one snapshot (docs/training.md)."""
    from bbe_mobile.training.average import average_snapshots  # noqa: PLC0415

    path = average_snapshots(list(snapshots), out, name)
    click.echo(f"wrote {path}: the mean weights of {len(snapshots)} snapshots")


def _say_initial_weights(backbone: str, alpha: float, backbone_weights: str | None, init_model: str | None,
                         out_dir: str) -> None:
    """Say which weights training starts from. Loaded backbone weights are reported when they are copied
    (``model.load_backbone_weights`` logs the file and the number of layers, ``train`` each damaged checkpoint
    it skips; both are printed through the ``bbe_mobile`` logger set up here)."""
    log = logging.getLogger("bbe_mobile")
    log.setLevel(logging.INFO)
    log.propagate = False
    if not any(isinstance(h, _EchoHandler) for h in log.handlers):
        log.addHandler(_EchoHandler())
    from bbe_mobile.training.train import checkpoint_steps  # noqa: PLC0415

    if checkpoint_steps(Path(out_dir) / "checkpoints"):  # from the files: a kill can leave them unnamed
        click.echo(f"resuming from the last checkpoint in {out_dir}: its weights replace the initial ones below")
    if init_model:
        click.echo(f"initial weights: every layer from --init {init_model} (no backbone weights loaded)")
    elif not backbone_weights:
        default_weights = paths.MOBILENET_V2_WEIGHTS.get(alpha) if backbone == "mobilenet_v2" else None
        reason = (f"{default_weights} is absent" if default_weights is not None
                  else f"there is no default for {backbone}" + (f" alpha {alpha:g}" if backbone == "mobilenet_v2"
                                                                 else ""))
        click.echo(f"backbone weights: none ({reason}; pass --backbone-weights): starting from random weights")


def _grouper_options(f):
    """--t-c/--t-nms/--t-fg/--t-iou/--max-instances/--grouper-mode/--refine-rounds/--refine-statistic overriding the
    model's grouper configuration; the command receives them as keyword arguments named like GrouperConfig's fields."""
    for name, help_text in (("t-c", "peak probability threshold"), ("t-nms", "NMS IoU threshold"),
                            ("t-fg", "person cell probability threshold"),
                            ("t-iou", "minimum IoU of a cell's box with its instance box")):
        f = click.option(f"--{name}", type=float, default=None,
                         help=f"Grouper {help_text}, in [0, 1] (default: the model's).")(f)
    f = click.option("--grouper-mode", "mode", type=click.Choice(["paper", "refine"]), default=None,
                     help="Grouper mode (docs/grouper.md): the paper's, or refined boxes (default: the model's).")(f)
    f = click.option("--refine-rounds", type=int, default=None,
                     help="Refinement rounds of --grouper-mode refine, >= 1 (default: the model's, 1).")(f)
    f = click.option("--refine-statistic", type=click.Choice(["median", "mean"]), default=None,
                     help="Per-coordinate statistic of the refined boxes of --grouper-mode refine (default: the "
                          "model's; median for the bundled model and for bundles that do not name one).")(f)
    return click.option("--max-instances", type=int, default=None, help="Most instances per image "
                        "(default: the model's, 20).")(f)


def _predictor(model, size, grouper_overrides: dict):
    import dataclasses  # noqa: PLC0415

    from bbe_mobile.export.runtime import load_runner  # noqa: PLC0415
    from bbe_mobile.letterbox import canvas_side  # noqa: PLC0415
    from bbe_mobile.predictor import Predictor  # noqa: PLC0415

    runner = load_runner(model, input_size=canvas_side(size) if size else None)
    overrides = {k: v for k, v in grouper_overrides.items() if v is not None}
    grouper = dataclasses.replace(runner.grouper, **overrides)
    grouper.validate()
    return Predictor(runner, grouper, size or runner.input_size)


MODEL_HELP = "Model: a bundle directory (model.keras + bbe.json) or an exported artifact. Default: the bundled model."


@main.command()
@click.argument("images", nargs=-1, type=click.Path())
@click.option("--video", "video_path", default=None, type=click.Path(),
              help="Segment and track the people of this video instead of images (docs/tracker.md): writes "
                   "NAME.mp4 (overlay, one colour per person ID) and NAME.jsonl (one line per frame).")
@click.option("--main-person", is_flag=True, help="With --video: dim everyone but the main person in the overlay.")
@click.option("--model", default=None, type=click.Path(), help=MODEL_HELP)
@click.option("--out", "out_dir", default="predictions", show_default=True, type=click.Path(file_okay=False),
              help="Output directory: NAME.png overlay and NAME.json per image (NAME.mp4 and NAME.jsonl per video).")
@click.option("--size", type=int, default=None, help="Letterbox size: the image's longer side in input pixels "
              "(default: the model's input size, 512 for the bundled model).")
@_grouper_options
def predict(images, video_path, main_person, model, out_dir, size, **grouper_overrides):
    """Segment the people in IMAGES: a Figure-4-style overlay PNG and a JSON (boxes, scores, RLE masks in
    original image pixels) per image. With --video, the people of every frame with stable IDs."""
    from tqdm import tqdm  # noqa: PLC0415

    from bbe_mobile.letterbox import read_image  # noqa: PLC0415
    from bbe_mobile.predict_files import write_prediction  # noqa: PLC0415

    if bool(images) == bool(video_path):
        raise click.UsageError("give IMAGES or --video, not both" if images else "give IMAGES or --video")
    if main_person and not video_path:
        raise click.UsageError("--main-person needs --video")
    if video_path:
        _predict_video(video_path, main_person, model, out_dir, size, grouper_overrides)
        return
    loaded = [(path, read_image(path)) for path in images]  # every input checked before any work
    predictor = _predictor(model, size, grouper_overrides)
    # the bar only on a terminal (None: tqdm's own check) and for 2+ images; each image's line goes above it
    for path, image in tqdm(loaded, disable=True if len(loaded) < 2 else None, unit="img", dynamic_ncols=True):
        prediction = predictor.predict(image)
        png, js = write_prediction(out_dir, path, image, prediction)
        people = len(prediction.scores)
        tqdm.write(f"{path}: {people} {'person' if people == 1 else 'people'} -> {png}, {js}")


def _predict_video(video_path, main_person, model, out_dir, size, grouper_overrides: dict):
    from tqdm import tqdm  # noqa: PLC0415

    from bbe_mobile.predict_video import predict_video, probe_video  # noqa: PLC0415
    from bbe_mobile.video import VideoPredictor  # noqa: PLC0415

    probe_video(video_path)  # the input checked before the model loads
    video = VideoPredictor(_predictor(model, size, grouper_overrides))
    mp4, jsonl, frames = predict_video(
        video, video_path, out_dir, main_only=main_person,
        progress=lambda it, total: tqdm(it, total=total or None, unit="frame", dynamic_ncols=True, leave=False,
                                        disable=None))  # on a terminal only, as for images; frame/s is the rate
    click.echo(f"{video_path}: {frames} frames, {video.state.next_id - 1} people tracked -> {mp4}, {jsonl}")


@main.command(name="eval")
@click.option("--images", required=True, type=click.Path(), help="Images directory of a COCO-format set.")
@click.option("--annotations", required=True, type=click.Path(), help="COCO instances json (person category).")
@click.option("--model", default=None, type=click.Path(), help=MODEL_HELP)
@click.option("--size", type=int, default=None, help="Letterbox size: each image's larger side in input pixels "
              "(default: the model's input size, 512 for the bundled model; the paper's protocol: 961).")
@click.option("--results", default=None, type=click.Path(dir_okay=False), help="Write COCO results json here.")
@click.option("--metrics-json", default=None, type=click.Path(dir_okay=False),
              help="Write the 12 AP/AR figures and person_iou here.")
@click.option("--subset", type=click.Choice(["all", "multi", "single"]), default="all", show_default=True,
              help="Images to score: all, those with 2+ people, or those with exactly one.")
@click.option("--limit", type=int, default=None, help="Only the first N images (of the subset, json order).")
@_grouper_options
def eval_command(images, annotations, model, size, results, metrics_json, subset, limit, **grouper_overrides):
    """Mask AP/AR of the person category (pycocotools, 12-column table) and semantic person IoU."""
    from bbe_mobile.evaluate import evaluate, format_table, subset_ids  # noqa: PLC0415
    from bbe_mobile.training.data import CocoPersons  # noqa: PLC0415
    from bbe_mobile.utils.atomic import write_json  # noqa: PLC0415

    dataset = CocoPersons(images, annotations)
    ids = subset_ids(dataset, subset, limit)
    if not ids:
        raise ValueError(f"no images to evaluate in {annotations} (subset {subset})")
    dataset.image_ids = ids
    dataset.check_files()
    predictor = _predictor(model, size, grouper_overrides)
    coco_results, metrics = evaluate(predictor, dataset, ids)
    if results:
        write_json(results, coco_results)
    if metrics_json:
        write_json(metrics_json, metrics)
    click.echo(format_table(metrics))
    click.echo(f"person_iou {metrics['person_iou']:.3f} (pooled {metrics['person_iou_pooled']:.3f}) on "
               f"{metrics['images']} images, {len(coco_results)} instances, letterbox size {predictor.size} px")


@main.command()
@click.option("--out", "out_dir", default=str(paths.GOLDEN_DIR), show_default=True,
              type=click.Path(file_okay=False), help="Directory for the golden files (default: this checkout's).")
@click.option("--coco-images", default=str(paths.COCO_MINI_VAL), show_default=True,
              type=click.Path(), help="COCO images for the real-annotation cases (skipped if absent).")
@click.option("--coco-annotations", default=str(paths.COCO_MINI_VAL_ANNOTATIONS),
              show_default=True, type=click.Path())
def golden(out_dir, coco_images, coco_annotations):
    """Write the grouper golden vectors (edge cases, real COCO cases, benchmark cases, then the same in the refine
    mode with refine-only cases) and the tracking sequences (docs/tracker.md) for Python, Swift, Kotlin."""
    from bbe_mobile import golden as g  # noqa: PLC0415

    cases = g.edge_cases()
    if os.path.isfile(coco_annotations) and os.path.isdir(coco_images):
        cases += g.coco_cases(coco_images, coco_annotations)
    else:
        click.echo(f"{coco_annotations} not found: writing no COCO cases", err=True)
    cases += g.bench_cases()
    cases += g.refine_cases(cases)
    names = g.write_golden(out_dir, cases)
    click.echo(f"wrote {len(names)} cases to {out_dir}")
    from bbe_mobile import golden_tracking  # noqa: PLC0415

    sequences = golden_tracking.write_tracking_golden(out_dir, golden_tracking.sequences())
    click.echo(f"wrote {len(sequences)} tracking sequences to {out_dir}")


@main.command()
@click.option("--target", default="all", show_default=True,
              help="tflite, coreml, onnx, a comma list of them, or all.")
@click.option("--model", default=None, type=click.Path(), help="Model bundle directory (default: the bundled model).")
@click.option("--input-size", type=int, default=None, help="Input side in pixels, a multiple of 16 "
              "(default: the bundle's, 512).")
@click.option("--precision", default=None, help="Comma list or 'all'. tflite: fp32, fp16, dynamic-int8, int8 (full "
              "integer, calibrated), int8-selective (int8 with the 30 worst ops in float); coreml: fp16, fp32, int8 "
              "(linear weights), palette6, palette4; onnx: fp32. Default: the fastest that passes verification, "
              "tried in the order tflite int8, int8-selective, dynamic-int8, fp16, fp32; "
              "coreml int8, fp16, fp32; onnx fp32 (export.convert.DEFAULT_CHAIN).")
@click.option("--io-dtype", type=click.Choice(["float32", "int8", "uint8"]), default="float32", show_default=True,
              help="Input/output type of full-int8 TFLite (quantisation parameters go into the metadata).")
@click.option("--out", "out_dir", default="out/export", show_default=True, type=click.Path(file_okay=False),
              help="Output directory (artifacts and their NAME.verify.json reports).")
@click.option("--calibration-images", default=None, type=click.Path(),
              help="Images for full-int8 calibration, letterboxed like inference (default: "
                   f"{paths.COCO_MINI_TRAIN}, disjoint from the verification images).")
@click.option("--num-calibration", type=int, default=100, show_default=True,
              help="Calibration images (the first N by file name).")
@click.option("--opset", type=int, default=17, show_default=True, help="ONNX opset.")
@click.option("--coreml-input", type=click.Choice(["image", "tensor"]), default="image", show_default=True,
              help="Core ML input: ImageType (RGB pixel buffer, scale 1, bias 0) or a float32 NHWC tensor.")
@click.option("--min-target", type=click.Choice(["iOS15", "iOS16", "iOS17", "iOS18"]), default="iOS16",
              show_default=True, help="Core ML minimum deployment target (compression and flexible sizes: iOS16+).")
@click.option("--flexible-sizes", default=None, help="Core ML: extra input sides (comma list, multiples of 16) "
              "as EnumeratedShapes, e.g. 256,384.")
@click.option("--no-verify", is_flag=True, help="Skip verification against the Keras model on real images.")
@click.option("--verify-images", default=None, type=click.Path(),
              help=f"Verification images (default: {paths.COCO_MINI_VAL}).")
@click.option("--num-verify", type=int, default=20, show_default=True, help="Verification images used.")
@click.option("--num-accuracy", type=int, default=100, show_default=True,
              help="Held-out labelled images (beside --verify-images) for the mask AP against Keras (0: none).")
def convert(target, model, input_size, precision, io_dtype, out_dir, calibration_images, num_calibration, opset,
            coreml_input, min_target, flexible_sizes, no_verify, verify_images, num_verify, num_accuracy):
    """Export to TFLite / Core ML / ONNX with metadata; each artifact is verified before it is written."""
    from bbe_mobile.export import convert as conversion  # noqa: PLC0415
    from bbe_mobile.export.images import DEFAULT_CALIBRATION_DIR, ExportError  # noqa: PLC0415
    from bbe_mobile.modeling.bundle import load_bundle  # noqa: PLC0415

    targets = conversion.parse_targets(target)
    precisions, skipped = conversion.resolve_precisions(targets, precision)
    for t in skipped:
        click.echo(f"skipping {t}: it has none of the precisions {precision!r}", err=True)
    targets = list(precisions)
    sizes = conversion.parse_sizes(flexible_sizes)
    if input_size is not None and (input_size <= 0 or input_size % 16):
        raise ExportError(f"--input-size must be a positive multiple of 16, got {input_size}")
    calibration = calibration_images or (str(DEFAULT_CALIBRATION_DIR) if DEFAULT_CALIBRATION_DIR.is_dir() else None)
    options = conversion.ExportOptions(input_size=input_size, io_dtype=io_dtype, calibration_images=calibration,
                                       num_calibration=num_calibration, opset=opset, coreml_input=coreml_input,
                                       coreml_target=min_target, flexible_sizes=sizes)
    bundle = load_bundle(model)
    outcomes = conversion.convert(bundle, targets, precisions, out_dir, options, verify=not no_verify,
                                  verify_images=verify_images, num_verify=num_verify, num_accuracy=num_accuracy,
                                  log=click.echo,
                                  first_passing=precision is None)
    failed = [o for o in outcomes if o.status == "failed"]
    for o in outcomes:
        if o.status == "refused":
            click.echo(f"refused        {o.target:<7} {o.precision:<13} {o.message}")
        else:
            click.echo(f"{o.status:<14} {o.target:<7} {o.precision:<13} {o.path}"
                       + (f"  {o.result.size_bytes / 1e6:.3f} MB" if o.result and o.status != "failed" else ""))
    if precision is None:
        for o in outcomes:
            if o.status in ("ok", "unverified", "verify-skipped"):
                refused = [r.precision for r in outcomes if r.target == o.target and r.status == "refused"]
                why = {"ok": "the fastest variant that passed verification"
                             + (f"; refused: {', '.join(refused)}" if refused else ""),
                       "unverified": "the fastest default, not verified (--no-verify)",
                       "verify-skipped": f"not verified: {o.message}"}[o.status]
                click.echo(f"wrote {o.target} {o.precision} ({why}): {o.path}")
    if failed:
        click.echo(f"error: {len(failed)} of {len(outcomes)} conversions failed: "
                   + "; ".join(f"{o.target} {o.precision}: {o.message}" for o in failed), err=True)
        unverified = [(o.target, o.precision) for o in failed if o.report is not None]
        if unverified:
            passed = [(o.target, o.precision) for o in outcomes if o.status == "ok"]
            click.echo(conversion.verification_hint(unverified, passed), err=True)
        sys.exit(1)


@main.command(name="inspect")
@click.argument("artifact", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def inspect_command(artifact, as_json):
    """Inputs, outputs, shapes/dtypes, bbe metadata, file size and op histogram of an exported artifact."""
    import json  # noqa: PLC0415

    from bbe_mobile.export.artifact_info import describe, format_description  # noqa: PLC0415

    info = describe(artifact)
    click.echo(json.dumps(info, indent=1) if as_json else format_description(info))


@main.command(name="verify")
@click.argument("artifact", type=click.Path())
@click.option("--reference", default=None, type=click.Path(),
              help="Reference Keras bundle (default: the bundled model).")
@click.option("--images", default=None, type=click.Path(),
              help=f"Image directory (default: {paths.COCO_MINI_VAL}).")
@click.option("--num-images", type=int, default=20, show_default=True)
@click.option("--num-accuracy", type=int, default=100, show_default=True,
              help="Held-out labelled images (beside --images) for the mask AP against Keras (0: none).")
@click.option("--report", "report_path", default=None, type=click.Path(dir_okay=False), help="Write the JSON report.")
def verify_command(artifact, reference, images, num_images, num_accuracy, report_path):
    """Compare an exported artifact with its Keras model on real images; exit 1 if it fails the thresholds."""
    from bbe_mobile.export import verify  # noqa: PLC0415
    from bbe_mobile.export.images import DEFAULT_VERIFY_DIR  # noqa: PLC0415

    report = verify.verify(artifact, reference, images or str(DEFAULT_VERIFY_DIR), num_images, num_accuracy)
    if report_path:
        verify.write_report(report, report_path)
    click.echo(verify.format_report(report))
    if report["status"] == "failed":
        sys.exit(1)


@main.command(name="bench")
@click.option("--model", default=None, type=click.Path(), help="Model bundle directory (default: the bundled model).")
@click.option("--formats", default="keras,tflite-fp32,tflite-int8,onnx-fp32,coreml-fp16", show_default=True,
              help="Comma list (or 'all') of keras, tflite-fp32/fp16/dynamic-int8/int8/int8-selective, onnx-fp32, "
                   "coreml-fp16/fp32/int8/palette6/palette4.")
@click.option("--input-size", type=int, default=None, help="Input side (default: the bundle's, 512).")
@click.option("--threads", default=None, help="Comma list of CPU thread counts (default: 1 and all cores).")
@click.option("--device", default="host", show_default=True,
              help="Profile for labelled estimates: iphone7, iphone12, iphone15, pixel4, pixel8, host (or a .json).")
@click.option("--from-device", "from_device", multiple=True, type=click.Path(),
              help="bbe-bench/1 results exported by a demo app (docs/bench-format.md); repeatable.")
@click.option("--eval-images", default=None, type=click.Path(), help="COCO-format eval images (mask AP).")
@click.option("--eval-annotations", default=None, type=click.Path(), help="COCO instances json of --eval-images.")
@click.option("--eval-limit", type=int, default=50, show_default=True, help="Eval images used (0 = all).")
@click.option("--runs", type=int, default=30, show_default=True, help="Timed runs per model (after warm-up).")
@click.option("--warmup", type=int, default=5, show_default=True, help="Untimed warm-up runs per model.")
@click.option("--grouper-runs", type=int, default=100, show_default=True, help="Timed runs per grouper case.")
@click.option("--grouper-sources", default="numpy,swift,kotlin", show_default=True, help="Groupers to time.")
@click.option("--num-verify", type=int, default=10, show_default=True, help="Verification images per format.")
@click.option("--num-accuracy", type=int, default=100, show_default=True,
              help="Held-out labelled images (beside --verify-images) for the mask AP of each format against "
                   "Keras (0: none).")
@click.option("--verify-images", default=None, type=click.Path(),
              help=f"Verification and timing images (default: {paths.COCO_MINI_VAL}).")
@click.option("--num-calibration", type=int, default=100, show_default=True, help="int8 calibration images.")
@click.option("--calibration-images", default=None, type=click.Path(),
              help=f"int8 calibration images (default: {paths.COCO_MINI_TRAIN}).")
@click.option("--no-peers", is_flag=True, help=f"Skip the peer models in {paths.SHARED / 'peers'}.")
@click.option("--out", "out_dir", default="bench_out", show_default=True, type=click.Path(file_okay=False))
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def bench_command(model, formats, input_size, threads, device, from_device, eval_images, eval_annotations, eval_limit,
                  runs, warmup, grouper_runs, grouper_sources, num_verify, num_accuracy, verify_images, num_calibration,
                  calibration_images, no_peers, out_dir, no_progress):
    """Speed, size and accuracy per format and per grouper, against the paper's 1-2 ms grouping target."""
    from bbe_mobile.bench.options import BenchOptions, parse_formats, parse_threads  # noqa: PLC0415
    from bbe_mobile.bench.report import format_markdown  # noqa: PLC0415
    from bbe_mobile.bench.run import run_bench, write_outputs  # noqa: PLC0415

    options = BenchOptions(
        model=model, formats=parse_formats(formats), input_size=input_size,
        threads=parse_threads(threads) if threads else BenchOptions().threads, device=device,
        from_device=tuple(from_device), eval_images=eval_images, eval_annotations=eval_annotations,
        eval_limit=eval_limit or None, runs=runs, warmup=warmup, grouper_runs=grouper_runs,
        grouper_sources=tuple(s.strip() for s in grouper_sources.split(",") if s.strip()), num_verify=num_verify,
        num_accuracy=num_accuracy,
        verify_images=verify_images, num_calibration=num_calibration, calibration_images=calibration_images,
        peers=not no_peers, out=out_dir, progress=not no_progress)
    result = run_bench(options, log=lambda m: click.echo(m, err=True))
    paths = write_outputs(result, out_dir)
    click.echo(format_markdown(result))
    click.echo("wrote " + ", ".join(str(p) for p in paths.values()))


if __name__ == "__main__":
    main()
