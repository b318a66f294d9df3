"""The PyTorch peer of bench/train_throughput.py, run as its child process (no TensorFlow in this process).

Protocol on stdin/stdout: "ready" -> 0; "run E" -> images/s over E epochs. Usage: torch_lenet.py BATCH_SIZE
The LeNet and its Keras weight import are shared with bench/hessian_pyhessian.py (same weights in both).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from tfrobust import data as data_lib  # noqa: E402  (the arrays only: no TensorFlow is imported)

LR, MOMENTUM = 0.01, 0.9


def _pooled(n):
  """Side after two 2x2 max-pools with 'same' padding (Keras) = ceil_mode=True (torch)."""
  return -(-(-(-n // 2)) // 2)


def lenet(input_shape, num_classes=10):
  """tfrobust's LeNet ('same' padding, 6-16 conv 5x5, max-pool 2, FC 120-84-classes) as a torch Sequential;
  input_shape is Keras's (H, W, C), the model takes NCHW."""
  from torch import nn
  h, w, c = input_shape
  return nn.Sequential(
      nn.Conv2d(c, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
      nn.Conv2d(6, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True), nn.Flatten(),
      nn.Linear(16 * _pooled(h) * _pooled(w), 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
      nn.Linear(84, num_classes))


def keras_to_torch(arrays, input_shape):
  """LeNet's Keras trainable weights (model.trainable_variables order) as numpy arrays in torch's layout and
  parameter order. Conv HWIO -> OIHW, Dense (in, out) -> (out, in), and the first dense layer's inputs from
  Keras's NHWC flatten order (h, w, c) to torch's NCHW order (c, h, w). Also maps Hessian-vector pieces,
  which have the weights' shapes."""
  h, w, _ = input_shape
  out, first_dense = [], True
  for a in arrays:
    a = np.asarray(a)
    if a.ndim == 4:
      a = a.transpose(3, 2, 0, 1)
    elif a.ndim == 2:
      if first_dense:
        first_dense = False
        c = a.shape[0] // (_pooled(h) * _pooled(w))
        a = a.reshape(_pooled(h), _pooled(w), c, -1).transpose(2, 0, 1, 3).reshape(a.shape)
      a = a.T
    out.append(np.ascontiguousarray(a))
  return out


def torch_to_keras(arrays, input_shape):
  """The inverse of keras_to_torch (e.g. a torch Hessian-vector product back into Keras's flat order)."""
  h, w, _ = input_shape
  out, first_dense = [], True
  for a in arrays:
    a = np.asarray(a)
    if a.ndim == 4:
      a = a.transpose(2, 3, 1, 0)
    elif a.ndim == 2:
      a = a.T
      if first_dense:
        first_dense = False
        c = a.shape[0] // (_pooled(h) * _pooled(w))
        a = a.reshape(c, _pooled(h), _pooled(w), -1).transpose(1, 2, 0, 3).reshape(a.shape)
    out.append(np.ascontiguousarray(a))
  return out


def load_keras_weights(model, arrays, input_shape):
  """Copies LeNet's Keras weights (see keras_to_torch) into the torch `model` in place."""
  import torch
  params = list(model.parameters())
  converted = keras_to_torch(arrays, input_shape)
  if [tuple(p.shape) for p in params] != [a.shape for a in converted]:
    raise ValueError(f"weight shapes differ: torch {[tuple(p.shape) for p in params]}, "
                     f"Keras (converted) {[a.shape for a in converted]}")
  with torch.no_grad():
    for p, a in zip(params, converted):
      p.copy_(torch.from_numpy(a))


class TorchEager:
  """The same LeNet ('same' padding, 6-16 conv 5x5, max-pool 2, FC 120-84-10) in PyTorch, eager, on CPU."""

  def __init__(self, ds, batch_size):
    import torch
    from torch import nn
    self.torch = torch
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    self.model = lenet(ds.input_shape)
    self.opt = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
    self.loss = nn.CrossEntropyLoss()
    self.x = torch.from_numpy(np.ascontiguousarray(ds.x_train.transpose(0, 3, 1, 2)))
    self.y = torch.from_numpy(ds.y_train)
    self.b = batch_size
    self.steps_per_epoch = len(ds.x_train) // batch_size

  def run(self, epochs):
    torch = self.torch
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
      order = torch.randperm(len(self.x), generator=g)
      for i in range(self.steps_per_epoch):
        idx = order[i * self.b:(i + 1) * self.b]
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss(self.model(self.x[idx]), self.y[idx])
        loss.backward()
        self.opt.step()
    return self.steps_per_epoch * epochs * self.b


def main():
  runner = TorchEager(data_lib.load_mnist5k(), int(sys.argv[1]))
  for line in sys.stdin:
    cmd = line.split()
    if cmd and cmd[0] == "run":
      t0 = time.perf_counter()
      images = runner.run(int(cmd[1]))
      print(images / (time.perf_counter() - t0), flush=True)
    else:
      print(0.0, flush=True)


if __name__ == "__main__":
  main()
