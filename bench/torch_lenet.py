"""The PyTorch peer of bench/train_throughput.py, run as its child process (no TensorFlow in this process).

Protocol on stdin/stdout: "ready" -> 0; "run E" -> images/s over E epochs. Usage: torch_lenet.py BATCH_SIZE
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from tfrobust import data as data_lib  # noqa: E402  (the arrays only: no TensorFlow is imported)

LR, MOMENTUM = 0.01, 0.9


class TorchEager:
  """The same LeNet ('same' padding, 6-16 conv 5x5, max-pool 2, FC 120-84-10) in PyTorch, eager, on CPU."""

  def __init__(self, ds, batch_size):
    import torch
    from torch import nn
    self.torch = torch
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    h, w, c = ds.input_shape
    flat = 16 * (-(-(-(-h // 2)) // 2)) * (-(-(-(-w // 2)) // 2))
    self.model = nn.Sequential(
        nn.Conv2d(c, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        nn.Conv2d(6, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True), nn.Flatten(),
        nn.Linear(flat, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
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
