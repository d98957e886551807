"""What a figure means against a device's budget, written once for the board, the pipeline and `compress gate`.

The budget rules (which figure each budget reads, and in which direction), the three verdicts and
their words, the exit codes (0 pass, 1 a budget broken, 2 cannot judge) and the file formats a board
and the host exchange. Standard library only: each bundle ships it beside the script.
"""

from __future__ import annotations

BUNDLE_FORMAT = "edge-compress-bundle/1"
RESULTS_FORMAT = "edge-compress-device-results/1"
PASS, FAIL, CANNOT_JUDGE = 0, 1, 2
VERDICT = {True: "PASS", False: "FAIL", None: "CANNOT JUDGE"}  # overall()'s three answers, as every table and the script print them

# budget name -> (figure it reads, True when the value must stay at or below the limit)
RULES = {
    "max_size_kb": ("size_kb", True),
    "max_size_gzip_kb": ("size_gzip_kb", True),
    "max_latency_p90_ms": ("latency_p90_ms", True),
    "min_accuracy": ("accuracy", False),
    "max_accuracy_drop": ("accuracy_drop", True),
    "max_peak_memory_mb": ("peak_memory_mb", True),
    "min_map": ("accuracy", False),  # a detector's: the recipe's metric (COCO mAP) is its "accuracy" figure
    "max_map_drop": ("accuracy_drop", True),
}
DATA_FIGURES = ("accuracy", "accuracy_drop")  # figures only labelled data can give
SPEED_BUDGETS = tuple(name for name, (figure, _) in RULES.items() if figure not in DATA_FIGURES)  # what a file alone is judged on


def judge(budgets: dict, figures: dict) -> dict:
    """One row per budget: value, limit, passed (None when the figure was not measured)."""
    rows = {}
    for name, limit in budgets.items():
        if limit is None:
            continue
        figure, at_most = RULES[name]
        value = figures.get(figure)
        passed = None if value is None else (value <= limit if at_most else value >= limit)
        rows[name] = {"value": None if value is None else round(float(value), 6), "limit": limit, "passed": passed}
    return rows


def overall(rows: dict):
    """False if any budget fails, None if any cannot be judged (or there are none), else True."""
    verdicts = [r["passed"] for r in rows.values()]
    if any(v is False for v in verdicts):
        return False
    if not verdicts or any(v is None for v in verdicts):
        return None
    return True


def exit_code(passed) -> int:
    return {True: PASS, False: FAIL, None: CANNOT_JUDGE}[passed]
