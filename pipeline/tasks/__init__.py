"""Tasks: what differs between classification and detection (`base.Task`), one module each.

`classification.py` and `detection.py` register themselves; `coco_map.py` is detection's metric
(pycocotools), `detection_loss.py` its training objective, `box_augment.py` its augmentation.
"""

from pipeline.tasks import classification, detection  # noqa: F401, I001  (each task registers itself)
from pipeline.tasks.base import TASKS, Task

__all__ = ["TASKS", "Task"]
