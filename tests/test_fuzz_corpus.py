"""``fuzz_corpus.py``, the mutated files the Swift and Kotlin readers are fuzzed with: it writes the same files for
the same seed, and the Python readers keep their contract on every one (read, or refused in one line naming the
file), so the three languages are held to the same inputs."""
from __future__ import annotations

import json

import pytest

from bbe_mobile.export.artifact_info import ArtifactError, parse_metadata
from bbe_mobile.golden import GoldenFormatError, read_golden, read_golden_index
from fuzz_corpus import GOLDEN_EDGES, main


def _files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_corpus_and_python_readers_keep_their_contract(tmp_path, capsys):
    for name in ("a", "b"):
        assert main([str(tmp_path / name), "--examples", "25", "--seed", "3"]) == 0
    assert f"{tmp_path / 'a'}: {25 + len(GOLDEN_EDGES) + 1} golden cases, 27 metadata texts" in capsys.readouterr().out
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    golden_read = metadata_read = 0
    for directory in sorted((tmp_path / "a" / "golden").iterdir()):
        try:
            for name in read_golden_index(directory):
                read_golden(directory, name)
            golden_read += 1
        except GoldenFormatError as exc:
            assert "\n" not in str(exc) and str(directory) in str(exc), str(exc)
    for path in sorted((tmp_path / "a" / "metadata").iterdir()):
        try:
            parse_metadata(path.read_text(), str(path))
            metadata_read += 1
        except ArtifactError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc), str(exc)
    edge = json.loads((tmp_path / "a" / "golden" / "edge-00" / "touching.json").read_text())
    assert edge["height"] == edge["width"] == 2 ** 33
    assert 0 < golden_read < 31 and 0 < metadata_read < 27  # some inputs still valid, most refused


def test_refuses_a_non_empty_directory(tmp_path, capsys):
    (tmp_path / "x").write_text("")
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path), "--examples", "1"])
    assert exit_info.value.code == 2
    assert "is not empty" in capsys.readouterr().err
