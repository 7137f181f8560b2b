"""``predict``'s output pair: both files are complete before either is renamed into place (issue 15's kill run
found a PNG without its JSON: the JSON used to be encoded and written after the PNG was in place)."""
from __future__ import annotations

import json

import numpy as np

from bbe_mobile import predict_files
from bbe_mobile.utils import atomic
from test_visualize import one_person


def test_both_files_are_whole_before_the_first_rename(tmp_path, monkeypatch):
    seen = []
    rename = atomic.replace_path

    def spy(src, dst):
        temps = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-"))
        seen.append((dst.name, temps, [p.stat().st_size > 0 for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]))
        rename(src, dst)

    monkeypatch.setattr(atomic, "replace_path", spy)
    prediction = one_person(40, 60)
    png, js = predict_files.write_prediction(str(tmp_path), "dir/photo.jpg", np.zeros((40, 60, 3), np.uint8),
                                             prediction)
    assert [name for name, _, _ in seen] == ["photo.png", "photo.json"]
    first_temps, first_sizes = seen[0][1], seen[0][2]
    assert len(first_temps) == 2 and all(first_sizes)  # PNG and JSON both written before the PNG's rename
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.json", "photo.png"]
    assert json.loads(js.read_text())["image"] == "dir/photo.jpg" and png.stat().st_size > 0
