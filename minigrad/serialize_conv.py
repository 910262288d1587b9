"""The model-file descriptions of convolution, batch-norm and pooling layers
and of the ResNet (used by minigrad.serialize): each layer to JSON, its JSON
checked without trusting it (counting the values it needs: parameters and
buffers), and built back."""
import numpy as np

from minigrad import models, nn

LAYERS = ("Conv2d", "BatchNorm2d", "MaxPool2d", "AdaptiveAvgPool2d")
_MAX = 1 << 16  # channels, classes, kernel sizes, strides, paddings
_FLOATS = ("float32", "float64")


def layer_spec(layer):
    """The JSON description of one conv-family layer, or None."""
    if isinstance(layer, nn.Conv2d) and not isinstance(layer.padding, str):
        return {"type": "Conv2d", "in": layer.in_channels, "out": layer.out_channels,
                "kernel": list(layer.kernel_size), "stride": list(layer.stride),
                "padding": list(layer.padding), "dilation": list(layer.dilation),
                "bias": layer.bias is not None, "dtype": str(layer.weight.dtype)}
    if isinstance(layer, nn.BatchNorm2d) and layer.affine and layer.track_running_stats:
        return {"type": "BatchNorm2d", "features": layer.num_features, "eps": layer.eps,
                "momentum": layer.momentum, "dtype": str(layer.weight.dtype)}
    if isinstance(layer, nn.MaxPool2d):
        k = nn.conv._pair(layer.kernel_size, "kernel_size")
        s = k if layer.stride is None else nn.conv._pair(layer.stride, "stride")
        return {"type": "MaxPool2d", "kernel": list(k), "stride": list(s),
                "padding": list(nn.conv._pair(layer.padding, "padding")),
                "dilation": list(nn.conv._pair(layer.dilation, "dilation"))}
    if isinstance(layer, nn.AdaptiveAvgPool2d):
        return {"type": "AdaptiveAvgPool2d",
                "size": list(nn.conv._pair(layer.output_size, "output_size"))}
    return None


def _ints(i, spec, key, low):
    v = spec.get(key)
    if not (isinstance(v, list) and len(v) == 2 and
            all(type(e) is int and low <= e <= _MAX for e in v)):
        raise ValueError(f"layer {i} ({spec['type']}): {key!r} must be 2 integers from "
                         f"{low} to {_MAX}, got {v!r}")
    return v


def _int(i, spec, key, low=1):
    v = spec.get(key)
    if type(v) is not int or not low <= v <= _MAX:
        raise ValueError(f"layer {i} ({spec['type']}): {key!r} must be an integer from "
                         f"{low} to {_MAX}, got {v!r}")
    return v


def _dtype(i, spec):
    if spec.get("dtype", "float32") not in _FLOATS:
        raise ValueError(f"layer {i} ({spec['type']}): dtype must be one of {_FLOATS}")


def check_layer(i, spec, channels):
    """(values the layer holds, channels after it) for a conv-family layer,
    or a ValueError; channels is None where unknown."""
    kind = spec["type"]
    if kind == "Conv2d":
        c_in, c_out = _int(i, spec, "in"), _int(i, spec, "out")
        kh, kw = _ints(i, spec, "kernel", 1)
        _ints(i, spec, "stride", 1), _ints(i, spec, "padding", 0), _ints(i, spec, "dilation", 1)
        if type(spec.get("bias")) is not bool:
            raise ValueError(f"layer {i} (Conv2d): 'bias' must be true or false")
        _dtype(i, spec)
        if channels is not None and c_in != channels:
            raise ValueError(f"layer {i} (Conv2d) takes {c_in} channels but the layer before "
                             f"gives {channels}")
        return c_out * c_in * kh * kw + (c_out if spec["bias"] else 0), c_out
    if kind == "BatchNorm2d":
        c = _int(i, spec, "features")
        m = spec.get("momentum")
        for key, v in (("eps", spec.get("eps")), ("momentum", m)):
            if not (v is None and key == "momentum") and not (
                    type(v) in (int, float) and 0 <= v < 1e3):
                raise ValueError(f"layer {i} (BatchNorm2d): {key!r} must be a small "
                                 f"non-negative number, got {v!r}")
        _dtype(i, spec)
        if channels is not None and c != channels:
            raise ValueError(f"layer {i} (BatchNorm2d) has {c} features but the layer before "
                             f"gives {channels} channels")
        return 4 * c + 1, c  # weight, bias, running mean and variance, batch count
    if kind == "MaxPool2d":
        k = _ints(i, spec, "kernel", 1)
        _ints(i, spec, "stride", 1), _ints(i, spec, "dilation", 1)
        if any(p > kk // 2 for p, kk in zip(_ints(i, spec, "padding", 0), k, strict=True)):
            raise ValueError(f"layer {i} (MaxPool2d): padding must be at most half the kernel")
        return 0, channels
    _ints(i, spec, "size", 1)  # AdaptiveAvgPool2d
    return 0, channels


def build_layer(spec):
    kind = spec["type"]
    dtype = np.dtype(spec.get("dtype", "float32"))
    if kind == "Conv2d":
        return nn.Conv2d(spec["in"], spec["out"], tuple(spec["kernel"]), tuple(spec["stride"]),
                         tuple(spec["padding"]), tuple(spec["dilation"]), bias=spec["bias"],
                         dtype=dtype)
    if kind == "BatchNorm2d":
        return nn.BatchNorm2d(spec["features"], spec["eps"], spec["momentum"], dtype=dtype)
    if kind == "MaxPool2d":
        return nn.MaxPool2d(tuple(spec["kernel"]), tuple(spec["stride"]),
                            tuple(spec["padding"]), tuple(spec["dilation"]))
    return nn.AdaptiveAvgPool2d(tuple(spec["size"]))


# ------------------------------------------------------------------ ResNet

def resnet_spec(model):
    """The JSON description of a models.ResNet of BasicBlocks."""
    return [{"type": "ResNet", "blocks": [len(s) for s in (model.layer1, model.layer2,
                                                            model.layer3, model.layer4)],
             "classes": model.fc.out_features, "in": model.conv1.in_channels,
             "width": model.conv1.out_channels,
             "small_input": model.conv1.kernel_size == (3, 3),
             "dtype": str(model.fc.weight.dtype)}]


def check_resnet(spec):
    """The number of values (parameters and buffers) a ResNet spec needs."""
    blocks = spec.get("blocks")
    if not (isinstance(blocks, list) and len(blocks) == 4 and
            all(type(b) is int and 1 <= b <= 64 for b in blocks)):
        raise ValueError(f"ResNet: 'blocks' must be 4 integers from 1 to 64, got {blocks!r}")
    classes, c_in, w = (_int(0, spec, k) for k in ("classes", "in", "width"))
    if type(spec.get("small_input")) is not bool:
        raise ValueError("ResNet: 'small_input' must be true or false")
    _dtype(0, spec)
    k = 3 if spec["small_input"] else 7
    bn = lambda c: 4 * c + 1  # noqa: E731
    total, inplanes = c_in * w * k * k + bn(w), w
    for stage, n in enumerate(blocks):
        planes = w << stage
        if stage or inplanes != planes:  # the first block's 1x1 shortcut
            total += inplanes * planes + bn(planes)
        total += inplanes * planes * 9 + planes * planes * 9 + 2 * bn(planes)
        total += (n - 1) * (2 * planes * planes * 9 + 2 * bn(planes))
        inplanes = planes
    return total + inplanes * classes + classes


def build_resnet(spec):
    return models.ResNet(models.BasicBlock, spec["blocks"], spec["classes"], spec["in"],
                         spec["width"], spec["small_input"], dtype=np.dtype(spec["dtype"]))
