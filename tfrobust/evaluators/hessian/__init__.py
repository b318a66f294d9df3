"""The Hessian evaluator: the spectrum of the Hessian of the training loss (PyHessian's questions, in TF).

  config.py        HessianConfig (TF-free)
  hvp.py           compiled Hessian-vector products, shared by every model of one architecture
  eigensolvers.py  power iteration, Lanczos, Hutchinson, stochastic Lanczos quadrature (numpy, float64)
  analyzer.py      HessianAnalyzer: one model, one set of examples, the questions asked of its Hessian
  evaluate.py      evaluate(): the training subset, what is measured, the Evaluation handed back
"""
