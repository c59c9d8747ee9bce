"""Benchmarks of ZeroGrads against other black-box optimizers (``zerograds bench``).

* ``problems``: analytic functions and COCO problems, named by spec strings.
* ``optimizers``: the registry of optimizers, each through its own package.
* ``family``: the surrogate-free gradient estimators (antithetic ES, SPSA, finite differences).
* ``recorder``: the objective wrapper that counts evaluations and enforces budgets.
* ``runner``: resumable cells and their JSON-lines result files.
* ``suites``: the named suites (``quick``, ``full``, ``tiny``).
* ``analysis``, ``plots``, ``report``: statistics, figures and the Markdown report.
* ``coco``: offline post-processing of COCO's logs with cocopp.
"""
