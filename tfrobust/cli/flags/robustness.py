"""The robustness evaluator's absl flags (--attacks, --norms, --eps, --pgd_*, --apgd_*, --square_queries, ...) and
the RobustnessConfig they make (tfrobust/evaluators/robustness/config.py, where the defaults and the default ε
grids are).

The evaluator is off unless --attacks names at least one attack: a plain `python -m tfrobust.main` costs
nothing extra. Only entry points call `define_flags()`; --dataset belongs to them.
"""

from absl import flags

from tfrobust.cli import numbers
from tfrobust.errors import UsageError
from tfrobust.evaluators.robustness.config import ATTACKS, BACKENDS, EPS_ORDERS, NORMS, RobustnessConfig

_DEFAULTS = RobustnessConfig()
# Flags that only matter when the section is on: giving one without --attacks is a mistake worth saying.
_SECTION_FLAGS = ("eps", "eps_l2", "pgd_steps", "pgd_step_size", "pgd_restarts", "apgd_steps", "apgd_restarts",
                  "square_queries", "eval_examples",
                  "attack_batch_size", "attack_seed", "attack_backend", "robustness_deep_check", "eps_order",
                  "bisection_steps")


def define_flags(flag_values=flags.FLAGS):
  """Defines the robustness flags on `flag_values` (idempotent: a second call is a no-op)."""
  if "attacks" in flag_values:
    return
  fv = {"flag_values": flag_values}
  flags.DEFINE_list("attacks", [], f"Adversarial attacks to evaluate after training ({', '.join(ATTACKS)}; "
                    "autoattack = APGD-CE, APGD-T, Square, each on what the earlier ones left robust); empty (the "
                    "default) = no robustness section.", **fv)
  flags.DEFINE_list("norms", list(_DEFAULTS.norms), f"Norms of the attacks: {' and/or '.join(NORMS)}.", **fv)
  flags.DEFINE_list("eps", None, "L∞ ε grid on the [0, 1] pixel scale, strictly ascending (0 is always added); "
                    "default: the dataset's grid (docs/robustness.md).", **fv)
  flags.DEFINE_list("eps_l2", None, "L2 ε grid on the [0, 1] pixel scale, strictly ascending (0 is always added); "
                    "default: the dataset's grid.", **fv)
  flags.DEFINE_integer("pgd_steps", _DEFAULTS.pgd_steps, "PGD iterations.", **fv)
  flags.DEFINE_float("pgd_step_size", None, "PGD step on the [0, 1] scale; default 2.5·ε/steps (Madry et "
                     "al.), capped at ε.", **fv)
  flags.DEFINE_integer("pgd_restarts", _DEFAULTS.pgd_restarts, "PGD random restarts; per example the worst "
                       "case counts.", **fv)
  flags.DEFINE_integer("apgd_steps", _DEFAULTS.apgd_steps, "APGD iterations per run (apgd_ce, apgd_dlr, "
                       "autoattack's APGD-CE and APGD-T).", **fv)
  flags.DEFINE_integer("apgd_restarts", _DEFAULTS.apgd_restarts, "APGD random starts (APGD-T: per target "
                       "class); later ones run only on examples no earlier one fooled.", **fv)
  flags.DEFINE_integer("square_queries", _DEFAULTS.square_queries, "Square attack budget: model evaluations per "
                       "example, the start included (AutoAttack's 5000).", **fv)
  flags.DEFINE_string("eps_order", _DEFAULTS.eps_order, f"Order of the early stop along the ε grid "
                      f"({', '.join(EPS_ORDERS)}): descending attacks each smaller ε only what every larger one "
                      "fooled (an example costs the whole budget once); ascending each larger ε only what every "
                      "smaller one left robust (never counts robust what an attack at that ε fools).", **fv)
  flags.DEFINE_integer("bisection_steps", _DEFAULTS.bisection_steps, "Refine each example's smallest fooling ε "
                       "between the grid points around it by this many halvings (examples.npz); 0: grid only.",
                       **fv)
  flags.DEFINE_integer("eval_examples", None, "Evaluate on the first N test examples (default: all).", **fv)
  flags.DEFINE_integer("attack_batch_size", _DEFAULTS.batch_size, "Global batch of the attacks (memory "
                       "only: results do not depend on it).", **fv)
  flags.DEFINE_integer("attack_seed", _DEFAULTS.seed, "Seed of the PGD random starts and of the noise "
                       "baseline (a function of seed, example and restart).", **fv)
  flags.DEFINE_string("attack_backend", _DEFAULTS.backend, f"How a PGD step is computed ({', '.join(BACKENDS)}): "
                      "cleverhans (FGM + clip_eta + clip) or fused (one tfrobust.ops call per step; same examples "
                      "to 1e-6).", **fv)
  flags.DEFINE_bool("robustness_deep_check", False, "Also run the autoattack sequence (with 2x the APGD steps and "
                    "restarts when autoattack is already asked for); more than 1 point lower accuracy warns of "
                    "an unconverged attack or gradient masking.", **fv)
  flags.DEFINE_float("robustness_max_eps_accuracy", _DEFAULTS.max_eps_accuracy, "Sanity check: at the "
                     "largest ε the strongest attack must push accuracy below this.", **fv)
  flags.DEFINE_float("robustness_tolerance", _DEFAULTS.tolerance, "Sampling-noise slack (a fraction) of the "
                     "monotonicity, PGD <= FGSM and noise checks.", **fv)
  flags.DEFINE_float("robustness_deep_check_tolerance", _DEFAULTS.deep_check_tolerance, "Largest accuracy drop "
                     "(a fraction) the deep check's autoattack sequence may find before it fails.", **fv)
  flags.DEFINE_float("robustness_zero_grad_tolerance", _DEFAULTS.zero_grad_tolerance, "Largest fraction of test "
                     "examples whose cross-entropy input gradient may be exactly zero before the check fails.", **fv)


def config_from_flags(FLAGS, dataset_name):  # pylint: disable=invalid-name
  """The RobustnessConfig the flags ask for (validated by ExperimentConfig.validate at the boundary); None when
  --attacks is empty (section off)."""
  if not FLAGS.attacks:
    given = [name for name in _SECTION_FLAGS if FLAGS[name].present]
    if given:
      raise UsageError(f"--{given[0]}: needs --attacks (e.g. --attacks=fgsm,pgd; the robustness section is off)")
    return None
  return RobustnessConfig(
      attacks=tuple(FLAGS.attacks), norms=tuple(FLAGS.norms), eps=numbers("eps", FLAGS.eps),
      eps_l2=numbers("eps_l2", FLAGS.eps_l2), dataset=dataset_name or "", pgd_steps=FLAGS.pgd_steps,
      pgd_step_size=FLAGS.pgd_step_size, pgd_restarts=FLAGS.pgd_restarts, apgd_steps=FLAGS.apgd_steps,
      apgd_restarts=FLAGS.apgd_restarts, square_queries=FLAGS.square_queries, eval_examples=FLAGS.eval_examples,
      batch_size=FLAGS.attack_batch_size, seed=FLAGS.attack_seed, backend=FLAGS.attack_backend,
      deep_check=FLAGS.robustness_deep_check, max_eps_accuracy=FLAGS.robustness_max_eps_accuracy,
      tolerance=FLAGS.robustness_tolerance, deep_check_tolerance=FLAGS.robustness_deep_check_tolerance,
      zero_grad_tolerance=FLAGS.robustness_zero_grad_tolerance, eps_order=FLAGS.eps_order,
      bisection_steps=FLAGS.bisection_steps)
