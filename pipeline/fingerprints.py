"""A stage's fingerprint: what decides whether a finished stage folder can be reused.

Stage i's fingerprint hashes its config and the fingerprint of stage i-1 (so, transitively, the data,
model, seed and metric), and for stages that use them the device profiles (or only the runtimes they
admit). The runner resumes after the longest prefix of matching fingerprints; the tune's stage store
is addressed by them.
"""

from __future__ import annotations

import hashlib
import json

from pipeline.recipe import Recipe
from pipeline.stages import STAGES


def stage_fingerprints(recipe: Recipe, profiles: list[dict]) -> list[str]:
    h = recipe.header
    data = h.data.model_dump()
    if not data["train_on_validation"]:  # off: the fingerprints runs had before these options existed, so they still resume
        del data["train_on_validation"], data["validation_kept"]
    previous = _sha({"data": data, "model": h.model.model_dump(), "seed": h.seed, "metric": h.metric,
                     **({"task": h.task} if h.task != "classification" else {})})  # classification runs keep the fingerprints they had
    profiles = [{k: v for k, v in p.items() if k != "boards" or v} for p in profiles]  # no boards: the fingerprint runs had before boards existed
    fingerprints = []
    for entry in recipe.stages:
        payload = {"previous": previous, "stage": entry.name, "config": entry.config.model_dump()}
        if STAGES.get(entry.name).uses_device_profiles:
            payload["devices"] = profiles
        elif STAGES.get(entry.name).uses_device_runtimes:
            payload["runtimes"] = sorted({r for p in profiles for r in p.get("runtimes", ["onnxruntime"])})
        previous = _sha(payload)
        fingerprints.append(previous)
    return fingerprints


def _sha(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
