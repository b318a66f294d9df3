"""APGD, Auto-PGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks"): PGD with momentum whose step size needs no tuning. It starts at 2ε and is halved at
checkpoints where the loss stopped rising, each time going back to the best point so far. Its losses: "ce",
"dlr" and the targeted DLR of APGD-T.

Per batch and pure tensors in and out: usable inside a `tf.function`, with ε and steps as tensors (one trace
serves every ε). The caller does the batching. Units: images on the [0, 1] pixel scale; ε on that scale, in the
attack's norm ("inf" or "2"). Seeds: per-example stateless pairs, `apgd_seeds(index, seed)`.

Choices, and where they differ from the reference code (fra31/auto-attack, autoattack/autopgd_base.py):
- "ce" is attacks.log_odds, logsumexp_{j≠y} z_j − z_y = softplus⁻¹(CE). CE is an increasing function of it, so
  each step direction (the sign, or the normalised gradient) and each comparison ("did the loss rise", "best
  point") is the one CE gives in exact arithmetic. In float32, CE saturates on confident examples: its gradient
  (1 − p_y)·∇ underflows to 0, and equal losses count as "no rise", which halves the step for nothing. The
  log-odds form avoids both (attacks.py has the numbers).
- Checkpoints w_j = ⌈p_j·N⌉ as the paper has them, in exact integer arithmetic (p_j in hundredths). For N = 100
  they equal the reference's integer windows.
- Condition 1 uses the paper's strict "<" (the reference has ≤). Condition 2 may already fire at w_1 (η and the
  best loss unchanged since w_0 = 0), as the paper states; the reference skips w_1.
- Examples that the model misclassifies already are not attacked: they come back unchanged, with fooled set, as in
  AutoAttack. Per example the result is the first point that fools the model, else the highest-loss point.
  Over restarts (and targets) it is the first run that fools, else the highest loss. Runs stop early once every
  example of the batch is fooled; until then every example is computed (fooled ones masked, not gathered out).
- The random start is on the ball's boundary, as in the reference: x + ε·u/‖u‖, with u from
  attacks.random_start (uniform in the L∞ box; for L2, a Gaussian direction).
- L2 projection: δ scaled to norm ≤ ε, then clipped to [0, 1]. Clipping only shortens δ, so the point lies in
  both sets. This is the reference's projection, not the exact Euclidean projection onto their intersection.
"""

import tensorflow as tf

from tfrobust.evaluators.robustness.attacks import example_seeds, log_odds, margin, misclassified, random_start

APGD_STREAM = 600_000  # Seed stream of the starts; run k (restart r of target t: k = t·R + r) uses +2k.
_STREAMS_PER_RUN = 2  # random_start uses stream + 1 for the L2 radius.
INITIAL_STEP = 2.0  # η⁽⁰⁾ = 2ε.
MOMENTUM = 0.75  # α: weight of the new step against the last move.
RHO = 0.75  # ρ: the fraction of rising steps below which a checkpoint halves η.
_P1, _SHRINK, _MIN_WINDOW, _WHOLE = 22, 3, 6, 100  # p_1 = 0.22, windows shrink by 0.03 to ≥ 0.06, in hundredths.
DLR_EPS = 1e-12  # Keeps DLR's denominator positive when the top logits tie.
_TINY = 1e-12  # Smallest norm a gradient or perturbation is divided by.
LOSSES = ("ce", "dlr", "dlr_targeted")
NORMS = ("inf", "2")


def apgd_seeds(index, seed):
  """Per-example stateless seed pairs [B, 2] for `apgd` from example indices [B] and the run's seed."""
  return example_seeds(index, seed, APGD_STREAM)


def checkpoint_fractions():
  """The paper's p_j ≤ 1 in hundredths: p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06)."""
  p = [0, _P1]
  while p[-1] + max(p[-1] - p[-2] - _SHRINK, _MIN_WINDOW) <= _WHOLE:
    p.append(p[-1] + max(p[-1] - p[-2] - _SHRINK, _MIN_WINDOW))
  return p


def checkpoints(steps):
  """The iterations w_j = ⌈p_j·steps⌉ (int32 [J], w_0 = 0 first; equal ones repeat when steps is small)."""
  p = tf.constant(checkpoint_fractions(), tf.int64)
  return tf.cast((p * tf.cast(steps, tf.int64) + _WHOLE - 1) // _WHOLE, tf.int32)


def dlr(labels, logits):
  """Difference of Logits Ratio −(z_y − max_{i≠y} z_i)/(z_π1 − z_π3): the margin without the logits' scale, so
  invariant to shifting and (positive) scaling the logits. Needs ≥ 3 classes."""
  top = tf.math.top_k(logits, _need_classes(logits, 3, "dlr")).values
  return margin(labels, logits) / (top[:, 0] - top[:, 2] + DLR_EPS)


def dlr_targeted(labels, logits, target):
  """Targeted DLR −(z_y − z_t)/(z_π1 − (z_π3 + z_π4)/2) towards class `target` [B]. Needs ≥ 4 classes."""
  top = tf.math.top_k(logits, _need_classes(logits, 4, "dlr_targeted")).values
  gap = tf.gather(logits, target, batch_dims=1) - tf.gather(logits, labels, batch_dims=1)
  return gap / (top[:, 0] - 0.5 * (top[:, 2] + top[:, 3]) + DLR_EPS)


def _need_classes(logits, k, name):
  classes = logits.shape[-1]
  if classes is not None and classes < k:
    raise ValueError(f"loss={name} needs at least {k} classes, got {classes}")
  return k


def project(x, point, *, eps, norm):
  """`point` moved into the ε-ball of `norm` around x and into [0, 1] (see the module docstring for L2)."""
  if norm == "inf":
    return tf.clip_by_value(tf.clip_by_value(point, x - eps, x + eps), 0.0, 1.0)
  delta = point - x
  return tf.clip_by_value(x + delta * tf.minimum(1.0, eps / tf.maximum(_l2(delta), _TINY)), 0.0, 1.0)


def _l2(v):
  """Per-example L2 norms, shaped [B, 1, ...] to broadcast against v."""
  return tf.sqrt(tf.reduce_sum(tf.square(v), axis=tf.range(1, tf.rank(v)), keepdims=True))


def _ascent(grad, norm):
  """The unit step of steepest ascent in `norm`: sign(g) for L∞, g/‖g‖₂ for L2."""
  return tf.sign(grad) if norm == "inf" else grad / tf.maximum(_l2(grad), _TINY)


def _start(seeds, x, *, norm, eps):
  """A random point on the ε-sphere of `norm` (the reference's start), from attacks.random_start's draws."""
  u = random_start(seeds, x, norm=norm, eps=1.0)
  size = _l2(u) if norm == "2" else tf.reduce_max(tf.abs(u), axis=tf.range(1, tf.rank(u)), keepdims=True)
  return eps * u / tf.maximum(size, _TINY)


def _pick(mask, a, b):
  """Per example, a where `mask` [B] else b."""
  return tf.where(tf.reshape(mask, [-1] + [1] * (a.shape.rank - 1)), a, b)


def _check_norm(norm):
  if norm not in NORMS:
    raise ValueError(f"norm={norm!r}: choose one of {', '.join(NORMS)}")


def _evaluate(model_fn, loss_fn, point, y):
  """Per-example loss, its input gradient (zeros where the model ignores its input) and misclassification."""
  with tf.GradientTape() as tape:
    tape.watch(point)
    logits = model_fn(point)
    value = loss_fn(y, logits)
  grad = tape.gradient(value, point, unconnected_gradients=tf.UnconnectedGradients.ZERO)
  return value, grad, misclassified(y, logits)


def _run(model_fn, loss_fn, x, y, start, adv, fooled, *, eps, norm, steps):
  """One APGD run (the paper's Algorithm 1) from x + start. adv, fooled: what earlier runs found (kept).
  Returns (adv, fooled, the highest-loss point of this run, its loss)."""
  marks = checkpoints(steps)[1:]
  point = project(x, x + start, eps=eps, norm=norm)
  value, grad, hit = _evaluate(model_fn, loss_fn, point, y)
  state = {"i": tf.constant(0, tf.int32), "cur": point, "prev": point, "grad": grad, "f": value,
           "eta": INITIAL_STEP * eps * tf.ones_like(value), "best": point, "f_best": value, "g_best": grad,
           "adv": _pick(hit & ~fooled, point, adv), "fooled": fooled | hit, "ups": tf.zeros_like(value, tf.int32),
           "last": tf.constant(0, tf.int32), "halved": tf.zeros_like(hit), "f_check": value}

  def body(s):
    alpha = tf.where(s["i"] == 0, 1.0, MOMENTUM)  # The first step has no momentum.
    eta = tf.reshape(s["eta"], [-1] + [1] * (x.shape.rank - 1))
    z = project(x, s["cur"] + eta * _ascent(s["grad"], norm), eps=eps, norm=norm)
    new = project(x, s["cur"] + alpha * (z - s["cur"]) + (1.0 - alpha) * (s["cur"] - s["prev"]), eps=eps,
                  norm=norm)
    value, grad, hit = _evaluate(model_fn, loss_fn, new, y)
    ups = s["ups"] + tf.cast(value > s["f"], tf.int32)
    better = value > s["f_best"]
    best, f_best, g_best = _pick(better, new, s["best"]), tf.where(better, value, s["f_best"]), _pick(
        better, grad, s["g_best"])
    i = s["i"] + 1
    at_mark = tf.reduce_any(tf.equal(i, marks))
    window = tf.cast(i - s["last"], tf.float32)
    # Halve where (1) fewer than ρ of the steps since the last checkpoint raised the loss, or (2) neither η nor
    # the best loss changed since then; and go on from the best point.
    halve = at_mark & ((tf.cast(ups, tf.float32) < RHO * window) | (~s["halved"] & (f_best <= s["f_check"])))
    # After a halving the next momentum term is x_best − (the point this step left), as in the paper and reference.
    return [{"i": i, "cur": _pick(halve, best, new), "prev": s["cur"], "grad": _pick(halve, g_best, grad),
            "f": tf.where(halve, f_best, value), "eta": tf.where(halve, 0.5 * s["eta"], s["eta"]), "best": best,
            "f_best": f_best, "g_best": g_best, "adv": _pick(hit & ~s["fooled"], new, s["adv"]),
            "fooled": s["fooled"] | hit, "ups": tf.where(at_mark, tf.zeros_like(ups), ups),
            "last": tf.where(at_mark, i, s["last"]), "halved": tf.where(at_mark, halve, s["halved"]),
            "f_check": tf.where(at_mark, f_best, s["f_check"])}]

  steps = tf.cast(steps, tf.int32)
  s = tf.while_loop(lambda s: (s["i"] < steps) & ~tf.reduce_all(s["fooled"]), body, [state])[0]
  return s["adv"], s["fooled"], s["best"], s["f_best"]


def _restarts(model_fn, loss_fn, x, y, seeds, adv, fooled, best, f_best, *, eps, norm, steps, restarts, first):
  """`restarts` runs from seeded random starts (run k = first + r uses stream APGD_STREAM + 2k), each on the
  whole batch, until every example is fooled. Keeps the first fooling point, else the highest loss."""
  def body(r, adv, fooled, best, f_best):
    run_seeds = seeds + tf.stack([tf.constant(0, tf.int64), _STREAMS_PER_RUN * tf.cast(first + r, tf.int64)])
    start = _start(run_seeds, x, norm=norm, eps=eps)
    adv, fooled, run_best, run_f = _run(model_fn, loss_fn, x, y, start, adv, fooled, eps=eps, norm=norm,
                                        steps=steps)
    better = run_f > f_best
    return r + 1, adv, fooled, _pick(better, run_best, best), tf.where(better, run_f, f_best)

  restarts = tf.cast(restarts, tf.int32)
  return tf.while_loop(lambda r, adv, fooled, *_: (r < restarts) & ~tf.reduce_all(fooled), body,
                       (tf.constant(0, tf.int32), adv, fooled, best, f_best))[1:]


def apgd(model_fn, x, y, seeds, *, eps, norm, steps, loss="ce", restarts=1, target=None):
  """Untargeted APGD-CE / APGD-DLR (or one targeted DLR run): returns (x_adv [B, ...], fooled [B] bool).

  model_fn: images in [0, 1] -> logits [B, classes] (inference mode). x: clean images [B, ...] in [0, 1];
  y: true integer labels [B]. seeds: int64 [B, 2] from `apgd_seeds` (per example: batching does not matter).
  eps: float scalar, the radius on the [0, 1] pixel scale in `norm` ("inf" or "2"). steps: iterations per run
  (gradient evaluations; int scalar, a tensor does not retrace). loss: "ce", "dlr" (≥ 3 classes) or
  "dlr_targeted" (≥ 4 classes, with `target` [B] the class to push up). restarts: random starts (int scalar).
  x_adv: per example the first point found that the model misclassifies (x itself when it already is), else
  the highest-loss point; fooled: whether the model misclassifies x_adv.
  """
  _check_norm(norm)
  if loss not in LOSSES:
    raise ValueError(f"loss={loss!r}: choose one of {', '.join(LOSSES)}")
  if (loss == "dlr_targeted") != (target is not None):
    raise ValueError("target= goes with loss='dlr_targeted', and only with it")
  loss_fn = {"ce": log_odds, "dlr": dlr}.get(loss, lambda labels, logits: dlr_targeted(labels, logits, target))
  x = tf.convert_to_tensor(x, tf.float32)
  fooled = misclassified(y, model_fn(x))
  f_best = tf.fill(tf.shape(y), float("-inf"))
  adv, fooled, best, _ = _restarts(model_fn, loss_fn, x, y, seeds, x, fooled, x, f_best, eps=eps, norm=norm,
                                   steps=steps, restarts=restarts, first=0)
  return _pick(fooled, adv, best), fooled


def apgd_targeted(model_fn, x, y, seeds, *, eps, norm, steps, targets=9, restarts=1):
  """APGD-T as AutoAttack runs it: targeted DLR towards each of the `targets` classes ranked highest after y by
  the clean logits in turn (at most classes − 1), `restarts` runs each, on the examples not fooled yet.
  Arguments and results as `apgd`; needs ≥ 4 classes. Run k = t·restarts + r draws stream APGD_STREAM + 2k."""
  _check_norm(norm)
  x = tf.convert_to_tensor(x, tf.float32)
  logits = model_fn(x)
  _need_classes(logits, 4, "dlr_targeted")
  classes = tf.shape(logits)[1]
  ranked = tf.math.top_k(logits, classes).indices
  fooled = misclassified(y, logits)
  targets = tf.minimum(tf.cast(targets, tf.int32), classes - 1)
  restarts = tf.cast(restarts, tf.int32)

  def body(t, adv, fooled, best, f_best):
    target = tf.cast(tf.gather(ranked, t + 1, axis=1), y.dtype)
    loss_fn = lambda labels, logits: dlr_targeted(labels, logits, target)  # noqa: E731
    return (t + 1,) + tuple(_restarts(model_fn, loss_fn, x, y, seeds, adv, fooled, best, f_best, eps=eps,
                                      norm=norm, steps=steps, restarts=restarts, first=t * restarts))

  f_best = tf.fill(tf.shape(y), float("-inf"))
  _, adv, fooled, best, _ = tf.while_loop(lambda t, adv, fooled, *_: (t < targets) & ~tf.reduce_all(fooled), body,
                                          (tf.constant(0, tf.int32), x, fooled, x, f_best))
  return _pick(fooled, adv, best), fooled
