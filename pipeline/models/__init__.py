"""Models: a small zoo for small inputs, or any user model through `factory: "package.module:function"`.

`config.py` is the recipe's `model:` section, `building.py` makes the network from it, `weights.py`
loads a user's checkpoint into it; `zoo.py` registers the zoo's architectures, `classifier.py` names
the layer that makes a model's class scores, `contract.py` checks what a model returns.
"""

from pipeline.models import detector  # noqa: F401  (registers tiny_det)
from pipeline.models.building import build_model
from pipeline.models.config import ModelConfig
from pipeline.models.registry import ZOO
from pipeline.models.weights import load_weights

__all__ = ["ZOO", "ModelConfig", "build_model", "load_weights"]
