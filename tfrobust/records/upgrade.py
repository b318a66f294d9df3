"""The one upgrade path for records written by older versions: each key added after runs and sweeps already
existed, with the value that reproduces those runs. A directory written before a key existed compares (and
parses) as if it held that value, so it can still be resumed and reported."""

# Hyperparameters (hparams.json, result.json's hparams, sweep.json's base) added later, and their old meaning.
LATER_HPARAMS = {"augment": "none", "max_steps": 0, "budget": "epochs"}
# Top-level keys of sweep.json added later.
LATER_SWEEP = {"budget": "epochs"}


def hparams(hp):
  """`hp` with every key of LATER_HPARAMS it lacks set to that default (max_steps and budget only where the
  record has a training length at all)."""
  return {**LATER_HPARAMS, **hp}


def sweep(description):
  """sweep.json as the current version writes it: later top-level keys and the base's later hparams filled in
  (the base never holds the per-point keys max_steps and budget)."""
  out = {**LATER_SWEEP, **description}
  if isinstance(out.get("base"), dict):
    out["base"] = {"augment": LATER_HPARAMS["augment"], **out["base"]}
  return out


def robustness(result):
  """(accuracy rows, checks) of a result's robustness section: {"accuracy", "summary", "checks", "config"} since
  evaluators return one section each; before, four flat keys (robustness = the rows, robustness_checks, ...)."""
  section = result.get("robustness")
  if isinstance(section, dict):
    return list(section.get("accuracy") or ()), section.get("checks")
  return list(section or ()), result.get("robustness_checks")


# result.json's final metrics were keyed train_loss, test_accuracy, ... before they took the split/name keys of the
# history and TensorBoard (train/loss, test/accuracy, ...).
OLD_METRIC_KEYS = {"train_loss": "train/loss", "train_accuracy": "train/accuracy", "test_loss": "test/loss",
                   "test_accuracy": "test/accuracy"}


def metrics(m):
  """result.json's metrics with the current split/name keys (an old key's value where the new one is absent)."""
  return {**{OLD_METRIC_KEYS.get(k, k): v for k, v in m.items()}, **{k: v for k, v in m.items() if "/" in k}}
