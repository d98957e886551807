"""Which file ships to a device, FP32 or INT8: chosen by measured figures, never assumed.

INT8 is not always faster: for a 15 k-parameter CNN every INT8 variant measured here ran ~15 %
slower than FP32 (`shared/notes/int8-routes.md`), while a ResNet-20 ran 2x faster. So `validate`
measures every variant a run made, judges each against the device's budgets, and this module picks:

1. the variant that breaks the fewest budgets (then the fewest it could not judge);
2. among those, the faster one by p90 latency; within `LATENCY_TIE` of each other they count as
   equally fast and the smaller file wins (INT8 keeps its size and memory advantage).

The reason is written out, so a report says why a device got FP32 when a quantize stage ran.
"""

from __future__ import annotations

from dataclasses import dataclass

LATENCY_TIE = 0.03  # p90s within 3 % are within run-to-run noise on a busy host


@dataclass
class Candidate:
    artifact: str  # "onnx_fp32" or "onnx_int8"
    size_kb: float
    latency_p90_ms: float
    budgets: dict[str, dict]  # judged rows: {budget: {value, limit, passed}}

    @property
    def broken(self) -> list[str]:
        return [name for name, row in self.budgets.items() if row["passed"] is False]

    @property
    def unjudged(self) -> list[str]:
        return [name for name, row in self.budgets.items() if row["passed"] is None]


def _faster(a: Candidate, b: Candidate) -> Candidate | None:
    """The clearly faster of two candidates, or None when their p90s are within the tie margin."""
    low, high = sorted((a, b), key=lambda c: c.latency_p90_ms)
    return low if high.latency_p90_ms > low.latency_p90_ms * (1 + LATENCY_TIE) else None


def _better(a: Candidate, b: Candidate) -> Candidate:
    if len(a.broken) != len(b.broken):
        return min(a, b, key=lambda c: len(c.broken))
    if len(a.unjudged) != len(b.unjudged):
        return min(a, b, key=lambda c: len(c.unjudged))
    return _faster(a, b) or min(a, b, key=lambda c: c.size_kb)


def choose(candidates: list[Candidate], forced: str | None = None) -> tuple[Candidate, str]:
    """The variant to ship and a sentence saying why."""
    if not candidates:
        raise ValueError("no variant to choose from")
    if forced is not None:
        chosen = next(c for c in candidates if c.artifact == forced)
        return chosen, f"{forced} forced by validate.artifact"
    if len(candidates) == 1:
        return candidates[0], f"{candidates[0].artifact} is the only variant this run made"
    chosen = candidates[0]
    for other in candidates[1:]:
        chosen = _better(chosen, other)
    return chosen, _reason(chosen, [c for c in candidates if c is not chosen])


def _reason(chosen: Candidate, others: list[Candidate]) -> str:
    parts = []
    for other in others:
        speed = f"p90 {chosen.latency_p90_ms:.4g} ms vs {other.latency_p90_ms:.4g} ms for {other.artifact}"
        if len(other.broken) > len(chosen.broken):
            parts.append(f"{other.artifact} breaks {', '.join(other.broken)}" + (f" ({chosen.artifact} breaks {', '.join(chosen.broken)})" if chosen.broken else ""))
        elif len(other.unjudged) > len(chosen.unjudged):
            parts.append(f"{other.artifact} could not be judged on {', '.join(other.unjudged)}")
        elif _faster(chosen, other) is chosen:
            ratio = other.latency_p90_ms / chosen.latency_p90_ms
            parts.append(f"{chosen.artifact} is {ratio:.2f}x faster ({speed})")
        else:
            parts.append(f"as fast within {LATENCY_TIE:.0%} ({speed}) and smaller ({chosen.size_kb:.1f} vs {other.size_kb:.1f} KiB)")
    verdict = "meets every budget" if not chosen.broken and not chosen.unjudged else f"breaks {len(chosen.broken)} budget(s)"
    return f"{chosen.artifact} {verdict}; " + "; ".join(parts)
