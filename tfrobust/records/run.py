"""A run directory's records: hparams.json (what the run is), result.json (what it measured) and examples.npz
(which test examples it got right, clean and under each attack, norm and ε, and each example's smallest fooling ε
on the grid). The report's paired bootstrap resamples test examples from examples.npz, the same draw for every
network, so that networks scored on the same examples stay paired.

examples.npz holds, in the test split's fixed order (the first n examples of it for the attacks):
  clean                        bool [N_test]: classified right without attack
  curve.<attack>.<norm>.eps     float64 [n_eps], ascending: the ε grid (pixel scale [0, 1], in the norm)
  curve.<attack>.<norm>.correct bool [n_eps, n]: still classified right under the attack at each ε
  curve.<attack>.<norm>.min_fool_eps float64 [n]: the smallest grid ε at which the example is fooled (inf: never
                               on the grid; the first ε, usually 0, for an example wrong without attack)
  curve.<attack>.<norm>.bisected.robust_eps, .bisected.fool_eps  float64 [n], only with --bisection_steps: the
                               smallest fooling ε refined between grid points, in (robust_eps, fool_eps] (the
                               largest ε found not to fool the example, the smallest found to fool it; inf: never)
"""

import dataclasses
import io as _bytes_io
import os
from typing import Dict, Optional, Tuple

import numpy as np

from tfrobust import io
from tfrobust.records import names
from tfrobust.records import upgrade

_CURVE_PREFIX = "curve."


@dataclasses.dataclass(frozen=True)
class ExampleCurve:
  """One attack × norm over its ε grid, per example (see the module docstring for units and shapes)."""
  attack: str
  norm: str
  eps: np.ndarray
  correct: np.ndarray
  robust_eps: Optional[np.ndarray] = None  # with --bisection_steps: the bracket (robust_eps, fool_eps] per example
  fool_eps: Optional[np.ndarray] = None

  @property
  def min_fool_eps(self):
    return min_fool_eps(self.eps, self.correct)

  def at(self, eps, *, rel_tol=1e-6, abs_tol=1e-9):
    """The correct[n] row at grid value `eps`, or None when `eps` is not on the grid."""
    hits = np.flatnonzero(np.isclose(self.eps, eps, rtol=rel_tol, atol=abs_tol))
    return self.correct[hits[0]] if len(hits) else None


@dataclasses.dataclass(frozen=True)
class Examples:
  """A run's per-example outcomes: `clean` [N_test] and one ExampleCurve per (attack, norm)."""
  clean: np.ndarray
  curves: Dict[Tuple[str, str], ExampleCurve]


def min_fool_eps(eps, correct):
  """Per example, the smallest ε of the grid at which it is not classified right (inf where it never is fooled)."""
  eps, correct = np.asarray(eps, np.float64), np.asarray(correct, bool)
  fooled = ~correct
  first = np.argmax(fooled, axis=0)
  return np.where(fooled.any(axis=0), eps[first], np.inf)


def write_examples(run_dir, examples):
  """Writes examples.npz atomically; ValueError when shapes or the ε order are inconsistent."""
  arrays = {"clean": np.asarray(examples.clean, bool)}
  for (attack, norm), c in sorted(examples.curves.items()):
    eps, correct = np.asarray(c.eps, np.float64), np.asarray(c.correct, bool)
    if correct.ndim != 2 or correct.shape[0] != len(eps):
      raise ValueError(f"curve {attack} {norm}: correct has shape {correct.shape}, want [{len(eps)}, n]")
    if np.any(np.diff(eps) <= 0):
      raise ValueError(f"curve {attack} {norm}: ε grid {eps.tolist()} is not strictly ascending")
    key = f"{_CURVE_PREFIX}{attack}.{norm}."
    arrays.update({key + "eps": eps, key + "correct": correct, key + "min_fool_eps": min_fool_eps(eps, correct)})
    if c.fool_eps is not None:
      arrays.update({key + "bisected.robust_eps": np.asarray(c.robust_eps, np.float64),
                     key + "bisected.fool_eps": np.asarray(c.fool_eps, np.float64)})
  buffer = _bytes_io.BytesIO()
  np.savez_compressed(buffer, **arrays)
  return io.write_bytes(os.path.join(run_dir, names.EXAMPLES_FILE), buffer.getvalue())


def read_examples(run_dir) -> Optional[Examples]:
  """The run's Examples, or None when it has no examples.npz (runs written before it existed)."""
  path = os.path.join(run_dir, names.EXAMPLES_FILE)
  if not os.path.isfile(path):
    return None
  with np.load(path) as z:
    arrays = {k: z[k] for k in z.files}
  curves = {}
  for key in arrays:
    if key.startswith(_CURVE_PREFIX) and key.endswith(".eps"):
      attack, norm = key[len(_CURVE_PREFIX):-len(".eps")].split(".", 1)
      stem = key[:-len("eps")]
      curves[(attack, norm)] = ExampleCurve(attack, norm, arrays[key], arrays[stem + "correct"],
                                            arrays.get(stem + "bisected.robust_eps"),
                                            arrays.get(stem + "bisected.fool_eps"))
  return Examples(clean=arrays["clean"], curves=curves)


def write_hparams(run_dir, identity):
  return io.write_json(os.path.join(run_dir, names.HPARAMS_FILE), identity)


def read_hparams(run_dir):
  """hparams.json with the defaults of keys added since (upgrade.hparams), or None when there is none."""
  path = os.path.join(run_dir, names.HPARAMS_FILE)
  return upgrade.hparams(io.read_json(path)) if os.path.exists(path) else None


def write_result(run_dir, result):
  return io.write_json(os.path.join(run_dir, names.RESULT_FILE), result)


def read_result(run_dir):
  """result.json, or None when the run has not finished."""
  path = os.path.join(run_dir, names.RESULT_FILE)
  return io.read_json(path) if os.path.exists(path) else None
