"""The Square attack (Andriushchenko et al. 2020, "Square Attack: a query-efficient black-box adversarial attack
via random search"). It uses scores only, no gradients: a random search over square-shaped updates, each kept
when it raises the margin loss. It serves as AutoAttack's check against gradient masking.

Per batch and pure tensors in and out: one `tf.while_loop`, usable inside a `tf.function` with ε and the query
budget as tensors. Units: images [B, H, W, C] on the [0, 1] pixel scale; ε on that scale, in the attack's norm
("inf" or "2"). Seeds: per-example stateless pairs, `square_seeds(index, seed)`.

As the paper and the reference (fra31/auto-attack, autoattack/square.py), with these choices:
- Queries: each iteration evaluates the model only on the examples that are still not fooled (gathered, not
  masked), so a fooled example stops costing queries. `queries` bounds the model evaluations per example, its
  initial point included (AutoAttack's n_queries = 5000 is queries = 5001 here). The clean prediction, which
  decides which examples to attack, is not counted. Misclassified examples cost nothing.
- The fraction p of pixels changed starts at p_init and halves after 10, 50, 200, 500, 1000, 2000, 4000, 6000
  and 8000 of 10,000 iterations, rescaled to the budget as in the reference.
- Randomness is per example (the reference shares one square position per batch), drawn statelessly, so a
  result depends on neither the batching nor the other examples. Square positions are uniform over every
  place where the square fits (the reference never uses the last row and column).
- The loss is the margin max_{j≠y} z_j − z_y (attacks.margin), raised. "Fooled" means argmax ≠ y, the runner's
  definition (the reference also counts a tie z_y = max_{j≠y} z_j as fooled).
"""

import tensorflow as tf

from tfrobust.evaluators.robustness.attacks import example_seeds, margin, misclassified

SQUARE_STREAM = 700_000  # Seed stream of the Square attack (attacks.py and apgd.py use others).
P_INIT = 0.8  # The reference's default initial fraction of pixels changed.
SCHEDULE_UNITS = 10_000  # The halvings of p are at these iterations of 10,000, rescaled to the budget.
HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
INIT_BLOCKS = 5  # The L2 start tiles the image with squares of side H // 5.
MIN_L2_SIDE = 3  # L2 squares have an odd side of at least 3 (one centre pixel and a ring).
CHUNK = 64  # Iterations whose random numbers are drawn at once (one stateless draw per example).
NORMS = ("inf", "2")
_TINY = 1e-12


def square_seeds(index, seed):
  """Per-example stateless seed pairs [B, 2] for `square` from example indices [B] and the run's seed."""
  return example_seeds(index, seed, SQUARE_STREAM)


def p_schedule(iteration, iterations, p_init=P_INIT):
  """The fraction p of pixels a square covers at `iteration` (0-based) of `iterations` (AutoAttack's n_queries)."""
  it = tf.cast(iteration, tf.int64) * SCHEDULE_UNITS // tf.cast(iterations, tf.int64)
  halvings = tf.reduce_sum(tf.cast(it > tf.constant(HALVINGS, tf.int64), tf.float32))
  return p_init * tf.pow(0.5, halvings)


def _uniform(seeds, draw, shape):
  """Uniform [0, 1) numbers [B, *shape], a pure function of (example seed, draw number)."""
  return tf.map_fn(lambda s: tf.random.stateless_uniform(shape, tf.random.experimental.stateless_fold_in(s, draw)),
                   seeds, fn_output_signature=tf.float32)


def _signs(u):
  return tf.where(u < 0.5, -1.0, 1.0)


def _window(corner_h, corner_w, side, h, w):
  """[B, H, W, 1] float masks of side×side squares with top-left corners (corner_h, corner_w) [B], and each
  pixel's row [B, H] and column [B, W] relative to its example's corner."""
  rows = tf.range(h)[None, :] - corner_h[:, None]
  cols = tf.range(w)[None, :] - corner_w[:, None]
  inside_rows, inside_cols = (rows >= 0) & (rows < side), (cols >= 0) & (cols < side)
  return tf.cast(inside_rows[:, :, None, None] & inside_cols[:, None, :, None], tf.float32), rows, cols


def _corner(u, side, size):
  """A uniform top-left corner in [0, size − side] from u ∈ [0, 1)."""
  room = size - side + 1
  return tf.minimum(tf.cast(u * tf.cast(room, tf.float32), tf.int32), room - 1)


def eta(side):
  """The reference's L2 square pattern [side, side]: two halves of opposite signs, each a pyramid of nested
  squares (weight Σ_{k>d} 1/k² at Chebyshev distance d from its centre), each half and the whole of unit norm."""
  side = tf.convert_to_tensor(side, tf.int32)
  top = side // 2
  rows, cols = tf.range(side)[:, None], tf.range(side)[None, :]
  in_top = rows < top
  local = tf.where(in_top, rows, rows - top)
  height = tf.where(in_top, top, side - top)
  dist = tf.maximum(tf.abs(local - height // 2), tf.abs(cols - side // 2))
  inv_sq = 1.0 / tf.square(tf.cast(tf.range(1, side // 2 + 2), tf.float32))
  tail = tf.cumsum(inv_sq, reverse=True)  # tail[d] = Σ_{k=d+1}^{side//2+1} 1/k².
  value = tf.gather(tail, dist)

  def unit(mask):
    return tf.where(mask, value, 0.0) / tf.maximum(tf.norm(tf.where(mask, value, 0.0)), _TINY)

  pattern = unit(in_top) - unit(~in_top)
  return pattern / tf.norm(pattern)


def _place(pattern, rows, cols, transpose):
  """The square `pattern` laid at local coordinates rows [B, H], cols [B, W] (transposed where asked), [B, H, W, 1];
  callers mask it to the square."""
  side = tf.shape(pattern)[0]
  r = tf.clip_by_value(rows, 0, side - 1)[:, :, None] + 0 * cols[:, None, :]
  c = tf.clip_by_value(cols, 0, side - 1)[:, None, :] + 0 * rows[:, :, None]
  t = transpose[:, None, None]
  return tf.gather_nd(pattern, tf.stack([tf.where(t, c, r), tf.where(t, r, c)], axis=-1))[..., None]


def _l2(v, axis=(1, 2, 3)):
  return tf.sqrt(tf.reduce_sum(tf.square(v), axis=axis, keepdims=True))


def _start(x, seeds, *, eps, norm):
  """The first point: vertical stripes of ±ε per column and channel (L∞), or a grid of ±η squares scaled to
  norm ε (L2), as in the reference."""
  _, h, w, c = x.shape
  if norm == "inf":
    return tf.clip_by_value(x + eps * _signs(_uniform(seeds, -1, [1, w, c])), 0.0, 1.0)
  side = max(h // INIT_BLOCKS, 1)
  offset = (h - INIT_BLOCKS * side) // 2
  across_h, across_w = h // side, w // side
  u = _uniform(seeds, -1, [across_h * across_w, c + 1])  # Per square: one sign per channel, one transpose bit.
  pos_h, pos_w = tf.range(h) - offset, tf.range(w) - offset
  block_h = tf.where((pos_h >= 0) & (pos_h < across_h * side), pos_h // side, -1)
  block_w = tf.where((pos_w >= 0) & (pos_w < across_w * side), pos_w // side, -1)
  covered = tf.cast((block_h[:, None] >= 0) & (block_w[None, :] >= 0), tf.float32)[None, :, :, None]
  per_pixel = tf.gather(u, tf.maximum(block_h[:, None] * across_w + block_w[None, :], 0), axis=1)  # [B, H, W, C+1]
  local = tf.stack(tf.meshgrid(tf.maximum(pos_h, 0) % side, tf.maximum(pos_w, 0) % side, indexing="ij"), -1)
  pattern = eta(side)
  pattern = tf.where(per_pixel[..., c] < 0.5, tf.gather_nd(pattern, tf.reverse(local, [-1])),
                     tf.gather_nd(pattern, local))  # Each square transposed with probability 1/2.
  delta = covered * pattern[..., None] * _signs(per_pixel[..., :c])
  return tf.clip_by_value(x + eps * delta / tf.maximum(_l2(delta), _TINY), 0.0, 1.0)


def _side(p, h, w, norm):
  """The side of the squares covering a fraction p of the pixels (L2: odd, ≥ 3), at most min(H, W)."""
  side = tf.cast(tf.round(tf.sqrt(p * h * w)), tf.int32)
  if norm == "2":
    side = tf.maximum(side, MIN_L2_SIDE)
    side += 1 - side % 2
  return tf.clip_by_value(side, 1, min(h, w))


def _propose(x, best, u, p, *, eps, norm):
  """One random-search candidate per example from the best point so far; u [B, 5 + C] uniform numbers."""
  _, h, w, c = x.shape
  side = _side(p, h, w, norm)
  signs = _signs(u[:, 5:])[:, None, None, :]  # One sign per channel, as the paper.
  first, rows, cols = _window(_corner(u[:, 0], side, h), _corner(u[:, 1], side, w), side, h, w)
  if norm == "inf":  # Each pixel of the square goes to a vertex x ± ε.
    return tf.clip_by_value(tf.clip_by_value(best + 2.0 * eps * first * signs, x - eps, x + eps), 0.0, 1.0)
  # L2: a fresh η pattern in the first square, which takes over the budget of the second square (emptied).
  second = _window(_corner(u[:, 2], side, h), _corner(u[:, 3], side, w), side, h, w)[0]
  delta = best - x
  both = tf.maximum(first, second)
  budget = tf.sqrt(tf.maximum(eps * eps - tf.square(_l2(delta)), 0.0) / c + tf.square(_l2(delta * both, (1, 2))))
  new = first * _place(eta(side), rows, cols, u[:, 4] < 0.5) * signs + delta * first / (
      _TINY + _l2(delta * first, (1, 2)))
  delta = delta * (1.0 - both) + new / (_TINY + _l2(new, (1, 2))) * budget
  return tf.clip_by_value(x + eps * delta / (_TINY + _l2(delta)), 0.0, 1.0)


def _query(model_fn, points, y, active):
  """The margin gain and misclassification of the active examples ([B]; −inf and False elsewhere): the model
  sees only the active rows."""
  rows = tf.where(active)
  labels = tf.gather_nd(y, rows)
  logits = model_fn(tf.gather_nd(points, rows))
  gain = tf.tensor_scatter_nd_update(tf.fill(tf.shape(y), float("-inf")), rows, margin(labels, logits))
  hit = misclassified(labels, logits)
  return gain, tf.scatter_nd(rows, tf.cast(hit, tf.int32), tf.shape(y, out_type=tf.int64)) > 0


def _pick(mask, a, b):
  return tf.where(mask[:, None, None, None], a, b)


def square(model_fn, x, y, seeds, *, eps, norm, queries, p_init=P_INIT):
  """The untargeted Square attack: returns (x_adv [B, H, W, C], fooled [B] bool, queries_used [B] int32).

  model_fn: images in [0, 1] -> logits [B, classes] (inference mode). x: clean images [B, H, W, C] in [0, 1];
  y: true integer labels [B]. seeds: int64 [B, 2] from `square_seeds`. eps: float scalar, the radius on the
  [0, 1] pixel scale in `norm` ("inf" or "2"). queries: the budget of model evaluations per example, the initial
  point included (int scalar, > 0; a tensor does not retrace). p_init: the initial fraction of pixels changed.
  x_adv: the first point found that the model misclassifies (x itself when it already is), else the point of
  largest margin; queries_used: the model evaluations each example cost (0 when already misclassified).
  Raises ValueError for a budget ≤ 0 known when traced (a tensor's value: InvalidArgumentError when run).
  """
  if norm not in NORMS:
    raise ValueError(f"norm={norm!r}: choose one of {', '.join(NORMS)}")
  budget = tf.get_static_value(queries)
  if budget is not None and budget <= 0:
    raise ValueError(f"queries={budget}: the query budget must be > 0")
  x = tf.convert_to_tensor(x, tf.float32)
  if x.shape.rank != 4 or None in x.shape[1:]:
    raise ValueError(f"square needs images [B, H, W, C] of known size, got {x.shape}")
  queries = tf.cast(queries, tf.int32)
  with tf.control_dependencies([tf.debugging.assert_positive(queries, message="the query budget must be > 0")]):
    iterations = queries - 1  # The initial point costs one query.
  c = x.shape[3]
  fooled = misclassified(y, model_fn(x))
  start = _start(x, seeds, eps=eps, norm=norm)
  gain, hit = _query(model_fn, start, y, ~fooled)
  used = tf.cast(~fooled, tf.int32)

  def body(i, best, gain_best, fooled, used, draws):
    active = ~fooled
    draws = tf.cond(i % CHUNK == 0, lambda: _uniform(seeds, i // CHUNK, [CHUNK, 5 + c]), lambda: draws)
    proposal = _propose(x, best, draws[:, i % CHUNK], p_schedule(i, iterations, p_init), eps=eps, norm=norm)
    gain, hit = _query(model_fn, proposal, y, active)
    improved = active & ((gain > gain_best) | hit)
    return (i + 1, _pick(improved, proposal, best), tf.where(improved, gain, gain_best), fooled | hit,
            used + tf.cast(active, tf.int32), draws)

  state = (tf.constant(0, tf.int32), _pick(fooled, x, start), gain, fooled | hit, used,
           tf.zeros([tf.shape(x)[0], CHUNK, 5 + c]))
  _, best, _, fooled, used, _ = tf.while_loop(lambda i, *s: (i < iterations) & ~tf.reduce_all(s[2]), body, state)
  return best, fooled, used
