"""`tune.md`: what a study found, per device, and every trial it ran."""

from __future__ import annotations

import json
from pathlib import Path


def write_tune_markdown(summary: dict, path: Path) -> Path:
    lines = [
        f"# Tune study `{summary['study']}`",
        "",
        f"{summary['trials']['complete']} finished trial(s) of {summary['trials']['all']}; every choice on the validation split, "
        "each device's test figure read once, after, from its trial's run.",
        "",
        "| device | trial | values | file shipped | val | test | on validation | recipe |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for device, pick in summary["devices"].items():
        verdict = "meets every budget" if pick["meets_every_budget_on_validation"] else "closest: breaks " + ", ".join(pick["broken_on_validation"])
        lines.append(f"| {device} | {pick['trial']} | `{json.dumps(pick['values'])}` | {pick['artifact']} | {pick['val_accuracy']:.4f} | "
                     f"{pick['test_accuracy']:.4f} | {verdict} | `{pick['recipe']}` |")
    reuse = summary["stage_reuse"]
    lines += [
        "",
        f"Stage reuse: {reuse['reused']} of {reuse['stages']} stages came from the store ({reuse['rate']:.0%}); the store holds "
        f"{reuse['store_bytes'] / 2**20:.1f} MiB. Time in trials: {summary['seconds']:.0f} s.",
        "",
        "| trial | values | score (lowest val over devices) | " + " | ".join(f"{d}: val, verdict" for d in summary["devices"]) + " | stages reused | s |",
        "|---|---|---|" + "---|" * len(summary["devices"]) + "---|---|",
    ]
    for row in summary["rows"]:
        cells = []
        for device in summary["devices"]:
            f = row["devices"].get(device, {})
            cells.append(f"{(f.get('val_accuracy') or 0):.4f}, " + ("PASS" if f.get("passed_on_validation") else "breaks " + ", ".join(f.get("broken") or ["?"])))
        lines.append(f"| {row['trial']} | `{json.dumps(row['values'])}` | {row['score']:.4f} | " + " | ".join(cells) + f" | {row['reused_stages']} | {row['seconds']:.0f} |")
    path.write_text("\n".join(lines) + "\n")
    return path


def picks_table(summary: dict) -> str:
    """The terminal's last word on a study: per device its trial, validation and test figures, and the recipe written."""
    lines = [f"{'device':<20} {'trial':>5} {'val':>7} {'test':>7}  on validation          recipe"]
    for device, pick in summary["devices"].items():
        verdict = "meets every budget" if pick["meets_every_budget_on_validation"] else "closest: breaks " + ", ".join(pick["broken_on_validation"])
        lines.append(f"{device:<20} {pick['trial']:>5} {pick['val_accuracy']:>7.4f} {pick['test_accuracy']:>7.4f}  {verdict:<22} {pick['recipe']}")
    reuse = summary["stage_reuse"]
    lines.append(f"{summary['trials']['complete']} trial(s) finished; {reuse['reused']} of {reuse['stages']} stages reused from the store "
                 f"({reuse['rate']:.0%}); chosen on validation, test figures read once after")
    return "\n".join(lines)
