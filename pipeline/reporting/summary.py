"""The terminal's view of a report: a table of stages and one of devices, printed by `compress run`,
`compress validate` and `compress bench` after their work, and the one verdict line printed last."""

from __future__ import annotations

from pipeline.core.metrics import metric_label
from pipeline.deploy.gate import GateResult


def summary_table(report: dict) -> str:
    label = metric_label(report.get("recipe", {}).get("metric"))
    label = "accuracy" if label == "acc" else label
    lines = [f"{'stage':<16} {'status':<8} {'seconds':>8} {label:>9} {'params':>9} {'MACs':>10} {'size KiB':>9}"] if report["stages"] else []
    for s in report["stages"]:
        m = s["metrics"]
        lines.append(
            f"{s['folder']:<16} {s['status']:<8} {fmt(s['seconds'], 1):>8} {fmt(m.get('accuracy'), 4):>9} "
            f"{fmt(m.get('params'), 0):>9} {fmt(m.get('macs'), 0):>10} {fmt(None if m.get('size_bytes') is None else m['size_bytes'] / 1024, 1):>9}"
        )
    if report["devices"]:
        lines += [""] if lines else []
        w = max(10, *(len(d["artifact"]) for d in report["devices"].values()))
        lines.append(f"{'device':<20} {'artifact':<{w}} {label:>9} {'p90 ms':>9} {'latency':<10} {'size KiB':>9}  verdict")
        for name, d in report["devices"].items():
            failed = [b for b, r in d["budgets"].items() if r["passed"] is False]
            verdict = {True: "PASS", False: "FAIL " + ", ".join(failed), None: "CANNOT JUDGE"}[d["passed"]]
            lines.append(
                f"{name:<20} {d['artifact']:<{w}} {fmt(d['accuracy'], 4):>9} {d['latency_ms']['p90']:>9.3f} "
                f"{d['latency_kind']:<10} {d['size_bytes'] / 1024:>9.1f}  {verdict}"
            )
    return "\n".join(lines)


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or digits == 0:
        return f"{int(value):,}"
    return f"{value:.{digits}f}"


def bench_table(report: dict, result: GateResult) -> str:
    """`compress bench`: per device, the latency percentiles (measured or estimated), peak memory, size,
    and the verdict on the budgets judged (`result`: which ones)."""
    judged = {(r.device, r.budget): r.passed for r in result.rows}
    lines = [f"{'device':<20} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'latency':<10} {'threads':>7} {'peak MB':>8} {'KiB':>8} {'gzip KiB':>8}  verdict"]
    for name, d in report["devices"].items():
        lat = d["latency_ms"]
        verdicts = [judged[(name, b)] for b in d["budgets"] if (name, b) in judged]
        failed = [b for b in d["budgets"] if judged.get((name, b)) is False]
        passed = False if failed else (None if not verdicts or None in verdicts else True)
        verdict = {True: "PASS", False: "FAIL " + ", ".join(failed), None: "CANNOT JUDGE"}[passed]
        lines.append(
            f"{name:<20} {lat['p50']:>9.4g} {lat['p90']:>9.4g} {lat['p99']:>9.4g} {d['latency_kind']:<10} {d['threads']:>7} "
            f"{fmt(d['peak_memory_mb'], 1):>8} {d['size_bytes'] / 1024:>8.1f} {d['size_gzip_bytes'] / 1024:>8.1f}  {verdict}"
        )
    return "\n".join(lines)


def verdict_line(result: GateResult, gating: bool) -> str:
    """The last line of `compress run`: what the gate says, by device, and (when the run does not gate)
    that a failing device does not fail this command."""
    devices = list(dict.fromkeys(r.device for r in result.rows))
    failing = {d: [r.budget for r in result.rows if r.device == d and r.passed is False] for d in devices}
    failing = {d: budgets for d, budgets in failing.items() if budgets}
    word = {True: "PASS", False: "FAIL", None: "CANNOT JUDGE"}[result.passed]
    detail = "; ".join(f"{d} breaks {', '.join(b)}" for d, b in failing.items()) if failing else f"{len(devices)} device(s) judged"
    if result.problems and not failing:
        detail = "; ".join(result.problems)
    tail = "" if gating or result.passed else " (this command still exits 0: `compress run --gate` or `compress gate` fails CI on it)"
    return f"gate: {word}: {detail}{tail}"


def profiles_table(profiles: list) -> str:
    """`compress devices list`: one row per profile, columns as wide as their widest cell."""
    rows = [("name", "cpu", "threads", "int8 dot", "RAM MB", "latency", "runtimes", "description")]
    for p in profiles:
        rows.append((p.name, p.cpu, f"{p.threads} of {p.cores} cores", "yes" if p.int8_dot_product else "no", str(p.memory_mb),
                     f"x{p.latency_factor:g} {p.latency_factor_source}", ", ".join(p.runtimes), p.description))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in rows)
