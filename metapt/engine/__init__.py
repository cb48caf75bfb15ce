"""The domain-free meta-learning engine.

It knows nothing about graphs or ECGs. A domain plugs in through
:class:`~metapt.engine.problem.BilevelProblem` (how to compute the PT loss, the
features and the FT loss) and a :class:`~metapt.engine.metaparams.MetaParameterisation`
(the module whose parameters are φ).
"""

from metapt.engine.config import HypergradConfig, MetaLoopConfig
from metapt.engine.hypergrad import HypergradResult, hypergradient
from metapt.engine.metaloop import MetaPretrainer, NonFiniteError, StepRecord
from metapt.engine.metaparams import ExampleWeights, MetaParameterisation, TaskWeights
from metapt.engine.problem import BilevelProblem
from metapt.engine.streams import BatchStream

__all__ = [
    "BatchStream",
    "BilevelProblem",
    "ExampleWeights",
    "HypergradConfig",
    "HypergradResult",
    "MetaLoopConfig",
    "MetaParameterisation",
    "MetaPretrainer",
    "NonFiniteError",
    "StepRecord",
    "TaskWeights",
    "hypergradient",
]
