"""The YuNet face detector (OpenCV Zoo's ``face_detection_yunet_2023mar``) as a Keras model.

YuNet is a tiny fully convolutional network (53,104 parameters): a backbone of
depthwise-separable units ("DP units": a linear 1x1 convolution, then a 3x3 depthwise
convolution with its batch norm folded in, then ReLU) with four 2x2 max-pools, a
top-down neck that adds each coarser map, upsampled (nearest, x2), to the finer one, and
at each of strides 8, 16 and 32 four heads (a 1x1 convolution then a 3x3 depthwise one,
linear): face-class score, objectness, box (4) and landmarks (10).

Input: float32 ``(N, H, W, 3)``, **BGR**, values 0..255 (no scaling: OpenCV's
``blobFromImage`` defaults), ``H`` and ``W`` multiples of 32 (the caller pads the frame at
its bottom and right with zeros, as ``cv2.FaceDetectorYN`` does).

Output: three float32 maps ``(N, H/s, W/s, 16)`` for ``s`` = 8, 16, 32, channels
``[sigmoid(cls), sigmoid(obj), box dx, dy, log w, log h, 5 x (landmark dx, dy)]`` in the
grid's units (decoded by :mod:`faceapp.vision.yunet_decode`).

The weights (``models/yunet_2023mar.weights.h5``) are the ONNX file's own, copied by
``tools/convert_yunet.py``; :data:`CONV_ORDER` is the order of the ONNX graph's ``Conv``
nodes, which the converter follows.
"""

from __future__ import annotations

#: Bump when the layer graph changes, so cached conversions are rebuilt.
ARCHITECTURE_VERSION = 1
STRIDES = (8, 16, 32)
DIVISOR = 32  # input sides must be multiples of this
CHANNELS = 16  # per anchor: cls, obj, 4 box, 10 landmark numbers
HEADS = (("cls", 1), ("bbox", 4), ("obj", 1), ("kps", 10))  # ONNX order of the head convolutions

#: (in, out) channels of the backbone's DP units after the stem, per stage; a 2x2 max-pool
#: follows the stages marked True.
_STAGES = (
    ((16, 16),),                  # model0: the stem's DP unit
    ((16, 16), (16, 32)),         # model1
    ((32, 32), (32, 64)),         # model2, then pool (stride 8)
    ((64, 64), (64, 64)),         # model3 -> stride 8 map, then pool
    ((64, 64), (64, 64)),         # model4 -> stride 16 map, then pool
    ((64, 64), (64, 64)),         # model5 -> stride 32 map
)
_POOL_AFTER = (True, False, True, True, True, False)


def conv_order() -> list[str]:
    """Names of this model's convolution layers in the ONNX graph's ``Conv`` node order."""
    names = ["stem"]
    for stage, units in enumerate(_STAGES):
        for unit in range(len(units)):
            names += [f"m{stage}_u{unit}_pw", f"m{stage}_u{unit}_dw"]
    for level in (2, 1, 0):
        names += [f"lateral{level}_pw", f"lateral{level}_dw"]
    for head, _ in HEADS:
        for level in range(len(STRIDES)):
            names += [f"{head}{level}_pw", f"{head}{level}_dw"]
    return names


CONV_ORDER = tuple(conv_order())


def build_yunet(height: int | None = None, width: int | None = None):
    """The Keras model (see the module docstring); ``height``/``width`` None: any multiple of 32."""
    import keras
    from keras import layers

    def dp_unit(x, out: int, name: str, relu: bool = True):
        x = layers.Conv2D(out, 1, name=f"{name}_pw")(x)
        x = layers.DepthwiseConv2D(3, padding="same", name=f"{name}_dw")(x)
        return layers.ReLU(name=f"{name}_relu")(x) if relu else x

    image = keras.Input((height, width, 3), name="image")
    x = layers.ZeroPadding2D(1, name="stem_pad")(image)
    x = layers.Conv2D(16, 3, strides=2, name="stem")(x)
    x = layers.ReLU(name="stem_relu")(x)
    maps = []
    for stage, units in enumerate(_STAGES):
        for unit, (_, out) in enumerate(units):
            x = dp_unit(x, out, f"m{stage}_u{unit}")
        if stage >= 3:
            maps.append(x)  # strides 8, 16, 32
        if _POOL_AFTER[stage]:
            x = layers.MaxPool2D(2, name=f"m{stage}_pool")(x)
    features = [None, None, None]
    features[2] = dp_unit(maps[2], 64, "lateral2")
    merged = layers.Add(name="neck_add1")([maps[1], layers.UpSampling2D(2, name="neck_up1")(features[2])])
    features[1] = dp_unit(merged, 64, "lateral1")
    merged = layers.Add(name="neck_add0")([maps[0], layers.UpSampling2D(2, name="neck_up0")(features[1])])
    features[0] = dp_unit(merged, 64, "lateral0")
    outputs = []
    for level, feature in enumerate(features):
        head = {name: dp_unit(feature, size, f"{name}{level}", relu=False) for name, size in HEADS}
        scores = [layers.Activation("sigmoid", name=f"{name}{level}_sigmoid")(head[name]) for name in ("cls", "obj")]
        outputs.append(layers.Concatenate(name=f"level{level}")([*scores, head["bbox"], head["kps"]]))
    return keras.Model(image, outputs, name="yunet_2023mar")
