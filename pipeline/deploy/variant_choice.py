"""Which file ships to a device (runtime × precision × width): chosen by measured figures, never assumed.

INT8 is not always faster: for a 15 k-parameter CNN every INT8 variant measured here ran ~15 %
slower than FP32 (`shared/notes/int8-routes.md`), while a ResNet-20 ran 2x faster. So `validate`
measures every variant a run made, judges each against the device's budgets, and this module picks.
Every figure it reads is a **validation** figure (accuracy, and the accuracy drop against the float
model's validation accuracy): the test split is scored once, after the choice, for the report and
the gate, so a test-split accuracy never decides what ships.

1. the variant that breaks the fewest budgets (then the fewest it could not judge);
2. among those, the one the device's profile prefers (`prefer`):
   - `latency` (the default): the faster by median (p50) latency, but only when the medians differ
     by more than the timing noise (the wider of the two p10-p90 widths) and by more than
     `LATENCY_TIE`; otherwise they count as equally fast and the smaller file wins (INT8 keeps its
     size and memory advantage). A p90 alone is what a burst of host noise moves: measured, it once
     made FP32 look 1.07x faster while INT8's median was 2.1x lower.
   - `accuracy`: the higher validation accuracy, then the faster beyond the noise, then the smaller.
   - `size`: the smaller file, then the faster beyond the noise.
   The reason states what the preference traded ("+8 % speed for -0.27 points"), so a speed gain
   bought with accuracy is never silent.

After a `nested` stage there is a file per width (and per precision). Then a device gets the widest
width whose file meets every budget (the widest network is the most accurate one: the widths are
one network's leading channels), and within that width the rule above. If no width meets every
budget, the rule above runs over all files: the fewest broken budgets, then the preference.

A device whose profile admits several runtimes (`runtimes: [onnxruntime, executorch, ncnn]`) has a
file per runtime and precision; the same rule picks among all of them. Which runtime is fastest
depends on the model (measured here: ONNX Runtime for a 15 k-parameter CNN, where the others' call
overhead dominates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal

LATENCY_TIE = 0.03  # medians closer than 3 % are never called different, however quiet the timing
PREFERENCES = ("latency", "accuracy", "size")
Preference = Literal[PREFERENCES]


@dataclass
class Candidate:
    artifact: str  # "onnx_fp32", "onnx_int8", "executorch_int8", "ncnn_fp32@w0.5", …
    size_kb: float
    latency_p50_ms: float
    noise_ms: float  # p90 - p10 of the timing, in the same units
    budgets: dict[str, dict]  # judged rows on the validation split: {budget: {value, limit, passed}}
    width: float = 1.0  # the share of channels of a nested width's file; 1 for an ordinary file
    runtime: str = "onnxruntime"  # what runs the file (the profile admitted it)
    accuracy: float | None = None  # on the validation split; None where there is no validation data

    @property
    def broken(self) -> list[str]:
        return [name for name, row in self.budgets.items() if row["passed"] is False]

    @property
    def unjudged(self) -> list[str]:
        return [name for name, row in self.budgets.items() if row["passed"] is None]


def _margin(a: Candidate, b: Candidate) -> float:
    """How far apart two medians must be to count as a difference."""
    return max(a.noise_ms, b.noise_ms, LATENCY_TIE * min(a.latency_p50_ms, b.latency_p50_ms))


def _faster(a: Candidate, b: Candidate) -> Candidate | None:
    """The clearly faster of two candidates, or None when their medians are within the noise."""
    low, high = sorted((a, b), key=lambda c: c.latency_p50_ms)
    return low if high.latency_p50_ms - low.latency_p50_ms > _margin(a, b) else None


def _more_accurate(a: Candidate, b: Candidate) -> Candidate | None:
    if a.accuracy is None or b.accuracy is None or a.accuracy == b.accuracy:
        return None
    return max(a, b, key=lambda c: c.accuracy)


def _smaller(a: Candidate, b: Candidate) -> Candidate | None:
    if a.size_kb == b.size_kb:
        return None
    return min(a, b, key=lambda c: c.size_kb)


# what each preference compares, in order, among files that break and leave unjudged as many budgets
ORDER: dict[str, tuple[Callable[[Candidate, Candidate], Candidate | None], ...]] = {
    "latency": (_faster, _smaller),
    "accuracy": (_more_accurate, _faster, _smaller),
    "size": (_smaller, _faster),
}


def _better(a: Candidate, b: Candidate, prefer: str) -> Candidate:
    if len(a.broken) != len(b.broken):
        return min(a, b, key=lambda c: len(c.broken))
    if len(a.unjudged) != len(b.unjudged):
        return min(a, b, key=lambda c: len(c.unjudged))
    for rule in ORDER[prefer]:
        winner = rule(a, b)
        if winner is not None:
            return winner
    return a  # the same in every figure: the first listed


def choose(candidates: list[Candidate], forced: str | None = None, prefer: str = "latency") -> tuple[Candidate, str]:
    """The file to ship and a sentence saying why."""
    if not candidates:
        raise ValueError("no variant to choose from")
    if prefer not in ORDER:
        raise ValueError(f"prefer must be one of {', '.join(PREFERENCES)} (got {prefer!r})")
    if forced is not None:
        chosen = next(c for c in candidates if c.artifact == forced)
        return chosen, f"{forced} forced by validate.artifact"
    passing = [c for c in candidates if not c.broken and not c.unjudged]
    if len({c.width for c in candidates}) > 1 and passing:
        widest = max(c.width for c in passing)
        chosen, why = preferred([c for c in candidates if c.width == widest], prefer)  # its failing files too, so the reason names them
        wider = [preferred([c for c in candidates if c.width == w], prefer)[0] for w in sorted({c.width for c in candidates if c.width > widest})]
        refused = "; ".join(f"width {c.width:g} breaks {', '.join(c.broken) or 'nothing'}" + (f", cannot judge {', '.join(c.unjudged)}" if c.unjudged else "") for c in wider)
        return chosen, f"width {widest:g} is the widest that meets every budget" + (f" ({refused})" if refused else "") + f"; {why}"
    return preferred(candidates, prefer)


def preferred(candidates: list[Candidate], prefer: str) -> tuple[Candidate, str]:
    """The rule across precisions and runtimes: fewest broken budgets, fewest unjudged, then the preference."""
    if len(candidates) == 1:
        return candidates[0], f"{candidates[0].artifact} is the only variant this run made"
    chosen = candidates[0]
    for other in candidates[1:]:
        chosen = _better(chosen, other, prefer)
    return chosen, _reason(chosen, [c for c in candidates if c is not chosen], prefer)


def trade(chosen: Candidate, other: Candidate) -> str:
    """What `chosen` gives and takes against `other`: speed beyond the noise, validation accuracy, size."""
    parts = []
    if _faster(chosen, other) is None:
        parts.append(f"the same speed within the noise (p50 {chosen.latency_p50_ms:.4g} vs {other.latency_p50_ms:.4g} ms, noise {_margin(chosen, other):.2g} ms)")
    else:
        parts.append(f"{(other.latency_p50_ms / chosen.latency_p50_ms - 1) * 100:+.0f} % speed (p50 {chosen.latency_p50_ms:.4g} vs {other.latency_p50_ms:.4g} ms)")
    if chosen.accuracy is not None and other.accuracy is not None:
        parts.append(f"{(chosen.accuracy - other.accuracy) * 100:+.2f} points")
    if other.size_kb:
        parts.append(f"{(chosen.size_kb / other.size_kb - 1) * 100:+.0f} % size")
    return ", ".join(parts)


def _reason(chosen: Candidate, others: list[Candidate], prefer: str) -> str:
    parts = []
    for other in others:
        if len(other.broken) > len(chosen.broken):
            parts.append(f"{other.artifact} breaks {', '.join(other.broken)}" + (f" ({chosen.artifact} breaks {', '.join(chosen.broken)})" if chosen.broken else ""))
        elif len(other.unjudged) > len(chosen.unjudged):
            parts.append(f"{other.artifact} could not be judged on {', '.join(other.unjudged)}")
        else:
            parts.append(f"over {other.artifact}: {trade(chosen, other)}")
    if chosen.broken:
        verdict = f"breaks {len(chosen.broken)} budget(s) on validation"
    elif chosen.unjudged:
        verdict = f"cannot be judged on {', '.join(chosen.unjudged)} on validation"
    else:
        verdict = "meets every budget on validation"
    return f"{chosen.artifact} {verdict}; preferring {prefer}: " + "; ".join(parts)
