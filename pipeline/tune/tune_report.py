"""`tune.md` and `tune.html`: what a study found, per device, and every trial it ran.

Per device: the trial it gets and why, and a plot of every finished trial's validation metric
against the latency of the file it would ship there, with the Pareto front, the device's budgets
and its pick. Then which searched fields mattered, the time spent and the stage reuse, and the
trials table. Every figure but each pick's test figure is a validation figure.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path


def write_tune_markdown(summary: dict, path: Path) -> Path:
    lines = [
        f"# Tune study `{summary['study']}`",
        "",
        f"{summary['trials']['complete']} finished trial(s) of {summary['trials']['all']} ({summary['trials']['pruned']} stopped early: "
        f"{stop_reasons(summary['pruner'])}); objective {summary['objective']}, sampler {summary['sampler']}. "
        "Every choice on the validation split, "
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
        f"{reuse['store_bytes'] / 2**20:.1f} MiB (`compress tune-clean` frees it). Time in trials: {summary['seconds']:.0f} s; the reused stages "
        f"had taken {reuse['seconds_saved']:.0f} s when they first ran.",
        "",
        *_importance_lines(summary),
        *_front_lines(summary),
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


def stop_reasons(pruner: str) -> str:
    """What can stop a trial before its last epoch in this study (no pruner: only the time and the limits)."""
    return ("" if pruner == "none" else f"by the {pruner} pruner, ") + "the study's time or a model over its limits"


def picks_table(summary: dict) -> str:
    """The terminal's last word on a study: per device its trial, validation and test figures, and the recipe written."""
    lines = [f"{'device':<20} {'trial':>5} {'val':>7} {'test':>7}  on validation          recipe"]
    for device, pick in summary["devices"].items():
        verdict = "meets every budget" if pick["meets_every_budget_on_validation"] else "closest: breaks " + ", ".join(pick["broken_on_validation"])
        lines.append(f"{device:<20} {pick['trial']:>5} {pick['val_accuracy']:>7.4f} {pick['test_accuracy']:>7.4f}  {verdict:<22} {pick['recipe']}")
    reuse = summary["stage_reuse"]
    lines.append(f"{summary['trials']['complete']} trial(s) finished, {summary['trials']['pruned']} stopped early; {reuse['reused']} of "
                 f"{reuse['stages']} stages reused from the store ({reuse['rate']:.0%}, {reuse['seconds_saved']:.0f} s saved); "
                 "chosen on validation, test figures read once after")
    return "\n".join(lines)


def _importance_lines(summary: dict) -> list[str]:
    found = summary.get("importances") or {}
    if not found:
        return ["Field importances: too few finished trials to say (4 or more needed).", ""]
    return ["Field importances (PED-ANOVA over the finished trials' scores): "
            + ", ".join(f"`{name}` {value:.2f}" for name, value in found.items()) + ".", ""]


def _front_lines(summary: dict) -> list[str]:
    lines = []
    for device, fronts in (summary.get("pareto_fronts") or {}).items():
        lines.append(f"Pareto front for {device} (validation metric against p50 latency): trials "
                     + ", ".join(map(str, fronts["latency_p50_ms"])) + "; against size: " + ", ".join(map(str, fronts["size_kib"])) + ".")
    return lines + [""] if lines else []


def front_plot(summary: dict, device: str) -> bytes:
    """Every finished trial of the study for one device: validation metric (%) against the p50 latency
    of the file it would ship there; the Pareto front joined, the budgets dashed, the pick a star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {r["trial"]: r for r in summary["rows"] if device in r["devices"] and r["devices"][device]["latency_p50_ms"] is not None}
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for passing, color, label in ((True, "tab:green", "meets this device's budgets"), (False, "tab:red", "breaks one of them")):
        points = [r["devices"][device] for r in rows.values() if (not r["devices"][device]["broken"]) == passing]
        ax.plot([p["latency_p50_ms"] for p in points], [(p["val_accuracy"] or 0) * 100 for p in points], "o", color=color, alpha=0.6, label=label)
    front = [rows[n]["devices"][device] for n in summary["pareto_fronts"][device]["latency_p50_ms"] if n in rows]
    ax.plot([p["latency_p50_ms"] for p in front], [(p["val_accuracy"] or 0) * 100 for p in front], "-", color="black", lw=1, label="Pareto front")
    limits = next((r["devices"][device]["limits"] for r in rows.values()), {})
    if "max_latency_p90_ms" in limits:
        ax.axvline(limits["max_latency_p90_ms"], ls="--", color="gray", lw=1, label="p90 latency budget")
    if "min_accuracy" in limits:
        ax.axhline(limits["min_accuracy"] * 100, ls=":", color="gray", lw=1, label="accuracy budget")
    chosen = summary["devices"][device]["trial"]
    if chosen in rows:
        p = rows[chosen]["devices"][device]
        ax.plot(p["latency_p50_ms"], (p["val_accuracy"] or 0) * 100, "*", ms=14, color="gold", mec="black", mew=0.6, label=f"pick: trial {chosen}")
    ax.set_xscale("log")  # a budget is often far from the trials: a log axis keeps both in view
    ax.set_xlabel(f"p50 latency on {device}, ms, log scale (the file each trial would ship)")
    ax.set_ylabel("validation metric, %")
    ax.set_title(f"{device}: every trial", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def write_tune_html(summary: dict, path: Path) -> Path:
    """One self-contained file: the markdown's tables and text, and a front plot per device (PNG data URIs)."""
    e = html.escape
    markdown = path.with_suffix(".md").read_text() if path.with_suffix(".md").exists() else ""
    parts = ["<!doctype html><html><head><meta charset='utf-8'>", f"<title>tune {e(summary['study'])}</title>",
             "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:75em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:.3em .6em;font-size:.85em}th{background:#f4f4f4}img{max-width:100%}</style></head><body>"]
    table: list[list[str]] = []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            if not set(line) <= set("|-"):
                table.append([c.strip().strip("`") for c in line.strip("|").split("|")])
            continue
        if table:
            parts.append("<table>" + "".join(
                "<tr>" + "".join(f"<{'th' if i == 0 else 'td'}>{e(c)}</{'th' if i == 0 else 'td'}>" for c in cells) + "</tr>"
                for i, cells in enumerate(table)) + "</table>")
            table = []
        if line.startswith("# "):
            parts.append(f"<h1>{e(line[2:])}</h1>")
        elif line.strip():
            parts.append(f"<p>{e(line.replace('`', ''))}</p>")
    for device in summary["devices"]:
        png = front_plot(summary, device)
        parts.append(f"<h2>{e(device)}</h2><p><img alt='{e(device)}: trials' src='data:image/png;base64,{base64.b64encode(png).decode()}'></p>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts) + "\n")
    return path
