"""Writes mutated input files for the Swift and Kotlin readers (issue 15): golden grouper cases and ``bbe`` model
metadata, mutated by the same hypothesis strategies that fuzz the Python readers (``fuzz_mutations.py``). The
Swift (``FuzzCorpusTests``) and Kotlin (``FuzzCorpusTest``) suites read every file of the corpus named by
``BBE_FUZZ_CORPUS`` / ``-Dbbe.fuzz.corpus``; each must be read or refused with the reader's own one-line error.
``ios_demo/test.sh`` and ``android_demo/grouper/test.sh`` call this script when the variable is not set.

    python tests/fuzz_corpus.py OUT [--examples 300] [--seed 0]

Layout (``--examples`` of each kind; the same seed gives the same files):

* ``OUT/golden/NNNN/``: ``index.json`` and ``touching.json`` (a copy of ``tests/golden``'s case, each mutated) with
  the case's raw data files, some cut short;
* ``OUT/metadata/NNNN.json``: the text of a mutated ``bbe`` metadata object (sometimes cut short: not JSON);
* ``edge-NN`` beside them: the hand-picked inputs of ``GOLDEN_EDGES`` and ``DEEP_JSON``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as seed_test
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_mutations import file_text  # noqa: E402

from bbe_mobile.export.artifact_info import make_metadata  # noqa: E402
from bbe_mobile.grouper import GrouperConfig  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "golden"
GOLDEN_CASE = "touching"
RAW_KEYS = ("prob_file", "offsets_file", "labels_file")
# Hand-picked inputs written besides the random ones: sizes whose product overflows 64 bits (Swift traps) or wraps
# to 0 in 32 bits (with empty data files, Kotlin would accept it), negative sizes with a positive product that
# matches the data files, an image block with huge sizes, strings with line breaks where numbers belong (error
# messages must stay one line), and JSON nested too deep for a recursive parser.
GOLDEN_EDGES = (({"height": 2 ** 33, "width": 2 ** 33}, False), ({"height": 65536, "width": 65536}, True),
                ({"height": -32, "width": -32}, False), ({"stride": "two\nlines", "height": "3\n2"}, False),
                ({"image": {"height": 2 ** 33, "width": 2 ** 33, "scale": 1.0, "labels_file": "touching.labels.i32",
                            "boxes": []}}, False))
DEEP_JSON = "[" * 100_000 + "]" * 100_000
METADATA = make_metadata(input_size=64, stride=4, grouper=GrouperConfig(), model_name="tiny", model_version="1",
                         precision="fp32")


def write_golden_cases(out: Path, examples: int, seed: int) -> int:
    """``examples`` mutated copies of the golden case ``touching`` under ``out/golden``; returns how many."""
    doc = json.loads((GOLDEN / f"{GOLDEN_CASE}.json").read_text())
    raws = {doc[key]: (GOLDEN / doc[key]).read_bytes() for key in RAW_KEYS}

    @st.composite
    def golden_files(draw) -> dict[str, bytes]:
        files = {name: raw[: draw(st.integers(0, len(raw)))] if draw(st.booleans()) else raw
                 for name, raw in raws.items()}
        files[f"{GOLDEN_CASE}.json"] = draw(file_text(doc)).encode()
        files["index.json"] = draw(file_text({"format": 1, "cases": [GOLDEN_CASE]})).encode()
        return files

    edges = []
    for overrides, cut in GOLDEN_EDGES:
        files = {name: b"" if cut else raw for name, raw in raws.items()}
        files[f"{GOLDEN_CASE}.json"] = json.dumps({**doc, **overrides}).encode()
        edges.append(files)
    edges.append({**raws, f"{GOLDEN_CASE}.json": DEEP_JSON.encode(), "index.json": DEEP_JSON.encode()})
    index = json.dumps({"format": 1, "cases": [GOLDEN_CASE]}).encode()
    named = [(f"edge-{i:02d}", {"index.json": index, **files}) for i, files in enumerate(edges)]
    named += [(f"{i:04d}", files) for i, files in enumerate(_draw(golden_files(), examples, seed))]
    for name, files in named:
        d = out / "golden" / name
        d.mkdir(parents=True)
        for file, raw in files.items():
            (d / file).write_bytes(raw)
    return len(named)


def write_metadata(out: Path, examples: int, seed: int) -> int:
    """``examples`` mutated ``bbe`` metadata texts as ``out/metadata/NNNN.json``; returns how many."""
    directory = out / "metadata"
    directory.mkdir(parents=True)
    (directory / "edge-00.json").write_text(DEEP_JSON)
    (directory / "edge-01.json").write_text(json.dumps({**METADATA, "stride": "two\nlines"}))
    texts = _draw(file_text(METADATA), examples, seed)
    for i, text in enumerate(texts):
        (directory / f"{i:04d}.json").write_text(text)
    return len(texts) + 2


def _draw(strategy, examples: int, seed: int) -> list:
    """``examples`` values of ``strategy`` as hypothesis generates them for a test, with its random choices fixed
    by ``seed`` (the same corpus on every machine). Collected first, written after: hypothesis may abandon a
    value half-drawn."""
    values = []

    @seed_test(seed)
    @settings(max_examples=examples, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(value=strategy)
    def collect(value):
        values.append(value)

    collect()
    return values[:examples]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="Directory to write (must not exist or be empty).")
    parser.add_argument("--examples", type=int, default=300, help="Inputs of each kind (default 300).")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.examples < 1:
        parser.error("--examples must be at least 1")
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} is not empty")
    args.out.mkdir(parents=True, exist_ok=True)
    golden = write_golden_cases(args.out, args.examples, args.seed)
    metadata = write_metadata(args.out, args.examples, args.seed)
    print(f"{args.out}: {golden} golden cases, {metadata} metadata texts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
