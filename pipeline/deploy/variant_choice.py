"""Which file ships to a device (runtime × precision × width): chosen by measured figures, never assumed.

INT8 is not always faster: for a 15 k-parameter CNN every INT8 variant measured here ran ~15 %
slower than FP32 (`shared/notes/int8-routes.md`), while a ResNet-20 ran 2x faster. So `validate`
measures every variant a run made, judges each against the device's budgets, and this module picks.
Every figure it reads is a **validation** figure (accuracy, and the accuracy drop against the float
model's validation accuracy): the test split is scored once, after the choice, for the report and
the gate, so a test-split accuracy never decides what ships.

1. the variant that breaks the fewest budgets (then the fewest it could not judge);
2. among those, the one the device's profile prefers (`prefer`):
   - `latency` (the default): the faster, but only when it is faster beyond the noise; otherwise
     they count as equally fast and the smaller file wins (INT8 keeps its size and memory
     advantage). Files timed together (in interleaved rounds, `rounds_p50`) are compared round by
     round: one is faster when its median is lower by more than `LATENCY_TIE` over the rounds (the
     median of the rounds' ratios) and it is faster in `ROUND_WINS` of the rounds. Files timed apart
     fall back on their medians differing by more than the wider of the two p10-p90 widths.
     Why rounds: the p10-p90 width of single runs is how much one run varies, not how well the
     median is known, and it moves with the host's state. Measured on a 60-microsecond CNN whose
     INT8 file was 17 % slower in every one of 10 interleaved rounds, run after run, the width
     (0.13 to 0.7 of the median) called the two equally fast in 9 of 10 timings and shipped the
     slower INT8 file, and FP32 in the tenth. A p90 alone is what a burst of host noise moves:
     measured, it once made FP32 look 1.07x faster while INT8's median was 2.1x lower.
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

import math
import statistics
from dataclasses import dataclass
from typing import Callable, Literal

LATENCY_TIE = 0.03  # medians closer than 3 % are never called different, however quiet the timing
ROUND_WINS = 0.8  # the faster of two files timed together is faster in at least this share of the rounds
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
    rounds_p50: tuple[float, ...] = ()  # the median of each interleaved round, when the files were timed together

    @property
    def broken(self) -> list[str]:
        return [name for name, row in self.budgets.items() if row["passed"] is False]

    @property
    def unjudged(self) -> list[str]:
        return [name for name, row in self.budgets.items() if row["passed"] is None]


def _margin(a: Candidate, b: Candidate) -> float:
    """How far apart two medians must be to count as a difference, for files timed apart."""
    return max(a.noise_ms, b.noise_ms, LATENCY_TIE * min(a.latency_p50_ms, b.latency_p50_ms))


def timed_together(a: Candidate, b: Candidate) -> bool:
    """Both files have a median for each of the same interleaved rounds, so they compare round by round."""
    return bool(a.rounds_p50) and len(a.rounds_p50) == len(b.rounds_p50)


def round_ratios(a: Candidate, b: Candidate) -> list[float]:
    """b's median over a's in each round: above 1 where a was faster."""
    return [rb / ra for ra, rb in zip(a.rounds_p50, b.rounds_p50)]


def clearly_faster(a: Candidate, b: Candidate) -> Candidate | None:
    """The clearly faster of two candidates, or None when they are equally fast within the noise."""
    if timed_together(a, b):
        ratios = round_ratios(a, b)
        median, needed = statistics.median(ratios), math.ceil(ROUND_WINS * len(ratios))
        if median > 1 + LATENCY_TIE and sum(r > 1 for r in ratios) >= needed:
            return a
        if median < 1 / (1 + LATENCY_TIE) and sum(r < 1 for r in ratios) >= needed:
            return b
        return None
    low, high = sorted((a, b), key=lambda c: c.latency_p50_ms)
    return low if high.latency_p50_ms - low.latency_p50_ms > _margin(a, b) else None


def _noise(a: Candidate, b: Candidate) -> str:
    """What the speed comparison read, in words: the rounds `a` was faster in, or the noise margin."""
    if timed_together(a, b):
        ratios = round_ratios(a, b)
        return f"faster in {sum(r > 1 for r in ratios)} of {len(ratios)} interleaved rounds"
    return f"noise {_margin(a, b):.2g} ms"


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
    "latency": (clearly_faster, _smaller),
    "accuracy": (_more_accurate, clearly_faster, _smaller),
    "size": (_smaller, clearly_faster),
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


def choose(candidates: list[Candidate], forced: str | None = None, prefer: str = "latency", forced_by: str = "validate.artifact") -> tuple[Candidate, str]:
    """The file to ship and a sentence saying why; `forced`: the file already chosen, by the recipe field `forced_by`."""
    if not candidates:
        raise ValueError("no variant to choose from")
    if prefer not in ORDER:
        raise ValueError(f"prefer must be one of {', '.join(PREFERENCES)} (got {prefer!r})")
    if forced is not None:
        chosen = next(c for c in candidates if c.artifact == forced)
        return chosen, f"{forced} forced by {forced_by}"
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
    medians = f"p50 {chosen.latency_p50_ms:.4g} vs {other.latency_p50_ms:.4g} ms"
    if clearly_faster(chosen, other) is None:
        parts.append(f"the same speed within the noise ({medians}, {_noise(chosen, other)})")
    else:
        rounds = f", {_noise(chosen, other)}" if timed_together(chosen, other) else ""
        parts.append(f"{(other.latency_p50_ms / chosen.latency_p50_ms - 1) * 100:+.0f} % speed ({medians}{rounds})")
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
