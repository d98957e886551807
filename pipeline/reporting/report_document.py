"""`compress report RUN_DIR`: a run as a document a reviewer reads: markdown and self-contained HTML.

A table per stage (accuracy, size, MACs, latency on the host and estimated per device), two plots
(accuracy against latency per device, accuracy against ONNX size, one point per stage's model;
matplotlib PNGs, embedded as data URIs in the HTML and written beside the markdown), which file
each device was given and why, and the gate's verdict per device and budget.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

from pipeline.core.metrics import metric_label
from pipeline.core.run_folder import RunFolder
from pipeline.deploy.budgets import VERDICT
from pipeline.deploy.gate import judge_report
from pipeline.deploy.profiles import load_profile
from pipeline.reporting.stage_figures import stage_rows
from pipeline.runtime.onnx_files import HOST_THREADS


def write_run_document(run_dir: Path, out_dir: Path | None = None, runs: int = 200) -> tuple[Path, Path]:
    """Measure every stage, draw the plots, write report.md (+ PNGs) and report.html; return both paths."""
    run = RunFolder(run_dir)
    report = run.report()
    run.verify(report)
    out_dir = out_dir or run_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    profiles = {name: load_profile(name) for name in report.get("devices") or {}} or {"host": load_profile("host")}
    rows = stage_rows(run_dir, [HOST_THREADS], runs)
    for row in rows:
        row["device_p90_ms"] = {n: p.estimate_ms(row["latency"][HOST_THREADS]["p90"]) for n, p in profiles.items()}
    plots = {
        "accuracy_vs_latency.png": plot(rows, profiles, "latency", report.get("devices"), report["recipe"]),
        "accuracy_vs_size.png": plot(rows, profiles, "size", report.get("devices"), report["recipe"]),
    }
    for name, png in plots.items():
        (out_dir / name).write_bytes(png)
    gate = judge_report(report)
    markdown = render_markdown(run, report, rows, profiles, gate, {n: n for n in plots})
    md_path = out_dir / "report.md"
    md_path.write_text(markdown)
    html_path = out_dir / "report.html"
    html_path.write_text(render_html(run, report, rows, profiles, gate, plots))
    return md_path, html_path


def plot(rows: list[dict], profiles: dict, kind: str, devices: dict | None = None, recipe: dict | None = None) -> bytes:
    """Accuracy (%) against device p90 latency (one series per device, log x) or against ONNX size,
    with each device's budgets as dashed lines in its colour and the file it ships as a star; stages
    whose models land on one point share one label. `recipe`: report.json's, whose task picks the
    accuracy floor drawn (a detector's `min_map`) and whose metric names the axis."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    devices = devices or {}
    recipe = recipe or {}
    task, metric = recipe.get("task", "classification"), recipe.get("metric", "top1")

    def floor(profile) -> float | None:
        budgets = profile.budgets.for_task(task)
        return budgets.get("min_accuracy", budgets.get("min_map"))

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    if kind == "latency":
        for name, profile in profiles.items():
            xs = [r["device_p90_ms"][name] for r in rows]
            (line,) = ax.plot(xs, [r["accuracy"] * 100 for r in rows], "o:", label=f"{name} ({profile.latency_kind})", alpha=0.8)
            _budget_lines(ax, profile.budgets.max_latency_p90_ms, floor(profile), line.get_color())
            if name in devices:
                ax.plot(devices[name]["latency_ms"]["p90"], devices[name]["accuracy"] * 100, "*", ms=13, color=line.get_color(), mec="black", mew=0.5)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("p90 latency at batch 1, ms (log scale); dashed: each device's budget, star: the file it ships")
        ax.legend(fontsize=8)
    else:
        ax.plot([r["onnx_kib"] for r in rows], [r["accuracy"] * 100 for r in rows], "o:", color="tab:purple")
        for (name, profile), color in zip(profiles.items(), matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]):
            _budget_lines(ax, profile.budgets.max_size_kb, floor(profile), color, label=name)
            if name in devices:
                ax.plot(devices[name]["size_bytes"] / 1024, devices[name]["accuracy"] * 100, "*", ms=13, color=color, mec="black", mew=0.5)
        ax.set_xlabel("ONNX file size, KiB; dashed: each device's budget, star: the file it ships")
        if any(p.budgets.max_size_kb for p in profiles.values()):
            ax.legend(fontsize=8)
    first = next(iter(profiles))
    points = [(r["device_p90_ms"][first] if kind == "latency" else r["onnx_kib"], r["accuracy"] * 100, r["stage"]) for r in rows]
    for i, (x, y, label) in enumerate(_shared_labels(points, log_x=kind == "latency")):
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(5, 5 if i % 2 == 0 else -11), fontsize=7)
    ax.set_ylabel("test accuracy, %" if metric == "top1" else f"test {metric_label(metric)}, %")
    ax.grid(alpha=0.3)
    ax.set_title("accuracy vs latency, every stage's model" if kind == "latency" else "accuracy vs size, every stage's model", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _budget_lines(ax, x_limit: float | None, min_accuracy: float | None, color: str, label: str | None = None) -> None:
    if x_limit is not None:
        ax.axvline(x_limit, ls="--", lw=1, color=color, alpha=0.7, label=label and f"{label} budget")
    if min_accuracy is not None:
        ax.axhline(min_accuracy * 100, ls="--", lw=1, color=color, alpha=0.7)


def _shared_labels(points: list[tuple[float, float, str]], log_x: bool) -> list[tuple[float, float, str]]:
    """One label per spot: stages whose points lie within 3 % on x and 0.1 points on y are named together."""
    merged: list[list] = []
    for x, y, label in points:
        for spot in merged:
            close_x = abs(math.log(x / spot[0])) < 0.03 if log_x and x > 0 and spot[0] > 0 else abs(x - spot[0]) <= 0.03 * max(abs(spot[0]), 1e-9)
            if close_x and abs(y - spot[1]) < 0.1:
                spot[2] += f", {label}"
                break
        else:
            merged.append([x, y, label])
    return [tuple(spot) for spot in merged]


def _tables(run: RunFolder, report: dict, rows: list[dict], profiles: dict, gate) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) for every table, shared by both renderings."""
    devices = list(profiles)
    acc = metric_label(report["recipe"].get("metric"))
    stages = [
        [r["stage"] + (" (INT8)" if r["int8"] else ""), f"{r['seconds']:.1f}", f"{r['accuracy']:.4f}", f"{r['params']:,}", f"{r['macs'] / 1e6:.2f} M",
         f"{r['onnx_kib']:.1f}", *[f"{r['device_p90_ms'][d]:.4g}" for d in devices]]
        for r in rows
    ]
    stage_header = ["stage", "seconds", f"test {acc}", "params", "MACs", "ONNX KiB", *[f"p90 ms {d} ({profiles[d].latency_kind})" for d in devices]]
    shipped = [
        [name, d["artifact"], _num(d.get("val_accuracy")), _num(d["accuracy"]), latency_cell(d), f"{d['size_bytes'] / 1024:.1f}",
         VERDICT[d["passed"]], (d.get("choice") or {}).get("summary") or (d.get("choice") or {}).get("reason", "")]  # a report older than the summary: its full reason
        for name, d in (report.get("devices") or {}).items()
    ]
    candidates = [  # every file each device could have had: with nested widths, the accuracy-latency curve per device
        [name, file, "yes" if file == d["artifact"] else "", _num(c.get("val_accuracy")), VERDICT[c.get("passed_on_validation")], _num(c.get("accuracy")),
         _num(c["latency_ms"]["p50"]), _num(c["latency_ms"]["p90"]), f"{c['size_bytes'] / 1024:.1f}", VERDICT[c["passed"]]]
        for name, d in (report.get("devices") or {}).items()
        for file, c in sorted(((d.get("choice") or {}).get("candidates") or {}).items(), key=lambda fc: fc[1]["latency_ms"]["p50"])
    ]
    verdicts = [[r.device, r.budget, _num(r.value), _num(r.limit), {True: "pass", False: "FAIL", None: "unknown"}[r.passed]] for r in gate.rows]
    tables = [("Stages", stage_header, stages)]
    for stage in report["stages"]:  # each stage's own figures: its scalar metrics, and prune's rounds
        if stage.get("status") not in ("ran", "resumed"):
            continue
        details = run.stage_named(stage["folder"]).metrics()
        scalars = [[key, _cell(value)] for key, value in details.items() if isinstance(value, (int, float, str, bool)) and len(str(value)) < 200]
        tables.append((f"Stage {stage['folder']}", ["metric", "value"], scalars))
        aware = details.get("accuracy_aware") or {}
        if aware:
            chosen = aware.get("chosen") or {}
            header = f"budget {aware.get('budget_points')} points, {'met' if aware.get('budget_met') else 'NOT met'}, drop {chosen.get('drop_points')}"
            rows_fp32 = [[row["node"], row["reason"]] for row in aware.get("fp32_nodes") or []] or [["(none)", "fully INT8 met the budget"]]
            tables.append((f"FP32 fallbacks ({stage['folder']}: {header})", ["node left in FP32", "why"], rows_fp32))
        rounds = details.get("rounds") or []  # a stage that worked in rounds (pruning) lists them
        if not rounds:
            continue
        extra = [k for k in ("latency_p90_ms", "size_kb", "meets") if rounds and k in rounds[0]]
        header = ["round" if "round" in (rounds or [{}])[0] else "increment", "params", "MACs", *extra, f"val {acc}"]
        body = [
            [str(r.get("round", r.get("step"))), f"{r['params']:,}", f"{r['macs'] / 1e6:.2f} M", *[_cell(r[k]) for k in extra], _cell(r.get("val_accuracy"))]
            for r in rounds
        ]
        tables.append((f"Pruning ({stage['folder']})", header, body))
    return tables + [

        ("What each device gets (chosen on validation, judged on test)",
         ["device", "file", f"val {acc}", f"test {acc}", "p90 ms (how)", "KiB", "verdict (test)", "why this file"], shipped),
        ("Every file each device could get (fastest first; validation chose, test judged)",
         ["device", "file", "shipped", f"val {acc}", "on validation", f"test {acc}", "p50 ms", "p90 ms", "KiB", "verdict (test)"], candidates),
        ("Gate", ["device", "budget", "value", "limit", "verdict"], verdicts),
    ]


def _cell(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return _num(value) if isinstance(value, (int, float)) or value is None else str(value)


def latency_cell(device: dict) -> str:
    """A device's p90 and how it was had: measured on its board (the estimate beside it), measured
    on this host, or estimated from it."""
    cell = f"{device['latency_ms']['p90']:.4g} ({device.get('latency_kind', 'estimated')}"
    if "latency_estimate_ms" in device:
        cell += f"; estimate {device['latency_estimate_ms']['p90']:.4g}"
    return cell + ")"


def _num(value) -> str:
    if value is not None and not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return "–" if value is None else f"{value:.4g}"


def _verdict(gate) -> str:
    return {0: "PASS", 1: "FAIL", 2: "CANNOT JUDGE"}[gate.exit_code]


def render_markdown(run: RunFolder, report: dict, rows: list[dict], profiles: dict, gate, images: dict[str, str]) -> str:
    lines = [f"# {report['recipe']['name']}: gate {_verdict(gate)}", "", f"Recipe sha256 `{report['recipe']['sha256'][:16]}…`; "
             "latencies are measured on one thread of this host at batch 1 and scaled to each device by its profile (labelled)."]
    for title, header, body in _tables(run, report, rows, profiles, gate):
        lines += ["", f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
    lines += ["", "## Plots", "", *[f"![{name}]({path})" for name, path in images.items()]]
    if gate.problems:
        lines += ["", "Cannot judge:", *[f"- {p}" for p in gate.problems]]
    return "\n".join(lines) + "\n"


def render_html(run: RunFolder, report: dict, rows: list[dict], profiles: dict, gate, plots: dict[str, bytes]) -> str:
    """One file, no external resources: tables, and the plots as base64 data URIs."""
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{e(report['recipe']['name'])}: compress report</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;font-size:.9em}th{background:#f4f4f4}"
        ".PASS,.pass{color:#176f2c}.FAIL{color:#b00020;font-weight:bold}img{max-width:100%}</style></head><body>",
        f"<h1>{e(report['recipe']['name'])}: gate <span class='{_verdict(gate).split()[0]}'>{_verdict(gate)}</span></h1>",
        "<p>Latencies are measured on one thread of this host at batch 1 and scaled to each device by its profile (labelled).</p>",
    ]
    for title, header, body in _tables(run, report, rows, profiles, gate):
        parts.append(f"<h2>{e(title)}</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        for row in body:
            parts.append("<tr>" + "".join(f"<td class='{e(c)}'>{e(c)}</td>" for c in row) + "</tr>")
        parts.append("</table>")
    parts.append("<h2>Plots</h2>")
    for name, png in plots.items():
        parts.append(f"<p><img alt='{e(name)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'></p>")
    if gate.problems:
        parts.append("<h2>Cannot judge</h2><ul>" + "".join(f"<li>{e(p)}</li>" for p in gate.problems) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
