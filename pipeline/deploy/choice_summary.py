"""What the terminal says about a device's choice: a short table of the files it chose among and
one line of reason. The full reason, naming every file's trade, stays in report.json (`choice.reason`).
"""

from __future__ import annotations

from pipeline.deploy.budgets import VERDICT
from pipeline.deploy.variant_choice import Candidate, preferred, trade


def headline(chosen: Candidate, candidates: list[Candidate], prefer: str, forced: str | None = None, forced_by: str = "validate.artifact") -> str:
    """One line: whether the file meets its budgets on validation, and what it won on against the next best."""
    if forced is not None:
        return f"{chosen.artifact}, forced by {forced_by}"
    width = f"width {chosen.width:g}, the widest that meets every budget; " if len({c.width for c in candidates}) > 1 and not chosen.broken and not chosen.unjudged else ""
    others = [c for c in candidates if c is not chosen and c.width == chosen.width]
    if not others:
        return f"{width}{chosen.artifact} {_state(chosen)}; the only file of its width"
    runner_up = preferred(others, prefer)[0]
    if len(runner_up.broken) > len(chosen.broken):
        return f"{width}{chosen.artifact} {_state(chosen)}; the next best, {runner_up.artifact}, breaks more: {', '.join(runner_up.broken)}"
    if len(runner_up.unjudged) > len(chosen.unjudged):
        return f"{width}{chosen.artifact} {_state(chosen)}; the next best, {runner_up.artifact}, cannot be judged on {', '.join(runner_up.unjudged)}"
    if chosen.broken or chosen.unjudged:  # the next best fares as badly: the preference decided
        return f"{chosen.artifact} {_state(chosen)}, as does the next best, {runner_up.artifact}; preferring {prefer}: {trade(chosen, runner_up)}"
    return f"{width}{chosen.artifact} {_state(chosen)}; preferring {prefer}, over the next best, {runner_up.artifact}: {trade(chosen, runner_up)}"


def _state(c: Candidate) -> str:
    if c.broken:
        return f"breaks {', '.join(c.broken)} on validation"
    if c.unjudged:
        return f"cannot be judged on {', '.join(c.unjudged)} on validation"
    return "meets every budget on validation"


def candidates_table(chosen: str, candidates: dict[str, dict], label: str = "acc") -> list[str]:
    """One row per file the device chose among (the chosen one marked *): median and noise of its
    latency estimate, validation metric (`label`: acc, mAP), size, and its verdict on validation with
    what it breaks."""
    w = max(len("file"), *(len(name) for name in candidates)) + 2
    lines = [f"  {'file':<{w}} {'p50 ms':>9} {'noise ms':>9} {'val ' + label:>8} {'KiB':>9}  on validation"]
    for name, c in sorted(candidates.items(), key=lambda kv: (kv[0] != chosen, kv[1]["latency_ms"]["p50"])):
        broken = [b for b, row in c.get("budgets_on_validation", {}).items() if row["passed"] is False]
        verdict = VERDICT[c["passed_on_validation"]] + (f" ({', '.join(broken)})" if broken else "")
        val = "–" if c["val_accuracy"] is None else f"{c['val_accuracy']:.4f}"
        mark = "*" if name == chosen else " "
        lines.append(f"{mark} {name:<{w}} {c['latency_ms']['p50']:>9.4g} {c['latency_ms']['noise']:>9.2g} {val:>8} {c['size_bytes'] / 1024:>9.1f}  {verdict}")
    return lines
