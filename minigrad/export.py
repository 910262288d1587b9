"""Export a model to ONNX (the optional ``onnx`` package): ``to_onnx(model,
path, input_shape)``, and ``export_file`` behind ``minigrad export MODEL --onnx``.

The graph is built with ``onnx.helper`` for opset ``OPSET``, its batch
dimension dynamic, and checked with ``onnx.checker``; it computes the model in
evaluation mode (Dropout is the identity). ``EMITTERS`` maps each module type
to the function that writes its nodes; to export a new layer, register one::

    @emitter(nn.MyLayer)
    def _my_layer(g, m, x, shape):   # g: Graph, x: input name, shape: its shape
        return g.node("Relu", [x]), shape   # (output name, output shape)
"""
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minigrad import models, nn
from minigrad._files import atomic_write
from minigrad._version import __version__

__all__ = ["EMITTERS", "OPSET", "Graph", "emitter", "export_file", "input_shape_of",
           "to_onnx"]

OPSET = 17
FLOAT, DOUBLE = 1, 11  # onnx.TensorProto.FLOAT, .DOUBLE
Shape = tuple  # static sizes; None for the (dynamic) batch dimension
Emitter = Callable[["Graph", nn.Module, str, Shape], tuple[str, Shape]]
EMITTERS: dict[type, Emitter] = {}
"""Module type -> emitter(graph, module, input name, input shape) -> (output name, shape)."""


def _onnx():
    try:
        import onnx
    except ImportError as e:
        raise ImportError("ONNX export needs the onnx package: pip install 'minigrad[onnx]'") \
            from e
    return onnx


def emitter(*types: type) -> Callable[[Emitter], Emitter]:
    """Decorator registering an emitter for the given module types."""
    def register(fn: Emitter) -> Emitter:
        for t in types:
            EMITTERS[t] = fn
        return fn
    return register


class Graph:
    """The graph under construction: nodes, initializers and fresh names; its
    float type (``dtype``) is the model's."""

    def __init__(self, onnx, dtype: np.dtype):
        self.onnx, self.dtype = onnx, np.dtype(dtype)
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def fresh(self, hint: str) -> str:
        """A name not used before in this graph."""
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value, hint: str = "const", dtype=None) -> str:
        """An initializer holding ``value`` (in the graph's float type unless
        ``dtype`` is given); returns its name."""
        name = self.fresh(hint)
        array = np.asarray(value, dtype=dtype or self.dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: Sequence[str], hint: str | None = None, **attrs) -> str:
        """Append one node with one output; returns the output's name."""
        out = self.fresh(hint or op.lower())
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [out], **attrs))
        return out

    def emit(self, module: nn.Module, x: str, shape: Shape) -> tuple[str, Shape]:
        """The nodes of ``module`` applied to input ``x`` of the given shape."""
        fn = EMITTERS.get(type(module))
        if fn is None:
            raise TypeError(f"cannot export a layer of type {type(module).__name__} to ONNX "
                            f"(no emitter registered; see minigrad.export.emitter)")
        return fn(self, module, x, shape)


def _dim(dim: int, rank: int, what: str) -> int:
    if not -rank <= dim < rank:
        raise ValueError(f"{what}: dim {dim} is out of range for a {rank}-d input")
    return dim % rank


@emitter(nn.Sequential)
def _sequential(g, m, x, shape):
    for layer in m.layers:
        x, shape = g.emit(layer, x, shape)
    return x, shape


@emitter(nn.Linear)
def _linear(g, m, x, shape):
    if shape[-1] != m.in_features:
        raise ValueError(f"Linear({m.in_features}, {m.out_features}) gets inputs of "
                         f"size {shape[-1]}")
    if len(shape) != 2:
        raise ValueError(f"Linear takes 2-D inputs (batch, features), got {len(shape)}-D")
    inputs = [x, g.const(m.weight.numpy(), "weight")]
    if m.bias is not None:
        inputs.append(g.const(m.bias.numpy(), "bias"))
    return g.node("Gemm", inputs, "linear", transB=1), (shape[0], m.out_features)


@emitter(nn.LinearReLU)
def _linear_relu(g, m, x, shape):
    y, shape = _linear(g, m.linear, x, shape)
    return g.node("Relu", [y]), shape


def _unary(op: str, **attrs_of: Callable[[Any], object]) -> Emitter:
    def emit(g, m, x, shape):
        return g.node(op, [x], **{k: f(m) for k, f in attrs_of.items()}), shape
    return emit


for _type, _op in [(nn.ReLU, "Relu"), (nn.Sigmoid, "Sigmoid"), (nn.Tanh, "Tanh"),
                   (nn.Identity, "Identity"), (nn.Dropout, "Identity")]:
    emitter(_type)(_unary(_op))


@emitter(nn.ELU)
def _elu(g, m, x, shape):
    if g.dtype != np.float64:
        return g.node("Elu", [x], alpha=float(m.alpha)), shape
    # ONNX Runtime has no double Elu: x where x > 0, else alpha (exp(x) - 1)
    below = g.node("Mul", [g.node("Sub", [g.node("Exp", [x]), g.const(1.0)]),
                           g.const(m.alpha)])
    return g.node("Where", [g.node("Greater", [x, g.const(0.0)]), x, below], "elu"), shape


emitter(nn.LeakyReLU)(_unary("LeakyRelu", alpha=lambda m: float(m.negative_slope)))


@emitter(nn.Softmax, nn.LogSoftmax)
def _softmax(g, m, x, shape):
    axis = _dim(m.dim, len(shape), type(m).__name__)
    return g.node(type(m).__name__, [x], axis=axis), shape


@emitter(nn.SiLU)
def _silu(g, m, x, shape):
    return g.node("Mul", [x, g.node("Sigmoid", [x])], "silu"), shape


@emitter(nn.GELU)
def _gelu(g, m, x, shape):
    if m.approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = g.node("Mul", [g.node("Mul", [x, x]), x])
        inner = g.node("Add", [x, g.node("Mul", [cube, g.const(0.044715)])])
        t = g.node("Tanh", [g.node("Mul", [inner, g.const(math.sqrt(2 / math.pi))])])
    else:  # 0.5 x (1 + erf(x / sqrt 2))
        t = g.node("Div", [x, g.const(math.sqrt(2.0))])
        if g.dtype == np.float64:  # ONNX Runtime has no double Erf: float's is within 1e-7
            t = g.node("Cast", [g.node("Erf", [g.node("Cast", [t], to=FLOAT)])], to=DOUBLE)
        else:
            t = g.node("Erf", [t])
    half_x = g.node("Mul", [x, g.const(0.5)])
    return g.node("Mul", [half_x, g.node("Add", [t, g.const(1.0)])], "gelu"), shape


@emitter(nn.Softplus)
def _softplus(g, m, x, shape):  # log(1 + exp(beta x)) / beta; x where beta x > threshold
    z = g.node("Mul", [x, g.const(m.beta)])
    # log(1 + exp(z)) = max(z, 0) + log(1 + exp(-|z|)), from ops that ONNX Runtime
    # has for double too (its Softplus is float only)
    tail = g.node("Exp", [g.node("Neg", [g.node("Abs", [z])])])
    log1p = g.node("Log", [g.node("Add", [tail, g.const(1.0)])])
    soft = g.node("Div", [g.node("Add", [g.node("Relu", [z]), log1p]), g.const(m.beta)])
    big = g.node("Greater", [z, g.const(m.threshold)])
    return g.node("Where", [big, x, soft], "softplus"), shape


@emitter(nn.Hardtanh)
def _hardtanh(g, m, x, shape):
    return g.node("Clip", [x, g.const(m.min_val), g.const(m.max_val)], "hardtanh"), shape


@emitter(nn.Flatten)
def _flatten(g, m, x, shape):
    start = _dim(m.start_dim, len(shape), "Flatten")
    end = _dim(m.end_dim, len(shape), "Flatten")
    if start > end:
        raise ValueError(f"Flatten: start_dim {m.start_dim} comes after end_dim {m.end_dim}")
    merged = shape[start:end + 1]
    size = None if None in merged else math.prod(merged)
    out = (*shape[:start], size, *shape[end + 1:])
    # Reshape: 0 copies the (dynamic) batch size, -1 infers the merged size
    target = [-1 if i == start and size is None else 0 if d is None else d
              for i, d in enumerate(out)]
    return g.node("Reshape", [x, g.const(target, "shape", np.int64)], "flatten"), out


# ------------------------------------------------------------------ convolutional layers

def _window_out(shape, k, s, p, d, what):
    hw = [(size + 2 * pp - dd * (kk - 1) - 1) // ss + 1
          for size, kk, ss, pp, dd in zip(shape[2:], k, s, p, d, strict=True)]
    if len(shape) != 4 or min(hw) < 1:
        raise ValueError(f"{what}: needs (N, C, H, W) inputs with an output of at least 1x1, "
                         f"got input shape {shape}")
    return hw


def _pair(v):
    return (v, v) if isinstance(v, (int, np.integer)) else tuple(v)


@emitter(nn.Conv2d)
def _conv(g, m, x, shape):
    if isinstance(m.padding, str) or shape[1] != m.in_channels:
        raise ValueError(f"Conv2d({m.in_channels}, {m.out_channels}): cannot export padding "
                         f"{m.padding!r} or inputs of shape {shape}")
    hw = _window_out(shape, m.kernel_size, m.stride, m.padding, m.dilation, "Conv2d")
    inputs = [x, g.const(m.weight.numpy(), "weight")]
    if m.bias is not None:
        inputs.append(g.const(m.bias.numpy(), "bias"))
    y = g.node("Conv", inputs, "conv", kernel_shape=list(m.kernel_size),
               strides=list(m.stride), pads=list(m.padding) * 2, dilations=list(m.dilation))
    return y, (shape[0], m.out_channels, *hw)


@emitter(nn.Conv2dReLU)
def _conv_relu(g, m, x, shape):
    y, shape = _conv(g, m.conv, x, shape)
    return g.node("Relu", [y]), shape


@emitter(nn.BatchNorm1d, nn.BatchNorm2d)
def _batch_norm(g, m, x, shape):
    if m.running_mean is None:
        raise ValueError("BatchNorm without running statistics (track_running_stats=False) "
                         "cannot be exported: evaluation would use the batch's")
    c = m.num_features
    scale = m.weight.numpy() if m.weight is not None else np.ones(c)
    bias = m.bias.numpy() if m.bias is not None else np.zeros(c)
    inputs = [x] + [g.const(v, hint) for v, hint in
                    ((scale, "scale"), (bias, "bias"), (m.running_mean.numpy(), "mean"),
                     (m.running_var.numpy(), "var"))]
    return g.node("BatchNormalization", inputs, "batchnorm", epsilon=float(m.eps)), shape


@emitter(nn.BatchNormReLU)
def _batch_norm_relu(g, m, x, shape):
    y, shape = _batch_norm(g, m.bn, x, shape)
    return g.node("Relu", [y]), shape


@emitter(nn.MaxPool2d, nn.AvgPool2d)
def _pool(g, m, x, shape):
    k = _pair(m.kernel_size)
    s, p = _pair(m.stride or m.kernel_size), _pair(m.padding)
    if isinstance(m, nn.MaxPool2d):
        d = _pair(m.dilation)
        hw = _window_out(shape, k, s, p, d, "MaxPool2d")
        y = g.node("MaxPool", [x], "maxpool", kernel_shape=list(k), strides=list(s),
                   pads=list(p) * 2, dilations=list(d))
    else:
        hw = _window_out(shape, k, s, p, (1, 1), "AvgPool2d")
        y = g.node("AveragePool", [x], "avgpool", kernel_shape=list(k), strides=list(s),
                   pads=list(p) * 2, count_include_pad=int(m.count_include_pad))
    return y, (*shape[:2], *hw)


@emitter(nn.AdaptiveAvgPool2d)
def _adaptive_avg_pool(g, m, x, shape):
    out = _pair(m.output_size)
    out = tuple(shape[2 + i] if o is None else o for i, o in enumerate(out))
    if out == (1, 1):
        return g.node("GlobalAveragePool", [x], "avgpool"), (*shape[:2], 1, 1)
    if any(size % o for size, o in zip(shape[2:], out, strict=True)):
        raise ValueError(f"AdaptiveAvgPool2d{out}: exported only to 1x1 or to sizes that "
                         f"divide the input's {shape[2:]}")
    k = [size // o for size, o in zip(shape[2:], out, strict=True)]
    return g.node("AveragePool", [x], "avgpool", kernel_shape=k, strides=k), (*shape[:2], *out)


@emitter(models.BasicBlock)
def _basic_block(g, m, x, shape):
    y, s = _batch_norm_relu(g, nn.BatchNormReLU(m.bn1), *_conv(g, m.conv1, x, shape))
    y, s = _batch_norm(g, m.bn2, *_conv(g, m.conv2, y, s))
    identity = x if m.downsample is None else g.emit(m.downsample, x, shape)[0]
    return g.node("Relu", [g.node("Add", [y, identity])]), s


@emitter(models.ResNet)
def _resnet(g, m, x, shape):
    x, shape = _batch_norm_relu(g, nn.BatchNormReLU(m.bn1), *_conv(g, m.conv1, x, shape))
    for layer in (m.maxpool, m.layer1, m.layer2, m.layer3, m.layer4, m.avgpool, nn.Flatten(),
                  m.fc):
        x, shape = g.emit(layer, x, shape)
    return x, shape


def _float_type(model: nn.Module, dtype) -> np.dtype:
    dtypes = {p.numpy().dtype for p in model.parameters()}
    if dtype is not None:
        dtypes.add(np.dtype(dtype))
    if len(dtypes) > 1:
        raise TypeError(f"the model's parameters and input must share one float type, got "
                        f"{sorted(map(str, dtypes))}")
    dtype = dtypes.pop() if dtypes else np.dtype(np.float32)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"ONNX export supports float32 and float64 models, got {dtype}")
    return dtype


def to_onnx(model: nn.Module, path, input_shape: Sequence[int], *, opset: int = OPSET,
            metadata: dict | None = None, dtype=None):
    """Write ``model`` as an ONNX file at path and return the ModelProto.

    ``input_shape`` is the shape of ONE sample, without the batch dimension
    (``(784,)`` for flat MNIST images); the graph's input "input" has shape
    ("batch", *input_shape) in the model's float type, and its output is
    "output". ``dtype`` is the float type, by default the parameters' (float32
    for a model without parameters). ``metadata`` (str -> str) becomes the
    model's metadata_props."""
    onnx = _onnx()
    helper = onnx.helper
    if not 13 <= opset <= onnx.defs.onnx_opset_version():
        raise ValueError(f"opset must be from 13 (Softmax along one axis) to "
                         f"{onnx.defs.onnx_opset_version()}, got {opset}")
    input_shape = tuple(input_shape)
    if not all(type(d) is int and d > 0 for d in input_shape):
        raise ValueError(f"input_shape must be positive integers (one sample, without the "
                         f"batch dimension), got {input_shape}")
    g = Graph(onnx, _float_type(model, dtype))
    out, out_shape = g.emit(model, "input", (None, *input_shape))
    g.nodes.append(helper.make_node("Identity", [out], ["output"]))
    elem = helper.np_dtype_to_tensor_dtype(g.dtype)
    graph = helper.make_graph(
        g.nodes, "minigrad", [helper.make_tensor_value_info("input", elem,
                                                            ["batch", *input_shape])],
        [helper.make_tensor_value_info("output", elem, ["batch", *out_shape[1:]])],
        initializer=g.initializers)
    proto = helper.make_model(graph, producer_name="minigrad", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", opset)])
    proto.ir_version = min(proto.ir_version, 8)  # readable by ONNX Runtime 1.14 and later
    helper.set_model_props(proto, {str(k): str(v) for k, v in (metadata or {}).items()})
    onnx.checker.check_model(proto, full_check=True)
    atomic_write(path, lambda f: f.write(proto.SerializeToString()))
    return proto


def input_shape_of(model: nn.Module) -> tuple[int, ...]:
    """(in_features,) of the first Linear when only shape-keeping layers come
    before it; TypeError when the input shape cannot be told from the model."""
    layers = model.layers if isinstance(model, nn.Sequential) else [model]
    for layer in layers:
        linear = layer.linear if isinstance(layer, nn.LinearReLU) else layer
        if isinstance(linear, nn.Linear):
            return (linear.in_features,)
        if isinstance(layer, (nn.Flatten, nn.Sequential)) or type(layer) not in EMITTERS:
            break
    raise TypeError("cannot tell the model's input shape from its layers; pass input_shape")


def export_file(model_path, onnx_path, input_shape: Sequence[int] | None = None):
    """Export a model file (as saved by minigrad.save) to ONNX; its metadata
    (task, classes, ...) goes into the ONNX metadata_props as JSON strings."""
    from minigrad.serialize import load_model

    model, meta = load_model(model_path)
    first = getattr(model, "conv1", None) or model.layers[0]
    if input_shape is None and isinstance(first, nn.Conv2d) and "task" in meta:
        input_shape = (first.in_channels, 28, 28)  # the command line's digit images
    shape = input_shape_of(model) if input_shape is None else input_shape
    return to_onnx(model, onnx_path, shape,
                   metadata={k: json.dumps(v) for k, v in meta.items()})
