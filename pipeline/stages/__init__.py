"""The stages, one module each, registered in `STAGES` (the contract is in `base.py`).

Importing this package registers every stage; nothing else imports a stage module by name.
"""

from pipeline.stages import (  # noqa: F401  (register the stages)
    aux_heads,
    distill,
    export,
    nested,
    prune,
    quantize,
    self_distill,
    train,
    validate,
)
from pipeline.stages.base import STAGES

__all__ = ["STAGES"]
