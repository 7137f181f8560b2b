"""COCO-format person data, the paper's augmentation plus copy-paste, and the tf.data training pipeline.

Every sample is ``(image (C, C, 3) float32 RGB 0..255, targets)`` with targets at the model's stride:
``person`` (C/s, C/s, 1), ``offsets`` (C/s, C/s, 4), ``weights`` (C/s, C/s, 1) (see ``targets.py``).
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from bbe_mobile.letterbox import check_annotated_size, read_image
from bbe_mobile.training.coco_schema import CocoFormatError, check_coco
from bbe_mobile.modeling.targets import annotation_masks, build_targets, instance_balanced_weights

PERSON = "person"


class DataError(ValueError):
    """A dataset that cannot be used (missing files, bad json, no person category)."""


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation (paper section 4.4 + copy-paste). ``base_size``: the letterbox side the random scale is
    relative to (input px); ``crop``: training crop side (multiple of 16)."""

    crop: int = 384
    base_size: int = 512
    scale_range: tuple[float, float] = (0.5, 1.5)
    max_rotation_deg: float = 15.0
    max_translation: float = 0.1  # fraction of the crop
    flip: bool = True
    paste_probability: float = 0.6
    max_pastes: int = 3
    paste_height: tuple[float, float] = (0.25, 0.8)  # pasted person height, fraction of the crop


class CocoPersons:
    """A COCO-format person dataset: an images directory and an instances json, person category only.

    Crowd regions are kept (they count as person, without box targets); images without people are negatives.
    """

    def __init__(self, images_dir: str, annotations: str, image_ids: list[int] | None = None):
        from pycocotools.coco import COCO  # noqa: PLC0415

        if not os.path.isdir(images_dir):
            raise DataError(f"images directory not found: {images_dir}")
        if not os.path.isfile(annotations):
            raise DataError(f"annotation file not found: {annotations}")
        try:
            with open(annotations, "rb") as f:
                doc = json.loads(f.read())
            check_coco(doc, annotations)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise DataError(f"not a COCO instances json: {annotations} ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:200]})") from None
        except CocoFormatError as exc:
            raise DataError(str(exc)) from None
        self.coco = COCO()
        self.coco.dataset = doc
        with contextlib.redirect_stdout(io.StringIO()):
            self.coco.createIndex()
        cats = self.coco.getCatIds(catNms=[PERSON])
        if not cats:
            raise DataError(f"no '{PERSON}' category in {annotations}")
        self.category_id = cats[0]
        self.images_dir = images_dir
        self.annotations_path = annotations
        self.image_ids = sorted(self.coco.getImgIds()) if image_ids is None else list(image_ids)
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.image_ids)

    def info(self, image_id: int) -> dict:
        return self.coco.loadImgs(image_id)[0]

    def path(self, image_id: int) -> str:
        return os.path.join(self.images_dir, self.info(image_id)["file_name"])

    def person_annotations(self, image_id: int) -> list[dict]:
        return self.coco.loadAnns(self.coco.getAnnIds(imgIds=image_id, catIds=[self.category_id]))

    def people_count(self, image_id: int) -> int:
        """Number of non-crowd person annotations."""
        return sum(1 for a in self.person_annotations(image_id) if not a.get("iscrowd", 0))

    def image(self, image_id: int, cache: bool = False) -> np.ndarray:
        """RGB uint8 (h, w, 3) in the annotations' orientation and size; raises DataError for a missing or corrupt
        file, or one whose size matches its annotations in neither its stored nor its displayed orientation."""
        if image_id in self._cache:
            return self._cache[image_id]
        info = self.info(image_id)
        try:  # in the orientation the annotations use (see read_image)
            image = read_image(self.path(image_id), annotated_hw=(info["height"], info["width"]))
        except ValueError as exc:
            raise DataError(str(exc)) from None
        if cache:
            self._cache[image_id] = image
        return image

    def masks(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Instance masks (N, h, w) uint8 and crowd flags (N,) at the original image size."""
        info = self.info(image_id)
        return annotation_masks(self.person_annotations(image_id), info["height"], info["width"])

    def check_files(self) -> None:
        """Raise DataError naming the first image file that is missing, unreadable, or of another size than its
        annotations say (headers only: fast, and no mask is ever drawn at a size the file does not have)."""
        for image_id in self.image_ids:
            path, info = self.path(image_id), self.info(image_id)
            if not os.path.isfile(path):
                raise DataError(f"image file missing: {path}")
            try:
                check_annotated_size(path, (info["height"], info["width"]))
            except ValueError as exc:
                raise DataError(str(exc)) from None


def split_val(dataset: CocoPersons, holdout_single: int = 300) -> tuple[list[int], list[int]]:
    """Split a val set into (trainable ids, held-out ids): held out are every image with 2+ people and the
    first ``holdout_single`` single-person images (json order, as the peer comparison uses them)."""
    ordered = [img["id"] for img in dataset.coco.dataset["images"]]
    held, singles = [], 0
    for image_id in ordered:
        people = dataset.people_count(image_id)
        if people >= 2 or (people == 1 and singles < holdout_single):
            held.append(image_id)
            singles += people == 1
    held_set = set(held)
    return [i for i in ordered if i not in held_set], held


def affine_matrix(src_hw: tuple[int, int], crop: int, scale: float, angle_deg: float, shift: tuple[float, float],
                  flip: bool) -> np.ndarray:
    """3x3 matrix mapping source pixel coordinates to crop coordinates: scale and rotate about the source
    centre, place it at the crop centre plus ``shift`` (crop px), then mirror horizontally if ``flip``."""
    h, w = src_hw
    a = math.radians(angle_deg)
    c, s = math.cos(a) * scale, math.sin(a) * scale
    to_origin = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]])
    rotate = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    place = np.array([[1, 0, crop / 2 + shift[0]], [0, 1, crop / 2 + shift[1]], [0, 0, 1]])
    m = place @ rotate @ to_origin
    if flip:
        m = np.array([[-1, 0, crop], [0, 1, 0], [0, 0, 1]]) @ m
    return m


def warp(array: np.ndarray, matrix: np.ndarray, crop: int, resample=Image.BILINEAR) -> np.ndarray:
    """Warp an (h, w) or (h, w, 3) uint8 array by the source->crop ``matrix`` into (crop, crop[, 3])."""
    inv = np.linalg.inv(matrix)
    return np.asarray(Image.fromarray(array).transform((crop, crop), Image.AFFINE, tuple(inv[:2].ravel()), resample))


def warp_mask(mask: np.ndarray, matrix: np.ndarray, crop: int) -> np.ndarray:
    """Warp one (h, w) 0/1 mask bilinearly and threshold at 0.5 -> (crop, crop) bool. Only the crop window that
    the mask's box maps to (plus a 2-pixel margin, wider than the bilinear support) is resampled: the result
    equals warping the whole mask, at a fraction of the cost for small people."""
    rows = np.flatnonzero(mask.any(axis=1))
    out = np.zeros((crop, crop), bool)
    if not rows.size:
        return out
    cols = np.flatnonzero(mask.any(axis=0))
    corners = matrix @ np.array([[cols[0], cols[-1] + 1, cols[0], cols[-1] + 1],
                                 [rows[0], rows[0], rows[-1] + 1, rows[-1] + 1], [1, 1, 1, 1]], np.float64)
    x0, y0 = (max(int(np.floor(corners[i].min())) - 2, 0) for i in (0, 1))
    x1, y1 = (min(int(np.ceil(corners[i].max())) + 2, crop) for i in (0, 1))
    if x1 <= x0 or y1 <= y0:
        return out
    inv = np.linalg.inv(matrix)
    shifted = inv[:2].copy()
    shifted[:, 2] += inv[:2, 0] * x0 + inv[:2, 1] * y0  # output pixel (x, y) of the window is (x + x0, y + y0)
    window = Image.fromarray(mask * np.uint8(255)).transform((x1 - x0, y1 - y0), Image.AFFINE,
                                                             tuple(shifted.ravel()), Image.BILINEAR)
    out[y0:y1, x0:x1] = np.asarray(window) >= 128
    return out


def warp_masks(masks: np.ndarray, matrix: np.ndarray, crop: int) -> np.ndarray:
    """Warp (N, h, w) 0/1 masks bilinearly and threshold at 0.5 -> (N, crop, crop) uint8."""
    out = np.zeros((len(masks), crop, crop), np.uint8)
    for k, m in enumerate(masks):
        out[k] = warp_mask(m, matrix, crop)
    return out


class Sampler:
    """Makes augmented training samples from a dataset; deterministic for a given (seed, index).
    ``balance_instances``: box-loss weights from ``targets.instance_balanced_weights`` instead of 0/1."""

    def __init__(self, dataset: CocoPersons, config: AugmentConfig, stride: int, seed: int = 0,
                 balance_instances: bool = False):
        if config.crop % 16:
            raise ValueError(f"crop must be a multiple of 16, got {config.crop}")
        self.dataset, self.config, self.stride, self.seed = dataset, config, stride, seed
        self.balance_instances = balance_instances
        self.paste_bank = [(i, k) for i in dataset.image_ids for k, a in enumerate(dataset.person_annotations(i))
                           if not a.get("iscrowd", 0) and a["area"] >= 40 * 40]

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Sample ``index`` -> image (C, C, 3) float32, person (C/s, C/s, 1), offsets (.., 4), weights (.., 1)."""
        cfg = self.config
        rng = np.random.default_rng([self.seed, index])
        image_id = self.dataset.image_ids[index % len(self.dataset)]
        image = self.dataset.image(image_id, cache=True)
        masks, crowd = self.dataset.masks(image_id)
        scale = cfg.base_size / max(image.shape[:2]) * rng.uniform(*cfg.scale_range)
        matrix = affine_matrix(image.shape[:2], cfg.crop, scale, rng.uniform(-1, 1) * cfg.max_rotation_deg,
                               tuple(rng.uniform(-1, 1, 2) * cfg.max_translation * cfg.crop),
                               cfg.flip and rng.random() < 0.5)
        crop = warp(image, matrix, cfg.crop)
        crop_masks = warp_masks(masks, matrix, cfg.crop)
        if self.paste_bank and rng.random() < cfg.paste_probability:
            for _ in range(rng.integers(1, cfg.max_pastes + 1)):
                crop, crop_masks, crowd = self._paste(crop, crop_masks, crowd, rng)
        t = build_targets(crop_masks, crowd, self.stride)
        weights = instance_balanced_weights(t.weights, t.owner) if self.balance_instances else t.weights
        return (crop.astype(np.float32), t.person[..., None], t.offsets, weights[..., None])

    def _paste(self, crop, masks, crowd, rng):
        """Copy-paste one person from the bank onto the crop, in front; occluded parts leave older masks."""
        cfg = self.config
        image_id, k = self.paste_bank[rng.integers(len(self.paste_bank))]
        ann = self.dataset.person_annotations(image_id)[k]
        src = self.dataset.image(image_id, cache=True)
        src_mask = annotation_masks([ann], *src.shape[:2])[0][0]
        x, y, bw, bh = ann["bbox"]
        target_h = rng.uniform(*cfg.paste_height) * cfg.crop
        scale = target_h / max(bh, 1.0)
        visible = [j for j in range(len(masks)) if masks[j].any() and not crowd[j]]
        if visible and rng.random() < 0.7:  # next to an existing person, overlapping it
            rows, cols = np.nonzero(masks[visible[rng.integers(len(visible))]])
            cx = cols.mean() + rng.uniform(-0.6, 0.6) * bw * scale
            cy = rows.mean() + rng.uniform(-0.3, 0.3) * bh * scale
        else:
            cx, cy = rng.uniform(0, cfg.crop, 2)
        angle = rng.uniform(-1, 1) * cfg.max_rotation_deg / 2
        # place the source box centre at (cx, cy)
        m = affine_matrix(src.shape[:2], cfg.crop, scale, angle, (0.0, 0.0), False)
        centre = m @ np.array([x + bw / 2, y + bh / 2, 1.0])
        m[:2, 2] += np.array([cx, cy]) - centre[:2]
        if rng.random() < 0.5:
            m = np.array([[-1, 0, 2 * cx], [0, 1, 0], [0, 0, 1]]) @ m
        pasted_mask = warp_mask(src_mask, m, cfg.crop)
        if not pasted_mask.any():
            return crop, masks, crowd
        pasted = warp(src, m, cfg.crop)
        crop = np.where(pasted_mask[..., None], pasted, crop)
        masks = np.concatenate([masks * ~pasted_mask[None], pasted_mask[None].astype(np.uint8)])
        return crop, masks, np.append(crowd, False)


def training_dataset(samplers: list[Sampler], batch_size: int, start_index: int = 0, parallel: int = 2):
    """An endless ``tf.data`` pipeline of batches (image, person, offsets, weights), sample indices from
    ``start_index`` on (so a resumed run continues with new samples), decoded in parallel and prefetched."""
    import tensorflow as tf  # noqa: PLC0415

    sizes = [len(s.dataset) for s in samplers]
    total = sum(sizes)
    crop, stride = samplers[0].config.crop, samplers[0].stride
    cells = crop // stride

    def make(index):
        index = int(index)
        epoch, position = divmod(index, total)
        order = np.random.default_rng([samplers[0].seed, epoch]).permutation(total)
        j = int(order[position])
        for sampler, size in zip(samplers, sizes):
            if j < size:
                return sampler.sample(epoch * size + j)
            j -= size
        raise AssertionError("unreachable")

    def load(index):
        image, person, offsets, weights = tf.numpy_function(make, [index], [tf.float32] * 4, stateful=False)
        image.set_shape((crop, crop, 3))
        person.set_shape((cells, cells, 1))
        offsets.set_shape((cells, cells, 4))
        weights.set_shape((cells, cells, 1))
        return image, person, offsets, weights

    ds = tf.data.Dataset.range(start_index, 2**62).map(load, num_parallel_calls=parallel, deterministic=True)
    return ds.batch(batch_size, drop_remainder=True).prefetch(2)
