"""The BBE network: backbone (MobileNetV2 or ResNet-50, atrous) + ASPP + DeepLabv3+ decoder + two 1x1 heads.

Input: ``(1, S, S, 3)`` float32 RGB in [0, 255] (normalisation is the model's first layer), S a multiple of 16.
Outputs at ``DECODER_STRIDE`` (4 input pixels per cell; 1 with ``full_resolution=True``):
``person_logits`` (S/4, S/4, 1) and ``box_offsets`` (S/4, S/4, 4) (dx, dy, dw, dh). Cell (i, j) is centred at
((j + 0.5)·4, (i + 0.5)·4) input pixels: with multiples of 16 and half-pixel bilinear resizes this is exact.
Every resize is by a fixed integer factor and the ASPP image-pooling branch is broadcast, not resized, so the
graph converts to TFLite, Core ML (flexible shapes too) and ONNX.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers

DECODER_STRIDE = 4
logger = logging.getLogger(__name__)  # printed by the CLI through the package logger "bbe_mobile"
BACKBONES = ("mobilenet_v2", "resnet50")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a BBE model; every field is an explicit ``build_bbe`` argument."""

    backbone: str = "mobilenet_v2"
    alpha: float = 1.0
    output_stride: int = 16
    aspp: bool = True
    aspp_filters: int = 128
    decoder_filters: int = 128
    box_head: bool = True
    full_resolution: bool = False
    box_tower: int = 0  # separable 3x3 conv layers (decoder_filters wide) of the box head's own, before its 1x1 conv

    def validate(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.output_stride not in (8, 16) or isinstance(self.output_stride, bool):
            raise ValueError(f"output_stride must be 8 or 16, got {self.output_stride!r}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or (
                self.backbone == "mobilenet_v2" and not 0.35 <= self.alpha <= 1.4):
            raise ValueError(f"alpha must be in [0.35, 1.4], got {self.alpha!r}")
        for name in ("aspp_filters", "decoder_filters"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096:
                raise ValueError(f"{name} must be an integer in 1..4096, got {value!r}")
        if isinstance(self.box_tower, bool) or not isinstance(self.box_tower, int) or not 0 <= self.box_tower <= 8:
            raise ValueError(f"box_tower must be an integer in 0..8, got {self.box_tower!r}")
        for name in ("aspp", "box_head", "full_resolution"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")

    @property
    def stride(self) -> int:
        """Input pixels per output cell."""
        return 1 if self.full_resolution else DECODER_STRIDE


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _bn(name: str, epsilon: float = 1e-3, momentum: float = 0.999) -> layers.BatchNormalization:
    return layers.BatchNormalization(epsilon=epsilon, momentum=momentum, name=name)


HEAD_PREFIXES = ("aspp", "image_pooling", "decoder", "person_logits", "box_tower", "box_offsets")


def is_head_layer(name: str) -> bool:
    """True for ASPP, decoder and head layers (trained from scratch); False for backbone and normalisation."""
    return name.startswith(HEAD_PREFIXES)


def _atrous_plan(strides: list[int], output_stride: int, start_stride: int) -> list[tuple[int, int, int]]:
    """(stride, dilation at the layer, dilation after it) per layer: a stride-2 layer past ``output_stride``
    becomes stride 1 and the dilation of every later layer doubles instead (DeepLab's atrous rule)."""
    plan, current, dilation = [], start_stride, 1
    for s in strides:
        if s == 2 and current >= output_stride:
            plan.append((1, dilation, dilation * 2))
            dilation *= 2
        else:
            plan.append((s, dilation, dilation))
            current *= s
    return plan


MOBILENET_V2_BLOCKS = [  # (filters, stride, expansion) of block_0 .. block_16
    (16, 1, 1), (24, 2, 6), (24, 1, 6), (32, 2, 6), (32, 1, 6), (32, 1, 6), (64, 2, 6), (64, 1, 6), (64, 1, 6),
    (64, 1, 6), (96, 1, 6), (96, 1, 6), (96, 1, 6), (160, 2, 6), (160, 1, 6), (160, 1, 6), (320, 1, 6),
]


def mobilenet_v2_backbone(x, alpha: float, output_stride: int):
    """MobileNetV2 with Keras Applications' layer names (so ImageNet weights copy by name), atrous past
    ``output_stride``. Returns (low-level features at stride 4, high-level features at ``output_stride``)."""
    x = layers.Conv2D(_make_divisible(32 * alpha), 3, strides=2, padding="same", use_bias=False, name="Conv1")(x)
    x = layers.ReLU(6.0, name="Conv1_relu")(_bn("bn_Conv1")(x))
    plan = _atrous_plan([s for _, s, _ in MOBILENET_V2_BLOCKS], output_stride, start_stride=2)
    low_level = None
    for block_id, ((filters, _, expansion), (stride, dilation, _)) in enumerate(zip(MOBILENET_V2_BLOCKS, plan)):
        inputs = x
        in_channels = x.shape[-1]
        pointwise = _make_divisible(int(filters * alpha))
        prefix = f"block_{block_id}_" if block_id else "expanded_conv_"
        if block_id:
            x = layers.Conv2D(expansion * in_channels, 1, use_bias=False, name=prefix + "expand")(x)
            x = layers.ReLU(6.0, name=prefix + "expand_relu")(_bn(prefix + "expand_BN")(x))
            if block_id == 3:
                low_level = x  # stride 4
        x = layers.DepthwiseConv2D(3, strides=stride, dilation_rate=dilation, padding="same", use_bias=False,
                                   name=prefix + "depthwise")(x)
        x = layers.ReLU(6.0, name=prefix + "depthwise_relu")(_bn(prefix + "depthwise_BN")(x))
        x = layers.Conv2D(pointwise, 1, use_bias=False, name=prefix + "project")(x)
        x = _bn(prefix + "project_BN")(x)
        if in_channels == pointwise and stride == 1:
            x = layers.Add(name=prefix + "add")([inputs, x])
    return low_level, x


def resnet50_backbone(x, output_stride: int):
    """ResNet-50 (v1) with Keras Applications' layer names, atrous past ``output_stride``.
    Returns (conv2 output at stride 4, conv5 output at ``output_stride``)."""
    x = layers.Conv2D(64, 7, strides=2, padding="same", name="conv1_conv")(x)
    x = layers.Activation("relu", name="conv1_relu")(_bn("conv1_bn", 1.001e-5)(x))
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_pool")(x)
    stages = [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]
    plan = _atrous_plan([s for _, _, s in stages], output_stride, start_stride=4)
    low_level = None
    for stage, ((filters, blocks, _), (stride, _, dilation)) in enumerate(zip(stages, plan), start=2):
        for b in range(1, blocks + 1):
            name = f"conv{stage}_block{b}_"
            s = stride if b == 1 else 1
            shortcut = x
            if b == 1:
                shortcut = layers.Conv2D(4 * filters, 1, strides=s, name=name + "0_conv")(x)
                shortcut = _bn(name + "0_bn", 1.001e-5)(shortcut)
            y = layers.Conv2D(filters, 1, strides=s, name=name + "1_conv")(x)
            y = layers.Activation("relu", name=name + "1_relu")(_bn(name + "1_bn", 1.001e-5)(y))
            y = layers.Conv2D(filters, 3, padding="same", dilation_rate=dilation, name=name + "2_conv")(y)
            y = layers.Activation("relu", name=name + "2_relu")(_bn(name + "2_bn", 1.001e-5)(y))
            y = _bn(name + "3_bn", 1.001e-5)(layers.Conv2D(4 * filters, 1, name=name + "3_conv")(y))
            x = layers.Activation("relu", name=name + "out")(layers.Add(name=name + "add")([shortcut, y]))
        if stage == 2:
            low_level = x
    return low_level, x


def _conv_bn_relu(x, filters: int, name: str, kernel: int = 1, dilation: int = 1, separable: bool = False):
    if separable:
        x = layers.DepthwiseConv2D(kernel, padding="same", dilation_rate=dilation, use_bias=False,
                                   name=name + "_depthwise")(x)
        x = layers.ReLU(name=name + "_depthwise_relu")(_bn(name + "_depthwise_bn", 1e-5, momentum=0.99)(x))
        kernel = 1
    x = layers.Conv2D(filters, kernel, padding="same", dilation_rate=dilation, use_bias=False, name=name)(x)
    return layers.ReLU(name=name + "_relu")(_bn(name + "_bn", 1e-5, momentum=0.99)(x))


def aspp(x, filters: int, output_stride: int, atrous: bool):
    """ASPP (DeepLabv3): 1x1 branch, three atrous separable 3x3 branches (rates 6/12/18 at OS 16, doubled at
    OS 8; only with ``atrous``) and an image-pooling branch. The concat + 1x1 projection is written as a sum of
    per-branch 1x1 projections (the same linear map), so the pooled branch is broadcast instead of resized."""
    branches = [_conv_bn_relu(x, filters, "aspp0")]
    if atrous:
        for k, rate in enumerate((6, 12, 18), start=1):
            branches.append(_conv_bn_relu(x, filters, f"aspp{k}", kernel=3, dilation=rate * 16 // output_stride,
                                          separable=True))
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name="image_pooling")(x)
    pooled = _conv_bn_relu(pooled, filters, "image_pooling_conv")
    projected = [layers.Conv2D(filters, 1, use_bias=False, name=f"aspp_project_{k}")(b) for k, b in enumerate(branches)]
    projected.append(layers.Conv2D(filters, 1, use_bias=False, name="aspp_project_pool")(pooled))
    x = layers.Add(name="aspp_project_sum")(projected)
    return layers.ReLU(name="aspp_project_relu")(_bn("aspp_project_bn", 1e-5, momentum=0.99)(x))


def build_bbe(
    input_size: int | None = 512,
    backbone: str = "mobilenet_v2",
    alpha: float = 1.0,
    output_stride: int = 16,
    aspp_enabled: bool = True,
    aspp_filters: int = 128,
    decoder_filters: int = 128,
    box_head: bool = True,
    full_resolution: bool = False,
    backbone_weights: str | None = None,
    box_tower: int = 0,
) -> keras.Model:
    """Build a BBE model (or its semantic-only twin with ``box_head=False``).

    ``input_size``: square input side in pixels, a multiple of 16, or None for a flexible size (feed multiples
    of 16). ``backbone_weights``: None (random), "imagenet" (Keras download) or a path to a Keras
    Applications ``.weights.h5`` of the same backbone and alpha, e.g.
    ``../shared/weights/mobilenet_v2_1.0_224_imagenet_no_top.weights.h5``. ``box_tower``: separable 3x3
    conv + BN + ReLU layers (``decoder_filters`` wide) that only the box head sees, between the decoder and its
    1x1 conv (0: the box head shares all its features with the person head, as in the paper).
    Outputs: ``[person_logits, box_offsets]`` (``[person_logits]`` for the twin), see module docstring.
    """
    config = ModelConfig(backbone, alpha, output_stride, aspp_enabled, aspp_filters, decoder_filters, box_head,
                         full_resolution, box_tower)
    config.validate()
    if input_size is not None and (input_size <= 0 or input_size % 16):
        raise ValueError(f"input_size must be a positive multiple of 16, got {input_size}")
    inputs = keras.Input((input_size, input_size, 3), name="image")
    if backbone == "mobilenet_v2":
        x = layers.Rescaling(1 / 127.5, offset=-1.0, name="normalize")(inputs)
        low_level, high = mobilenet_v2_backbone(x, alpha, output_stride)
    else:
        x = layers.Normalization(mean=[123.68, 116.779, 103.939], variance=[1.0, 1.0, 1.0], name="normalize")(inputs)
        low_level, high = resnet50_backbone(x, output_stride)

    x = aspp(high, aspp_filters, output_stride, atrous=aspp_enabled)
    x = layers.UpSampling2D(output_stride // DECODER_STRIDE, interpolation="bilinear", name="decoder_upsample")(x)
    low = _conv_bn_relu(low_level, 48, "decoder_low_level")
    x = layers.Concatenate(name="decoder_concat")([x, low])
    x = _conv_bn_relu(x, decoder_filters, "decoder_conv0", kernel=3, separable=True)
    x = _conv_bn_relu(x, decoder_filters, "decoder_conv1", kernel=3, separable=True)

    heads = [layers.Conv2D(1, 1, bias_initializer=keras.initializers.Constant(-2.0), name="person_logits")(x)]
    if box_head:
        box_features = x
        for k in range(box_tower):
            box_features = _conv_bn_relu(box_features, decoder_filters, f"box_tower{k}", kernel=3, separable=True)
        heads.append(layers.Conv2D(4, 1, kernel_initializer=keras.initializers.RandomNormal(stddev=1e-3),
                                   name="box_offsets")(box_features))
    if full_resolution:
        heads = [layers.UpSampling2D(DECODER_STRIDE, interpolation="bilinear", name=h.name.split("/")[0] + "_full")(h)
                 for h in heads]
    name = f"bbe_{backbone}" + (f"_{alpha:g}" if backbone == "mobilenet_v2" else "") + f"_os{output_stride}"
    model = keras.Model(inputs, heads, name=name if box_head else name + "_semantic")
    if backbone_weights:
        load_backbone_weights(model, backbone, alpha, backbone_weights)
    return model


def _reference_backbone(backbone: str, alpha: float, imagenet: bool) -> keras.Model:
    """Keras Applications' own backbone (224x224, no top): the layer order and names its weight files follow."""
    weights = "imagenet" if imagenet else None
    if backbone == "mobilenet_v2":
        return keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=alpha, include_top=False,
                                              weights=weights)
    return keras.applications.ResNet50(input_shape=(224, 224, 3), include_top=False, weights=weights)


def read_keras_weights_file(path: str, reference: keras.Model) -> dict[str, list[np.ndarray]] | None:
    """The variables of every layer of ``reference`` stored in a Keras 3 ``.weights.h5`` file, by layer name,
    read with h5py (Keras' own loader warns about "nested containers" on these files and leaves nothing to check).
    The format names a model's layers ``layers/<class name in snake case>[_k]`` in the order of ``model.layers``,
    each with ``vars/0..n-1`` in the order of ``layer.weights``. Returns None for another format (legacy .h5);
    raises ValueError if the file does not hold exactly ``reference``'s layers with the same variable shapes."""
    import h5py  # noqa: PLC0415
    from keras.src.utils.naming import to_snake_case  # the function that names the file's layer groups

    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    with handle as f:
        if "layers" not in f:
            return None
        groups, used, values = f["layers"], {}, {}
        for layer in reference.layers:
            base = to_snake_case(layer.__class__.__name__)
            used[base] = used.get(base, -1) + 1
            key = base if used[base] == 0 else f"{base}_{used[base]}"
            group = groups.get(f"{key}/vars")
            expected = [tuple(w.shape) for w in layer.weights]
            if group is None and expected:
                raise ValueError(f"layer {layer.name} ({key}) is missing from the file")
            stored = [np.asarray(group[str(i)]) for i in range(len(group))] if group is not None else []
            if [a.shape for a in stored] != expected:
                raise ValueError(f"layer {layer.name} ({key}) holds variables of shapes {[a.shape for a in stored]} "
                                 f"in the file, the backbone needs {expected}")
            if stored:
                values[layer.name] = stored
        extra = sorted(set(groups) - {b if k == 0 else f"{b}_{k}" for b, n in used.items() for k in range(n + 1)})
        if extra:
            raise ValueError(f"the file holds layers the backbone does not have: {', '.join(extra[:3])}")
    return values


def load_backbone_weights(model: keras.Model, backbone: str, alpha: float, weights: str) -> int:
    """Copy Keras Applications backbone weights ("imagenet" or a ``.weights.h5`` path) into ``model`` by layer
    name. Every backbone layer with variables must receive them (ValueError otherwise, and for a file of another
    backbone or alpha). Returns the number of layers copied and logs it (logger ``bbe_mobile.model``, INFO)."""
    reference = _reference_backbone(backbone, alpha, imagenet=weights == "imagenet")
    stored = None
    try:
        if weights != "imagenet":
            stored = read_keras_weights_file(weights, reference)
            if stored is None:  # legacy Keras 2 .h5: Keras' own loader (it does not warn on these)
                reference.load_weights(weights)
    except Exception as exc:  # h5py and Keras raise several types for a wrong file
        raise ValueError(f"cannot load backbone weights {weights} into {backbone} alpha={alpha}: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if stored is None:
        stored = {layer.name: layer.get_weights() for layer in reference.layers if layer.weights}
    copied = []
    for name, values in stored.items():
        try:
            target = model.get_layer(name)
        except ValueError:
            continue  # Conv_1 and its batch norm (the classifier's input) are not part of the BBE backbone
        if backbone == "resnet50" and name == "conv1_conv":
            values = [values[0][:, :, ::-1, :], values[1]]  # Keras' ResNet-50 expects BGR; our input is RGB
        try:
            target.set_weights(values)
        except ValueError as exc:
            raise ValueError(f"backbone weights {weights} do not fit layer {name} of {model.name}: "
                             f"{str(exc).splitlines()[0]}") from None
        copied.append(name)
    missing = [layer.name for layer in model.layers if layer.weights and not is_head_layer(layer.name)
               and layer.name != "normalize" and layer.name not in copied]
    if missing:
        raise ValueError(f"backbone weights {weights} hold nothing for {len(missing)} backbone layers of "
                         f"{model.name} ({', '.join(missing[:3])}, ...)")
    logger.info("backbone weights %s: copied into %d layers", weights, len(copied))
    return len(copied)


def model_config(model: keras.Model) -> dict:
    """Facts read off a built model: input size (None if flexible), stride, whether it has a box head."""
    size = model.input_shape[1]
    out = model.outputs[0].shape[1]
    stride = size // out if (size and out) else DECODER_STRIDE
    return {"input_size": size, "stride": int(stride), "box_head": len(model.outputs) == 2,
            "n_params": int(model.count_params())}


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function, float32."""
    x = np.asarray(x, np.float32)
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x)))).astype(np.float32)
