"""benchmarks/video_tracking.py end to end on a tiny model (its figures are not checked: a random model tracks
nothing in particular; what is checked is that every clip, setting and measure appears)."""
import pytest

from conftest import COCO, load_benchmark, need


@pytest.mark.slow  # tiny model on six 3-frame clips (~15 s)
def test_video_tracking_prints_every_clip_and_measure(tiny_bundle, capsys):
    need(COCO / "instances_person_val.json")
    bench = load_benchmark("video_tracking")
    assert bench.main(["--model", tiny_bundle, "--frames", "3", "--size", "64"]) == 0
    out = capsys.readouterr().out
    for clip in ("pan", "zoom", "still", "walk", "enter_leave", "pass_in_front"):
        assert f"| {clip} | smoothing |" in out and f"| {clip} | no smoothing |" in out
    assert "mean flicker, smoothing:" in out and "frames/s at letterbox 64" in out
    assert "ID switches on clips without overlap" in out


def test_clip_truth_is_known_by_construction():
    """The pasted person's true mask is where its pixels went, and it hides the person behind it."""
    import numpy as np

    bench = load_benchmark("video_tracking")
    frame = np.zeros((bench.FRAME_H, bench.FRAME_W, 3), np.uint8)
    behind = np.zeros((bench.FRAME_H, bench.FRAME_W), bool)
    behind[50:150, 100:140] = True
    person = (np.full((60, 20, 3), 200, np.uint8), np.ones((60, 20), bool))
    out, masks = bench.paste(frame, [behind], person, 110, 40)
    assert masks[1].sum() == 60 * 20 and (out[masks[1]] == 200).all()
    assert masks[0].sum() == 100 * 40 - 50 * 20  # rows 50-99, columns 110-129 are hidden
    gone = bench.paste(frame, [], person, -30, 40)[1][0]
    assert not gone.any()
