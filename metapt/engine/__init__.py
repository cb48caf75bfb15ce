"""The domain-free meta-learning engine.

It knows nothing about graphs or ECGs. A domain plugs in through
:class:`~metapt.engine.problem.BilevelProblem` (how to compute the PT loss, the
features and the FT loss) and a :class:`~metapt.engine.metaparams.MetaParameterisation`
(the module whose parameters are φ).
"""

import importlib

# Re-exports resolve on first use (PEP 562), so `import metapt.engine.config` (the schemas) does not
# import torch and the whole engine, and a schema edit is not an edit of every stage's code.
_EXPORTS = {
    "HypergradConfig": "config", "MetaLoopConfig": "config", "HypergradResult": "hypergrad", "hypergradient": "hypergrad",
    "MetaPretrainer": "metaloop", "JournaledHook": "metaloop", "NonFiniteError": "metaloop", "StepRecord": "metaloop", "ExampleWeights": "metaparams",
    "MetaParameterisation": "metaparams", "TaskWeights": "metaparams", "SimplexTaskWeights": "metaparams", "ExponentiatedGradient": "metaparams", "BilevelProblem": "problem", "BatchStream": "streams",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"metapt.engine.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'metapt.engine' has no attribute {name!r}")


__all__ = [
    "BatchStream",
    "BilevelProblem",
    "ExampleWeights",
    "ExponentiatedGradient",
    "HypergradConfig",
    "HypergradResult",
    "JournaledHook",
    "MetaLoopConfig",
    "MetaParameterisation",
    "MetaPretrainer",
    "NonFiniteError",
    "SimplexTaskWeights",
    "StepRecord",
    "TaskWeights",
    "hypergradient",
]
