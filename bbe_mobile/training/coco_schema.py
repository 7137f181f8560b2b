"""Validation of a COCO instances document before anything uses it (annotation files are untrusted input).

``check_coco(doc, source)`` checks every field the toolkit and pycocotools read: ``images`` (``id``,
``file_name`` inside the images directory, ``height``/``width`` in 1..``MAX_SIDE`` pixels), ``categories``
(``id``, ``name``) and ``annotations`` (``id``, ``image_id`` and ``category_id`` that exist, ``iscrowd`` 0/1,
``area`` >= 0, ``bbox`` x y w h, ``segmentation`` as polygons or RLE). Polygon coordinates must lie within
``COORD_MARGIN`` image sides of the image, and an RLE's runs must cover exactly ``height * width`` pixels: the C
rasteriser of pycocotools trusts both (a huge coordinate allocates without bound, a long run writes past its
buffer). A problem is a ``CocoFormatError`` naming the file and the field, in one line.
"""
from __future__ import annotations

import math
from pathlib import PurePosixPath, PureWindowsPath

from bbe_mobile.utils.json_files import show_value

MAX_SIDE = 32768  # pixels; a 200 MP phone photo is 16,320 wide
COORD_MARGIN = 2  # polygon coordinates within [-2, 3] x the image side
MAX_POLYGON_POINTS = 100_000


class CocoFormatError(ValueError):
    """A COCO document that breaks the format; the message names the file and the field."""


def _fail(source: str, field: str, problem: str) -> CocoFormatError:
    return CocoFormatError(f"{source}: {field}: {problem}")


def _int(value, source: str, field: str, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(source, field, f"must be an integer, got {show_value(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise _fail(source, field, f"must be in {low}..{high}, got {value}")
    return value


def _number(value, source: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(source, field, f"must be a finite number, got {show_value(value)}")
    return float(value)


def _list(value, source: str, field: str) -> list:
    if not isinstance(value, list):
        raise _fail(source, field, f"must be a list, got {show_value(value)}")
    return value


def _object(value, source: str, field: str) -> dict:
    if not isinstance(value, dict):
        raise _fail(source, field, f"must be an object, got {show_value(value)}")
    return value


def _get(entry: dict, key: str, source: str, field: str):
    if key not in entry:
        raise _fail(source, field, f"lacks key '{key}'")
    return entry[key]


def rle_string_counts(counts: str, limit: int) -> list[int]:
    """Run lengths of a compressed COCO RLE string (pycocotools' ``rleFrString``: 5 bits per character from
    '0', a continuation bit, a sign bit, runs after the second as differences); ValueError if the string is
    malformed, a run negative, or the runs add up to more than ``limit`` pixels."""
    runs: list[int] = []
    total, pos = 0, 0
    while pos < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(counts) or shift > 35:
                raise ValueError("a run is cut off or too long")
            c = ord(counts[pos]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"character {counts[pos]!r} at {pos} is outside '0'..'o'")
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            pos, shift = pos + 1, shift + 5
            if not more and c & 0x10:
                value |= -1 << shift
        if len(runs) > 2:
            value += runs[-2]
        if value < 0:
            raise ValueError(f"run {len(runs)} is negative")
        runs.append(value)
        total += value
        if total > limit:
            raise ValueError(f"its runs cover more than the {limit} pixels of the image")
    return runs


def _check_segmentation(seg, height: int, width: int, source: str, field: str) -> None:
    if isinstance(seg, list):
        for k, polygon in enumerate(seg):
            where = f"{field}[{k}]"
            _list(polygon, source, where)
            if len(polygon) < 6 or len(polygon) % 2 or len(polygon) > 2 * MAX_POLYGON_POINTS:
                raise _fail(source, where, f"a polygon needs an even count of 6..{2 * MAX_POLYGON_POINTS} "
                                           f"numbers, got {len(polygon)}")
            for j, v in enumerate(polygon):
                side = width if j % 2 == 0 else height
                if not -COORD_MARGIN * side <= _number(v, source, f"{where}[{j}]") <= (COORD_MARGIN + 1) * side:
                    raise _fail(source, f"{where}[{j}]", f"coordinate {v} is far outside the {width}x{height} image")
        return
    rle = _object(seg, source, field)
    size = _list(_get(rle, "size", source, field), source, f"{field}.size")
    if len(size) != 2 or [_int(v, source, f"{field}.size") for v in size] != [height, width]:
        raise _fail(source, f"{field}.size", f"must be the image's [height, width] [{height}, {width}], got {size}")
    counts = _get(rle, "counts", source, field)
    if isinstance(counts, str):
        try:
            runs = rle_string_counts(counts, height * width)
        except ValueError as exc:
            raise _fail(source, f"{field}.counts", f"bad compressed RLE: {exc}") from None
    else:
        runs = [_int(v, source, f"{field}.counts", 0) for v in _list(counts, source, f"{field}.counts")]
    if sum(runs) != height * width:
        raise _fail(source, f"{field}.counts", f"runs cover {sum(runs)} pixels, the image has {height * width}")


def check_coco(doc, source: str) -> None:
    """Raise CocoFormatError (one line: ``source``, field, problem) unless ``doc`` is a usable COCO instances
    document (see the module docstring)."""
    doc = _object(doc, source, "document")
    images = {}
    for k, image in enumerate(_list(_get(doc, "images", source, "document"), source, "images")):
        field = f"images[{k}]"
        _object(image, source, field)
        image_id = _int(_get(image, "id", source, field), source, f"{field}.id")
        if image_id in images:
            raise _fail(source, f"{field}.id", f"{image_id} appears twice")
        name = _get(image, "file_name", source, field)
        if not isinstance(name, str) or not name or any(c < " " for c in name):  # control characters: not a name
            raise _fail(source, f"{field}.file_name", f"must be a file name, got {show_value(name)}")
        if any(p.is_absolute() or ".." in p.parts for p in (PurePosixPath(name), PureWindowsPath(name))):
            raise _fail(source, f"{field}.file_name", f"{name!r} leaves the images directory")
        images[image_id] = tuple(_int(_get(image, key, source, field), source, f"{field}.{key}", 1, MAX_SIDE)
                                 for key in ("height", "width"))
    categories = set()
    for k, category in enumerate(_list(_get(doc, "categories", source, "document"), source, "categories")):
        field = f"categories[{k}]"
        _object(category, source, field)
        categories.add(_int(_get(category, "id", source, field), source, f"{field}.id"))
        if not isinstance(_get(category, "name", source, field), str):
            raise _fail(source, f"{field}.name", f"must be a string, got {show_value(category['name'])}")
    annotation_ids = set()
    for k, ann in enumerate(_list(_get(doc, "annotations", source, "document"), source, "annotations")):
        field = f"annotations[{k}]"
        _object(ann, source, field)
        ann_id = _int(_get(ann, "id", source, field), source, f"{field}.id")
        if ann_id in annotation_ids:
            raise _fail(source, f"{field}.id", f"{ann_id} appears twice")
        annotation_ids.add(ann_id)
        image_id = _int(_get(ann, "image_id", source, field), source, f"{field}.image_id")
        if image_id not in images:
            raise _fail(source, f"{field}.image_id", f"no image has id {image_id}")
        if _int(_get(ann, "category_id", source, field), source, f"{field}.category_id") not in categories:
            raise _fail(source, f"{field}.category_id", f"no category has id {ann['category_id']}")
        if ann.get("iscrowd", 0) not in (0, 1) or isinstance(ann.get("iscrowd", 0), float):
            raise _fail(source, f"{field}.iscrowd", f"must be 0 or 1, got {show_value(ann['iscrowd'])}")
        if _number(_get(ann, "area", source, field), source, f"{field}.area") < 0:
            raise _fail(source, f"{field}.area", f"must not be negative, got {ann['area']}")
        bbox = _list(_get(ann, "bbox", source, field), source, f"{field}.bbox")
        numbers = [_number(v, source, f"{field}.bbox[{j}]") for j, v in enumerate(bbox)]
        if len(numbers) != 4 or min(numbers[2:]) < 0:
            raise _fail(source, f"{field}.bbox", f"must be [x, y, width >= 0, height >= 0], got {bbox}")
        height, width = images[image_id]
        _check_segmentation(_get(ann, "segmentation", source, field), height, width, source, f"{field}.segmentation")
