"""Random nn.Sequential models over every layer minigrad has, for the
safetensors and ONNX round trips."""
import numpy as np

from minigrad import nn

ACTIVATIONS = [
    lambda r: nn.ReLU(), lambda r: nn.Sigmoid(), lambda r: nn.Tanh(), lambda r: nn.SiLU(),
    lambda r: nn.GELU(), lambda r: nn.GELU(approximate="tanh"), lambda r: nn.Identity(),
    lambda r: nn.Softplus(beta=float(r.uniform(0.5, 3)), threshold=float(r.uniform(0.5, 5))),
    lambda r: nn.ELU(alpha=float(r.uniform(0.1, 2))),
    lambda r: nn.LeakyReLU(negative_slope=float(r.uniform(0.01, 0.5))),
    lambda r: nn.Hardtanh(min_val=float(r.uniform(-2, -0.1)), max_val=float(r.uniform(0.1, 2))),
    lambda r: nn.Dropout(p=float(r.uniform(0, 0.9))),
]
HEADS = [lambda r: nn.Softmax(dim=-1), lambda r: nn.LogSoftmax(dim=1), lambda r: nn.Identity()]


def random_model(seed, dtype=np.float32, fused=True, sample=(3, 4)):
    """(model, sample shape): Flatten, then 2-4 Linear (or LinearReLU) layers
    with random activations between them, then a softmax-like head."""
    rng = np.random.default_rng(seed)
    layers, width = [nn.Flatten()], int(np.prod(sample))
    for _ in range(rng.integers(2, 5)):
        out = int(rng.integers(1, 9))
        linear = nn.Linear(width, out, bias=bool(rng.integers(0, 4)), dtype=dtype, rng=rng)
        if fused and rng.random() < 0.3:
            layers.append(nn.LinearReLU(linear))
        else:
            layers.append(linear)
            for _ in range(rng.integers(0, 3)):
                layers.append(ACTIVATIONS[rng.integers(len(ACTIVATIONS))](rng))
        width = out
    layers.append(HEADS[rng.integers(len(HEADS))](rng))
    return nn.Sequential(*layers), sample


def predict(model, x):
    import minigrad as mg

    model.eval()
    with mg.no_grad():
        return model(mg.tensor(x)).numpy()
