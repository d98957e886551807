"""Which file ships to a device (runtime × precision × width): chosen by measured figures, never assumed.

INT8 is not always faster: for a 15 k-parameter CNN every INT8 variant measured here ran ~15 %
slower than FP32 (`shared/notes/int8-routes.md`), while a ResNet-20 ran 2x faster. So `validate`
measures every variant a run made, judges each against the device's budgets, and this module picks:

1. the variant that breaks the fewest budgets (then the fewest it could not judge);
2. among those, the faster one by median (p50) latency, but only when the medians differ by more
   than the timing noise (the wider of the two p10-p90 widths) and by more than `LATENCY_TIE`;
   otherwise they count as equally fast and the smaller file wins (INT8 keeps its size and memory
   advantage). A p90 alone is what a burst of host noise moves: measured, it once made FP32 look
   1.07x faster while INT8's median was 2.1x lower.

After a `nested` stage there is a file per width (and per precision). Then a device gets the widest
width whose file meets every budget (the widest network is the most accurate one: the widths are
one network's leading channels, so no test-split accuracy is consulted to rank them), and within
that width the FP32/INT8 rule above. If no width meets every budget, the rule above runs over all
files: the fewest broken budgets, then the fastest.

A device whose profile admits several runtimes (`runtimes: [onnxruntime, executorch, ncnn]`) has a
file per runtime and precision; the same rule picks among all of them: the fewest broken budgets,
then the fastest beyond the noise, then the smallest. Which runtime is fastest depends on the model
(measured here: ONNX Runtime for a 15 k-parameter CNN, where the others' call overhead dominates).

The reason is written out, so a report says why a device got FP32 when a quantize stage ran.
"""

from __future__ import annotations

from dataclasses import dataclass

LATENCY_TIE = 0.03  # medians closer than 3 % are never called different, however quiet the timing


@dataclass
class Candidate:
    artifact: str  # "onnx_fp32", "onnx_int8", "executorch_int8", "ncnn_fp32@w0.5", …
    size_kb: float
    latency_p50_ms: float
    noise_ms: float  # p90 - p10 of the timing, in the same units
    budgets: dict[str, dict]  # judged rows: {budget: {value, limit, passed}}
    width: float = 1.0  # the share of channels of a nested width's file; 1 for an ordinary file
    runtime: str = "onnxruntime"  # what runs the file (the profile admitted it)

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


def _better(a: Candidate, b: Candidate) -> Candidate:
    if len(a.broken) != len(b.broken):
        return min(a, b, key=lambda c: len(c.broken))
    if len(a.unjudged) != len(b.unjudged):
        return min(a, b, key=lambda c: len(c.unjudged))
    return _faster(a, b) or min(a, b, key=lambda c: c.size_kb)


def choose(candidates: list[Candidate], forced: str | None = None) -> tuple[Candidate, str]:
    """The file to ship and a sentence saying why."""
    if not candidates:
        raise ValueError("no variant to choose from")
    if forced is not None:
        chosen = next(c for c in candidates if c.artifact == forced)
        return chosen, f"{forced} forced by validate.artifact"
    passing = [c for c in candidates if not c.broken and not c.unjudged]
    if len({c.width for c in candidates}) > 1 and passing:
        widest = max(c.width for c in passing)
        chosen, why = _fastest([c for c in candidates if c.width == widest])  # its failing files too, so the reason names them
        wider = [_fastest([c for c in candidates if c.width == w])[0] for w in sorted({c.width for c in candidates if c.width > widest})]
        refused = "; ".join(f"width {c.width:g} breaks {', '.join(c.broken) or 'nothing'}" + (f", cannot judge {', '.join(c.unjudged)}" if c.unjudged else "") for c in wider)
        return chosen, f"width {widest:g} is the widest that meets every budget" + (f" ({refused})" if refused else "") + f"; {why}"
    return _fastest(candidates)


def _fastest(candidates: list[Candidate]) -> tuple[Candidate, str]:
    """The rule across precisions and runtimes: fewest broken budgets, then the faster beyond the noise, then the smaller."""
    if len(candidates) == 1:
        return candidates[0], f"{candidates[0].artifact} is the only variant this run made"
    chosen = candidates[0]
    for other in candidates[1:]:
        chosen = _better(chosen, other)
    return chosen, _reason(chosen, [c for c in candidates if c is not chosen])


def _reason(chosen: Candidate, others: list[Candidate]) -> str:
    parts = []
    for other in others:
        speed = f"p50 {chosen.latency_p50_ms:.4g} ms vs {other.latency_p50_ms:.4g} ms for {other.artifact}, noise {_margin(chosen, other):.2g} ms"
        if len(other.broken) > len(chosen.broken):
            parts.append(f"{other.artifact} breaks {', '.join(other.broken)}" + (f" ({chosen.artifact} breaks {', '.join(chosen.broken)})" if chosen.broken else ""))
        elif len(other.unjudged) > len(chosen.unjudged):
            parts.append(f"{other.artifact} could not be judged on {', '.join(other.unjudged)}")
        elif _faster(chosen, other) is chosen:
            ratio = other.latency_p50_ms / chosen.latency_p50_ms
            parts.append(f"{chosen.artifact} is {ratio:.2f}x faster at the median, beyond the timing noise ({speed})")
        else:
            parts.append(f"as fast within the timing noise ({speed}) and smaller ({chosen.size_kb:.1f} vs {other.size_kb:.1f} KiB)")
    verdict = "meets every budget" if not chosen.broken and not chosen.unjudged else f"breaks {len(chosen.broken)} budget(s)"
    return f"{chosen.artifact} {verdict}; " + "; ".join(parts)
