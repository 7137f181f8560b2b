"""Kill stress (issue 15): SIGKILL ``bbe-mobile convert`` (tflite, onnx, coreml), ``train``, ``predict`` and
``eval`` at random moments and check what each kill leaves behind.

Each command first runs once unkilled (its typical run time in seconds, and a check that its outputs are complete);
then it is run until ``--kills`` runs were really killed: every even run after a delay drawn uniformly between 0
and that time (seeded RNG), every odd one while it writes: the script polls the directories the command writes
(for ``train`` the run directory, its checkpoints and its snapshots) and kills the moment their listing changes
for the k-th time (k drawn at random), e.g. as a temporary file appears or a checkpoint is being saved. A run
that ends before its k-th write is checked too and counted as "exited first", not as a kill. After each run:

* convert: each artifact in the output directory passes ``bbe_mobile.export.verify`` against the bundle, each
  ``NAME.verify.json`` parses;
* predict: every ``.png`` opens, every ``.json`` parses and has the predict schema, every JSON has its PNG (the
  JSON is the record, renamed into place last: at most one PNG, the one being written, may lack its JSON);
* eval: ``--results`` and ``--metrics-json`` are absent or parse with their schema;
* train: every snapshot and the final bundle are absent or load; the same command rerun with ``--max-steps 1``
  says it resumes and starts at the newest intact checkpoint (0 and no such line when there is none).

Outcomes: ``nothing`` (no output), ``partial`` (some outputs, each complete), ``complete``, ``resumed`` (train
restarted from a checkpoint). Hidden temporary files (``.tmp-*``, ``.old-*``, TensorFlow's ``*_temp``) a kill
leaves are counted, not failed: no reader takes them for outputs. Prints one line per kill and a table; exits 1 on
any failure. Tiny settings (a 64 px random-weight bundle, a few images) keep one kill to seconds.

    PYTHONPATH=. python benchmarks/kill_stress.py --kills 20 --seed 0
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("BBE_SHARED", ROOT.parent / "shared")) / "data" / "coco-person-mini"
COMMANDS = ("convert-tflite", "convert-onnx", "convert-coreml", "train", "predict", "eval")
OUTCOMES = ("nothing", "partial", "complete", "resumed")
TEMP_NAME = re.compile(r"^\.tmp-|^\.old-|_temp\b|_temp$")
ARTIFACT_SUFFIXES = (".tflite", ".onnx", ".mlpackage")
TRAIN_STEPS = 12  # steps of the killed training run (checkpoint every 2, snapshot every 4)
IMAGE_SIDE = 64  # pixels: bundle input, training crop


@dataclass(frozen=True)
class Fixture:
    """What the commands work on: a tiny bundle and small image sets, all under ``work``."""

    work: Path
    data: Path
    bundle: Path
    calibration: Path  # int8 calibration images (links to train images)
    verify: Path  # verification images (links to val images)
    predict_images: tuple[str, ...]
    eval_limit: int


@dataclass
class Check:
    """What one kill left: its outcome, the problems found (each a failure) and the temporary files left."""

    outcome: str
    problems: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class Tally:
    """Counts for one command over its runs: ``kills`` were SIGKILLed, ``exited`` ended before their kill
    came (a write-triggered kill whose k-th write never happened); both are checked and counted in the outcomes."""

    kills: int = 0
    exited: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    failures: int = 0
    leftovers: int = 0  # kills that left temporary files
    typical_s: float = 0.0


def cli(*args) -> list[str]:
    """The ``bbe-mobile`` command line run with this interpreter."""
    return [sys.executable, "-m", "bbe_mobile.cli", *map(str, args)]


def _link_images(directory: Path, source: Path, count: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for image in sorted(p for p in source.iterdir() if p.suffix.lower() == ".jpg")[:count]:
        (directory / image.name).symlink_to(image)
    return directory


def make_fixture(work: Path, data: Path = DATA, images: int = 3) -> Fixture:
    """Build the tiny bundle (64 px input, alpha 0.35, 16 ASPP/decoder filters, random weights) and link
    ``images`` calibration, verification and predict images from ``data`` into ``work``."""
    from bbe_mobile.grouper import GrouperConfig  # noqa: PLC0415
    from bbe_mobile.modeling.bundle import save_bundle  # noqa: PLC0415
    from bbe_mobile.modeling.network import ModelConfig, build_bbe  # noqa: PLC0415

    work.mkdir(parents=True, exist_ok=True)
    config = ModelConfig(alpha=0.35, aspp_filters=16, decoder_filters=16)
    model = build_bbe(IMAGE_SIDE, alpha=0.35, aspp_filters=16, decoder_filters=16)
    bundle = save_bundle(work / "tiny", model, config, IMAGE_SIDE, GrouperConfig(), "tiny")
    verify = _link_images(work / "verify", data / "val", images)
    return Fixture(work, data, bundle, _link_images(work / "calibration", data / "train", images), verify,
                   tuple(str(p) for p in sorted(verify.iterdir())), eval_limit=5)


def command_line(command: str, fx: Fixture, out: Path) -> list[str]:
    """The command line of ``command`` (one of COMMANDS) writing into ``out``."""
    if command.startswith("convert-"):
        n = len(list(fx.verify.iterdir()))
        return cli("convert", "--target", command.split("-", 1)[1], "--model", fx.bundle, "--out", out,
                   "--calibration-images", fx.calibration, "--num-calibration", n, "--verify-images", fx.verify,
                   "--num-verify", n)
    if command == "train":
        return cli("train", "--train-set", fx.data / "train", fx.data / "instances_person_train.json", "--out", out,
                   "--crop", IMAGE_SIDE, "--base-size", IMAGE_SIDE, "--input-size", IMAGE_SIDE, "--batch-size", 2,
                   "--steps1", TRAIN_STEPS, "--steps2", 0, "--checkpoint-every", 2, "--snapshot-every", 4)
    if command == "predict":
        return cli("predict", *fx.predict_images, "--model", fx.bundle, "--out", out)
    if command == "eval":
        return cli("eval", "--images", fx.data / "val", "--annotations", fx.data / "instances_person_val.json",
                   "--model", fx.bundle, "--limit", fx.eval_limit, "--results", out / "results.json",
                   "--metrics-json", out / "metrics.json")
    raise ValueError(f"unknown command {command!r}: use one of {', '.join(COMMANDS)}")


def run_and_kill(args: list[str], delay: float, log: Path, trigger: Callable[[], bool] | None = None,
                 poll: float = 0.002) -> tuple[bool, float]:
    """Run ``args`` and SIGKILL it (its whole process group) ``delay`` seconds after start, or as soon as
    ``trigger()`` is true if given. Returns (killed while still running, seconds from start to kill or exit).
    Output goes to ``log``."""
    with open(log, "wb") as sink:
        proc = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    start = time.perf_counter()
    try:
        while proc.poll() is None:
            elapsed = time.perf_counter() - start
            if (trigger is not None and trigger()) or elapsed >= delay:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return True, elapsed
            time.sleep(poll)
        return False, time.perf_counter() - start
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def directory_changes(directories: list[Path], count: int) -> Callable[[], bool]:
    """A trigger that turns true at the ``count``-th change of the listings of ``directories`` (an entry
    appearing or going: a temporary file or directory, a renamed output, a checkpoint's files)."""
    seen = {"names": None, "changes": 0}

    def listing(directory: Path) -> frozenset:
        try:
            return frozenset(os.listdir(directory))
        except FileNotFoundError:
            return frozenset()

    def changed() -> bool:
        names = tuple(listing(d) for d in directories)
        if seen["names"] is not None and names != seen["names"]:
            seen["changes"] += 1
        seen["names"] = names
        return seen["changes"] >= count

    return changed


def watched(command: str, out: Path) -> tuple[list[Path], int]:
    """The directories whose changes mark ``command``'s writes into ``out``, and about how many changes one run
    makes (the most a write-time kill waits for)."""
    if command == "train":
        return [out, out / "checkpoints", out / "snapshots"], 24
    return [out], {"predict": 12}.get(command, 4)


def leftover_temps(out: Path) -> list[str]:
    """Temporary paths (relative to ``out``) a killed writer left: ``.tmp-*``, ``.old-*``, ``*_temp``."""
    if not out.exists():
        return []
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if TEMP_NAME.search(p.name))


def _visible(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if not p.name.startswith(".")) if directory.is_dir() else []


def check_convert(out: Path, fx: Fixture) -> Check:
    """Each artifact in ``out`` passes verify against the bundle; each report parses."""
    from bbe_mobile.export import verify  # noqa: PLC0415

    problems, artifacts = [], []
    for path in _visible(out):
        if path.name.endswith(".verify.json"):
            try:
                status = json.loads(path.read_text())["status"]
                if status not in ("passed", "failed", "skipped"):
                    problems.append(f"{path.name}: status {status!r}")
            except (ValueError, KeyError, TypeError) as exc:
                problems.append(f"{path.name} does not parse: {type(exc).__name__}: {exc}")
        elif path.suffix in ARTIFACT_SUFFIXES:
            artifacts.append(path)
            try:
                report = verify.verify(str(path), str(fx.bundle), str(fx.verify), len(list(fx.verify.iterdir())))
                if report["status"] != "passed":
                    problems.append(f"{path.name} fails verify: {verify.failure_summary(report)}")
            except Exception as exc:  # noqa: BLE001 - any error means a broken artifact
                problems.append(f"{path.name} fails verify: {type(exc).__name__}: {str(exc)[:200]}")
        else:
            problems.append(f"unexpected output {path.name}")
    return Check("complete" if artifacts else "nothing", problems)


def _prediction_schema_problem(doc) -> str | None:
    if not isinstance(doc, dict) or not {"image", "height", "width", "instances"} <= set(doc):
        return "not an object with image, height, width, instances"
    for inst in doc["instances"]:
        if not (isinstance(inst, dict) and isinstance(inst.get("box"), list) and len(inst["box"]) == 4
                and isinstance(inst.get("score"), float) and isinstance(inst.get("segmentation"), dict)
                and {"size", "counts"} <= set(inst["segmentation"])):
            return f"instance {inst!r:.80} lacks box/score/segmentation"
    return None


def check_predict(out: Path, fx: Fixture) -> Check:
    """Every PNG opens, every JSON parses with the predict schema and has its PNG; at most one PNG lacks its JSON
    (a kill between the two renames of ``write_prediction``: a complete overlay whose record was not written)."""
    from PIL import Image  # noqa: PLC0415

    problems, stems = [], {}
    for path in _visible(out):
        stems.setdefault(path.stem, set()).add(path.suffix)
        try:
            if path.suffix == ".png":
                with Image.open(path) as image:
                    image.load()
            elif path.suffix == ".json":
                problem = _prediction_schema_problem(json.loads(path.read_text()))
                if problem:
                    problems.append(f"{path.name}: {problem}")
            else:
                problems.append(f"unexpected output {path.name}")
        except Exception as exc:  # noqa: BLE001 - any error means a damaged output
            problems.append(f"{path.name} is damaged: {type(exc).__name__}: {exc}")
    unrecorded = sorted(stem for stem, s in stems.items() if s == {".png"})
    problems += [f"{stem}: only {'/'.join(sorted(s))}" for stem, s in stems.items()
                 if s != {".png", ".json"} and s != {".png"}]
    if len(unrecorded) > 1:
        problems.append(f"{len(unrecorded)} overlays without their JSON ({', '.join(unrecorded)}); at most one may")
    recorded = len(stems) - len(unrecorded)
    outcome = "nothing" if not recorded else "complete" if recorded == len(fx.predict_images) else "partial"
    return Check(outcome, problems, note=f"{unrecorded[0]}.png without its JSON" if unrecorded else "")


def check_eval(out: Path, fx: Fixture) -> Check:
    """``results.json`` and ``metrics.json`` are absent or parse with their schema."""
    problems, present = [], 0
    for name, ok in (("results.json", lambda d: isinstance(d, list) and all(
                         isinstance(r, dict) and {"image_id", "category_id", "segmentation", "score"} <= set(r)
                         for r in d)),
                     ("metrics.json", lambda d: isinstance(d, dict) and "person_iou" in d and "images" in d)):
        path = out / name
        if not path.exists():
            continue
        present += 1
        try:
            if not ok(json.loads(path.read_text())):
                problems.append(f"{name} does not have the expected schema")
        except ValueError as exc:
            problems.append(f"{name} does not parse: {exc}")
    unexpected = [p.name for p in _visible(out) if p.name not in ("results.json", "metrics.json")]
    problems += [f"unexpected output {name}" for name in unexpected]
    return Check(("nothing", "partial", "complete")[present], problems)


def newest_intact_step(checkpoints: Path) -> int:
    """Step of the newest ``ckpt-N`` in ``checkpoints`` whose every tensor reads back (0: none)."""
    from bbe_mobile.training.train import checkpoint_problem, checkpoint_steps  # noqa: PLC0415

    return next((s for s in checkpoint_steps(checkpoints) if checkpoint_problem(str(checkpoints / f"ckpt-{s}"))
                 is None), 0)


def bundle_problems(out: Path) -> list[str]:
    """Each snapshot in ``out/snapshots`` and the final bundle in ``out`` is absent or loads."""
    from bbe_mobile.modeling.bundle import CONFIG_FILE, MODEL_FILE, load_bundle  # noqa: PLC0415

    problems = []
    for directory in [out, *sorted((out / "snapshots").glob("step-*"))]:
        present = [(directory / f).exists() for f in (MODEL_FILE, CONFIG_FILE)]
        if directory == out and not any(present):
            continue
        try:
            load_bundle(str(directory))
        except Exception as exc:  # noqa: BLE001 - any error means a damaged bundle
            problems.append(f"{directory.relative_to(out) or '.'} is not a loadable bundle "
                            f"({MODEL_FILE} {'present' if present[0] else 'absent'}, {CONFIG_FILE} "
                            f"{'present' if present[1] else 'absent'}): {type(exc).__name__}: {str(exc)[:120]}")
    return problems


def check_train(out: Path, fx: Fixture, log: Path) -> Check:
    """Snapshots and the final bundle are absent or load; the same command rerun with ``--max-steps 1`` says it
    resumes and starts at the newest intact checkpoint (0 without one); afterwards every snapshot loads."""
    problems = bundle_problems(out)
    leftovers = leftover_temps(out)
    finished = (out / "bbe.json").exists()
    expected = newest_intact_step(out / "checkpoints")
    rerun = subprocess.run(command_line("train", fx, out) + ["--max-steps", "1"], capture_output=True, text=True)
    log.write_text(rerun.stdout + rerun.stderr)
    match = re.search(r"^steps \d+/\d+ \(from (\d+)\)", rerun.stdout, re.MULTILINE)
    if rerun.returncode != 0 or not match:
        tail = (rerun.stderr.strip() or rerun.stdout.strip()).splitlines()[-1:] or ["no output"]
        return Check("nothing", problems + [f"rerun exit {rerun.returncode}: {tail[0]}"], leftovers)
    start, says = int(match.group(1)), "resuming from" in rerun.stdout
    if start != expected:
        problems.append(f"rerun started at step {start}, the newest intact checkpoint is step {expected}")
    if says != (expected > 0):
        problems.append(f"rerun {'says' if says else 'does not say'} it resumes (newest intact step {expected})")
    problems += [f"after the rerun: {p}" for p in bundle_problems(out)]
    outcome = "complete" if finished else "resumed" if expected else "nothing"
    return Check(outcome, problems, leftovers, note=f"rerun from step {start}")


def check(command: str, out: Path, fx: Fixture, log: Path) -> Check:
    """Check what a (killed or finished) run of ``command`` left in ``out``."""
    if command == "train":
        return check_train(out, fx, log.with_suffix(".rerun.log"))
    checker = check_convert if command.startswith("convert-") else check_predict if command == "predict" \
        else check_eval
    result = checker(out, fx)
    result.leftovers = leftover_temps(out)
    return result


def measure(command: str, fx: Fixture, work: Path) -> float:
    """Seconds one unkilled run of ``command`` takes; raises RuntimeError if it fails or its outputs do not
    check as complete."""
    out, log = work / f"{command}-measure", work / f"{command}-measure.log"
    killed, seconds = run_and_kill(command_line(command, fx, out), float("inf"), log)
    result = check(command, out, fx, log)
    if result.problems or result.outcome != "complete":
        raise RuntimeError(f"{command}: the unkilled run left {result.outcome} ({'; '.join(result.problems)}); "
                           f"see {log}")
    shutil.rmtree(out, ignore_errors=True)
    return seconds


def kill_and_check(command: str, fx: Fixture, out: Path, delay: float,
                   trigger: Callable[[], bool] | None = None) -> tuple[Check, str, bool]:
    """Run ``command`` writing into ``out`` (emptied first), SIGKILL it after ``delay`` seconds or when
    ``trigger()`` turns true, and check what it left. Returns the check, when it was killed (or exited) and
    whether it was killed. The run's output goes to ``out`` + ``.log``."""
    shutil.rmtree(out, ignore_errors=True)
    log = out.parent / f"{out.name}.log"
    killed, seconds = run_and_kill(command_line(command, fx, out), delay, log, trigger)
    return check(command, out, fx, log), f"{'killed' if killed else 'exited'} at {seconds:.2f} s", killed


def kill_once(command: str, fx: Fixture, work: Path, index: int, typical: float, rng: random.Random,
              keep: bool = False) -> tuple[Check, str, bool]:
    """Kill run ``index`` of ``command`` and check what is left. Even ``index``: after a random delay in
    [0, ``typical``] s; odd: at the k-th change (k random) of the directories it writes (``watched``), i.e.
    while an output, a checkpoint or a snapshot is being written. Returns the check, how it was killed and
    whether it was (see ``kill_and_check``)."""
    out = work / f"{command}-{index:03d}"
    if index % 2:
        directories, most = watched(command, out)
        k = rng.randint(1, most)
        result, how, killed = kill_and_check(command, fx, out, 3 * typical, directory_changes(directories, k))
        how += f" (write #{k})"
    else:
        result, how, killed = kill_and_check(command, fx, out, rng.uniform(0.0, typical))
    if not result.problems and not keep:
        shutil.rmtree(out, ignore_errors=True)
    return result, how, killed


def stress(commands: list[str], kills: int, seed: int, fx: Fixture, work: Path, keep: bool = False,
           say=print) -> dict[str, Tally]:
    """Runs of each of ``commands`` until ``kills`` of them were really killed (runs that exit before their kill
    comes are checked and counted apart; at most 3 x ``kills`` runs each), taken in turns (run 0 of each command,
    then run 1...), one line per run through ``say``; returns the counts. KeyboardInterrupt (``main`` raises it
    on SIGINT and SIGTERM) stops early with the counts so far."""
    rng = random.Random(seed)
    tallies = {command: Tally() for command in commands}
    try:
        for command in commands:
            tallies[command].typical_s = measure(command, fx, work)
            say(f"{command}: an unkilled run takes {tallies[command].typical_s:.1f} s", flush=True)
        for i in range(3 * kills):
            for command in [c for c in commands if tallies[c].kills < kills]:
                tally = tallies[command]
                result, how, killed = kill_once(command, fx, work, i, tally.typical_s, rng, keep)
                tally.kills += killed
                tally.exited += not killed
                tally.outcomes[result.outcome] += 1
                tally.failures += bool(result.problems)
                tally.leftovers += bool(result.leftovers)
                say(f"  {command} #{i:<3} {how} -> {result.outcome}"
                    + (f", {result.note}" if result.note else "")
                    + (f"; left {', '.join(result.leftovers)}" if result.leftovers else "")
                    + "".join(f"\n    FAIL {p}" for p in result.problems), flush=True)
    except KeyboardInterrupt:
        say("interrupted: the counts below are the kills done so far", flush=True)
    return tallies


def format_table(tallies: dict[str, Tally]) -> str:
    """Markdown table: per command its typical run time (s), kills, runs that exited first, outcomes (of both),
    runs leaving temporary files, failures."""
    lines = ["| command | unkilled run (s) | kills | exited first | " + " | ".join(OUTCOMES)
             + " | left temp files | failures |", "|---|---:|---:|---:|" + "---:|" * (len(OUTCOMES) + 2)]
    for command, t in tallies.items():
        lines.append(f"| {command} | {t.typical_s:.1f} | {t.kills} | {t.exited} | "
                     + " | ".join(str(t.outcomes[o]) for o in OUTCOMES) + f" | {t.leftovers} | {t.failures} |")
    return "\n".join(lines)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="Kills per command (default 20).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the kill times (default 0).")
    parser.add_argument("--commands", default=",".join(COMMANDS),
                        help=f"Comma list of {', '.join(COMMANDS)} (default: all).")
    parser.add_argument("--work", default=None, help="Working directory (default: a fresh temporary one, removed "
                        "unless a kill failed).")
    parser.add_argument("--keep", action="store_true", help="Keep every kill's outputs (default: only failures').")
    args = parser.parse_args(argv)
    commands = [c.strip() for c in args.commands.split(",") if c.strip()]
    unknown = [c for c in commands if c not in COMMANDS]
    if unknown or args.kills < 0:
        print(f"error: {'unknown command ' + ', '.join(unknown) if unknown else '--kills must be >= 0'} "
              f"(commands: {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    if not (DATA / "instances_person_val.json").is_file() or not (DATA / "instances_person_train.json").is_file():
        print(f"skipped: {DATA} (val/, train/ and their instances_person_*.json) is absent; set BBE_SHARED to the "
              "directory holding data/coco-person-mini")
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for signum in (signal.SIGINT, signal.SIGTERM):  # stop early with the table (also when started with nohup ... &)
        signal.signal(signum, _interrupt)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bbe-kill-stress-"))
    fx = make_fixture(work)
    started = time.time()
    tallies = stress(commands, args.kills, args.seed, fx, work, args.keep)
    print(f"\n{sum(t.kills for t in tallies.values())} kills ({sum(t.exited for t in tallies.values())} more runs "
          f"exited before their kill), seed {args.seed}, {time.time() - started:.0f} s\n")
    print(format_table(tallies))
    failed = sum(t.failures for t in tallies.values())
    if failed:
        print(f"\n{failed} kill(s) failed; their outputs and logs are in {work}")
    elif not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
