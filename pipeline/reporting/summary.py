"""The terminal's view of a report: a table of stages and one of devices, printed by `compress run`,
`compress validate` and `compress bench` after their work, and the one verdict line printed last."""

from __future__ import annotations

from pipeline.deploy.gate import GateResult


def summary_table(report: dict) -> str:
    lines = [f"{'stage':<16} {'status':<8} {'seconds':>8} {'accuracy':>9} {'params':>9} {'MACs':>10} {'size KiB':>9}"]
    for s in report["stages"]:
        m = s["metrics"]
        lines.append(
            f"{s['folder']:<16} {s['status']:<8} {fmt(s['seconds'], 1):>8} {fmt(m.get('accuracy'), 4):>9} "
            f"{fmt(m.get('params'), 0):>9} {fmt(m.get('macs'), 0):>10} {fmt(None if m.get('size_bytes') is None else m['size_bytes'] / 1024, 1):>9}"
        )
    if report["devices"]:
        lines.append("")
        w = max(10, *(len(d["artifact"]) for d in report["devices"].values()))
        lines.append(f"{'device':<20} {'artifact':<{w}} {'accuracy':>9} {'p90 ms':>9} {'latency':<10} {'size KiB':>9}  verdict")
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
