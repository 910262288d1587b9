"""The compiled step's kernel calls, written once: ``forward_calls`` and
``backward_calls`` name them in order to a sink, either a
``kernels.StepProgram`` that records them (checked once, then made by one C
call a phase) or ``Direct``, which makes each at once from Python. An operand
given as None is the batch's input."""
import numpy as np

from minigrad import kernels as K

_NAME = {i: name for name, i in K.KERNEL_ID.items()}


def forward_calls(sink, layers, buf, loss, head, needs_dx):
    """Each layer's forward product into buf.out, then the loss and its gradient
    (with ``head``: the last layer, the loss and the gradient at its input in
    one call, kernels.linear_cross_entropy)."""
    h = None
    for (w, b, relu), out in zip(layers[:-1] if head else layers, buf.out, strict=False):
        sink.linear(0, h, w._a, None if b is None else b._a, out, relu)
        h = out
    z, dz = buf.out[-1], buf.dout[-1]
    if head:
        w, b, _ = layers[-1]
        sink.head(0, h, w._a, None if b is None else b._a, z, dz,
                  buf.dz[-2] if needs_dx[-1] else None, layers[-2][2])
    elif loss == "cross_entropy":
        sink.softmax_cross_entropy(0, z, dz)
    else:
        sink.loss(0, K.KERNEL_ID["bce_with_logits" if loss == "bce" else "mnist_loss"], z, dz)


def backward_calls(sink, layers, buf, head, needs_dx, weight_grads):
    """From the last layer down: the gradient through ReLU and the bias
    gradient, the input gradient where an earlier layer trains, and the
    weight gradient of each weight that requires grad."""
    last = len(layers) - 1
    for i in range(last, -1, -1):
        w, b, relu = layers[i]
        dz = buf.dz[i]
        # the fused head's forward already left the layer below it its dz
        relu = relu and not (head and i == last - 1)
        if relu and b is None:
            sink.binary(1, K.KERNEL_ID["relu_backward"], buf.dout[i], buf.out[i], dz)
        elif relu:
            sink.relu_backward_bias_grad(1, buf.dout[i], buf.out[i], dz, buf.bias_grad[i])
        elif b is not None:
            sink.bias_grad(1, dz, buf.bias_grad[i])
        if needs_dx[i] and not (head and i == last):
            sink.matmul(1, dz, w._a, buf.dout[i - 1], False)
        if w.requires_grad:
            sink.matmul(1, dz, None if i == 0 else buf.out[i - 1], weight_grads[i], True)


class Direct:
    """A sink that makes each call at once through the validating wrappers, on
    the input x (uint8 read as x / scale) and targets t. A loss that refuses
    its targets (a label out of range) sets ``refused`` instead of raising:
    eager then runs the batch and raises its own error."""

    def __init__(self, x, t=None, scale=None):
        self.x, self.t, self.scale = x, t, scale
        self.value, self.refused = None, False

    def _in(self, a):
        return self.x if a is None else a

    def linear(self, phase, x, w, b, out, relu):
        K.linear(self._in(x), w, b, relu=relu, trans_w=True, out=out,
                 scale=self.scale if x is None else None)

    def matmul(self, phase, a, b, out, trans_a):
        K.matmul(self._in(a), self._in(b), trans_a=trans_a, out=out,
                 scale=self.scale if a is None or b is None else None)

    def head(self, phase, x, w, b, z, dz, dx, relu):
        self._loss(lambda: K.linear_cross_entropy(
            x, w, b, self.t, relu=relu, input_grad=dx is not None, logits_out=z, grad_out=dz,
            input_grad_out=dx))

    def softmax_cross_entropy(self, phase, z, dz):
        self._loss(lambda: K.softmax_cross_entropy(z, self.t, out=dz))

    def loss(self, phase, kernel, z, dz):
        t = np.asarray(self.t.reshape(z.shape), dtype=z.dtype, order="C")
        self._loss(lambda: getattr(K, _NAME[kernel])(z, t, out=dz))

    def _loss(self, call):
        try:
            self.value = call()[0]
        except ValueError:
            self.refused = True

    def binary(self, phase, kernel, g, a, out):
        getattr(K, _NAME[kernel])(g, a, out=out)

    def relu_backward_bias_grad(self, phase, g, y, dx, db):
        K.relu_backward_bias_grad(g, y, out=dx, bias_out=db)

    def bias_grad(self, phase, g, db):
        K.bias_grad(g, out=db)
