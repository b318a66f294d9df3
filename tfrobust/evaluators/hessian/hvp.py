"""Compiled Hessian-vector products of the mean cross-entropy, shared by all models of one architecture.

A Keras model is differentiated through `stateless_call`: its weights are arguments of the `tf.function`, not
captured variables, so one trace serves every model with the same structure (the ~60 trials of a sweep, or
checkpoints loaded one after another). The functions live in a module cache keyed by the model's
canonicalised config (layer names replaced by their positions) and the strategy. A model that is not a
functional/sequential Keras model (a loaded SavedModel) is differentiated through its own variables, and its
functions are traced once per model instead.

Two autodiff modes: "reverse" (double backprop: nested GradientTapes) and "forward" (forward-over-reverse: a
ForwardAccumulator around the gradient tape). Both sum per-batch products in a `tf.while_loop` that starts at
zero (PyHessian#4), and under a MirroredStrategy every replica sums its share of the batches and the replica
sums are added.
"""

import functools

import numpy as np
import tensorflow as tf

from tfrobust.losses import cross_entropy  # written out: both autodiff modes see plain ops

MODES = ("reverse", "forward")
_CACHE = {}  # (structure key, id(strategy)) -> (strategy, Functions); the strategy is kept alive with its id.


def _canonical(obj, names, key=None):
  """The config with layer names replaced where they name a layer (not where they are e.g. an activation)."""
  if isinstance(obj, dict):
    return {k: _canonical(v, names, k) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    if key in ("keras_history", "input_layers", "output_layers") and obj and isinstance(obj[0], str):
      return [names.get(obj[0], obj[0])] + [_canonical(v, names) for v in obj[1:]]
    return [_canonical(v, names, key if key in ("input_layers", "output_layers") else None) for v in obj]
  if key == "name" and isinstance(obj, str):
    return names.get(obj, obj)
  return obj


def structure_key(model):
  """A hashable key equal for two Keras models that compute the same function of (weights, input), or None
  when the model cannot be described that way (then its functions are not shared)."""
  import keras  # pylint: disable=import-outside-toplevel
  if not isinstance(model, keras.Model) or not hasattr(model, "stateless_call"):
    return None
  try:
    config = model.get_config()
  except Exception:  # pylint: disable=broad-except  # Subclassed models without get_config: no sharing.
    return None
  if not isinstance(config, dict) or "layers" not in config:
    return None
  names = {layer.name: f"layer_{i}" for i, layer in enumerate(model.layers)}
  names.setdefault(model.name, "model")
  specs = tuple((tuple(v.shape), str(v.dtype)) for v in model.trainable_variables + model.non_trainable_variables)
  return (type(model).__qualname__, repr(_canonical(config, names)), specs)


def functions_for(model, strategy):
  """The (possibly shared) compiled functions for `model` under `strategy`."""
  key = structure_key(model)
  if key is None:
    return Functions(model, strategy, stateless=False)
  cache_key = (key, id(strategy))
  if cache_key not in _CACHE:
    _CACHE[cache_key] = (strategy, Functions(model, strategy, stateless=True))
  return _CACHE[cache_key][1]


def clear_cache():
  """Forgets the shared functions (and the template models they hold)."""
  _CACHE.clear()


def _unwrap(variable):
  """The tf.Variable behind a Keras 3 variable (ForwardAccumulator needs real tf.Variables)."""
  return variable.value if not isinstance(variable, tf.Variable) and hasattr(variable, "value") else variable


def _flatten(tensors):
  return tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)


class Functions:
  """The tf.functions of one architecture (stateless) or one model (stateful).

  Every function takes `(params, states, ...)`: the weight and non-trainable values of the model to
  differentiate when stateless, empty tuples when stateful (the model's own variables are used).
  """

  def __init__(self, template, strategy, *, stateless):
    self.template = template
    self.strategy = strategy
    self.stateless = stateless
    self._variables = [] if stateless else [_unwrap(v) for v in template.trainable_variables]
    self._functions = {}

  def values(self, model):
    """The (params, states) arguments for `model` (read now: the Hessian is taken at the current weights)."""
    if not self.stateless:
      return (), ()
    return (tuple(tf.convert_to_tensor(v) for v in model.trainable_variables),
            tuple(tf.convert_to_tensor(v) for v in model.non_trainable_variables))

  @property
  def tracing_count(self):
    return sum(f.experimental_get_tracing_count() for f in self._functions.values())

  # ---- Inside the traced functions. ----
  def _logits(self, params, states, x):
    if self.stateless:
      return self.template.stateless_call(list(params), list(states), x, training=False)[0]
    return self.template(x, training=False)

  def _primals(self, params):
    return list(params) if self.stateless else self._variables

  def _loss(self, params, states, x, y, w):
    ce = cross_entropy(y, self._logits(params, states, x))
    return tf.reduce_sum(tf.cast(w, ce.dtype) * ce)

  def _batch_gradient(self, params, states, x, y, w, vs):
    del vs
    primals = self._primals(params)
    with tf.GradientTape(watch_accessed_variables=not self.stateless) as tape:
      tape.watch(primals)
      loss = self._loss(params, states, x, y, w)
    grads = tape.gradient(loss, primals, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return tf.concat([tf.reshape(tf.cast(loss, grads[0].dtype), [1]), _flatten(grads)], axis=0)

  def _batch_hvp(self, mode, params, states, x, y, w, vs):
    zero = tf.UnconnectedGradients.ZERO
    primals = self._primals(params)
    if mode == "forward":
      with tf.autodiff.ForwardAccumulator(primals, vs) as acc:
        with tf.GradientTape(watch_accessed_variables=not self.stateless) as tape:
          tape.watch(primals)
          loss = self._loss(params, states, x, y, w)
        grads = tape.gradient(loss, primals, unconnected_gradients=zero)
      return _flatten(acc.jvp(grads, unconnected_gradients=zero))
    with tf.GradientTape(watch_accessed_variables=not self.stateless) as outer:
      outer.watch(primals)
      with tf.GradientTape(watch_accessed_variables=not self.stateless) as inner:
        inner.watch(primals)
        loss = self._loss(params, states, x, y, w)
      grads = inner.gradient(loss, primals, unconnected_gradients=zero)
      gv = tf.add_n([tf.reduce_sum(g * v) for g, v in zip(grads, vs)])
    return _flatten(outer.gradient(gv, primals, unconnected_gradients=zero))

  def _replica_sum(self, batch_fn, size, params, states, v_flat, xs, ys, ws):
    primals = self._primals(params)
    shapes = [p.shape for p in primals]
    vs = [tf.reshape(p, s) for p, s in zip(tf.split(v_flat, [int(np.prod(s)) for s in shapes]), shapes)]

    def body(i, acc):
      return i + 1, acc + batch_fn(params, states, xs[i], ys[i], ws[i], vs)

    acc = tf.zeros([size], v_flat.dtype)  # The sum over batches starts at zero (PyHessian#4).
    return tf.while_loop(lambda i, _: i < tf.shape(xs)[0], body, (tf.constant(0), acc))[1]

  # ---- The compiled functions. ----
  def product(self, name, num_params):
    """fn(params, states, v_flat, data) -> summed product: name "gradient" ([loss, gradient]) or
    "hvp_reverse" / "hvp_forward" (H v)."""
    if name not in self._functions:
      if name == "gradient":
        batch_fn, size = self._batch_gradient, num_params + 1
      else:
        batch_fn, size = functools.partial(self._batch_hvp, name[len("hvp_"):]), num_params
      replica_fn = functools.partial(self._replica_sum, batch_fn, size)
      strategy = self.strategy

      @tf.function
      def fn(params, states, v_flat, data):
        per_replica = strategy.run(replica_fn, args=(params, states, v_flat) + tuple(data))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
      self._functions[name] = fn
    return self._functions[name]

  def input_hvp(self):
    """fn(params, states, x, y, vx) -> per-example H_i v_i, H_i the Hessian of example i's loss w.r.t. x_i."""
    if "input" not in self._functions:
      @tf.function
      def fn(params, states, x, y, vx):
        with tf.GradientTape(watch_accessed_variables=False) as outer:
          outer.watch(x)
          with tf.GradientTape(watch_accessed_variables=False) as inner:
            inner.watch(x)
            loss = tf.reduce_sum(cross_entropy(y, self._logits(params, states, x)))
          gv = tf.reduce_sum(inner.gradient(loss, x) * vx)
        return outer.gradient(gv, x)
      self._functions["input"] = fn
    return self._functions["input"]
