"""`compress tune` against the plain Optuna script a user would otherwise write, on one space.

    python benchmarks/tune_study.py [--trials 50] [--plain-trials N] [--data embedded|fashion-mnist]
                                    [--space shared|unshared] [--out runs/bench-tune] [--resume]

The space: how much to prune, how long to recover and at what learning rate, and the INT8 route, on
a tiny_cnn trained for 3 epochs on the embedded data (Fashion-MNIST's 6,000-image subset in the
package) or, with `--data fashion-mnist`, on the full Fashion-MNIST (Debian's IDX files: 54 k
training images after the 6 k validation hold-out, 10 k test), for a Raspberry Pi 4 and an Intel
N100 in one study. `--space unshared` searches the training learning rate too, so every trial trains
its own base and the tune has no stage to share (as in a space over widths or training schedules):
what is left between the two is the per-trial process and the tune's bookkeeping. Both sides run the same TPE sampler with the same seed and no pruner, so they
draw the same trials: the difference is the pipeline's stage store (the trained base is made once)
and its per-trial process. The plain script is written as a competent user would: an Optuna
objective that writes the recipe, runs `compress run` on it in a fresh process and reads the
validation figures of the file each device would ship, with the same constraints.

Reported: the seconds each side's first N trials took, from its study's timestamps (`--plain-trials
N` runs a shorter plain study and compares it with the tune's first N trials on equal terms;
`--resume` reads a finished tune in --out back instead of running it again); each process's wall
and peak RSS (GNU time); the tune's stage reuse and the seconds it saved; the tune worker's resident
memory after trials 1, 10, 25 and 50 (it must not grow with the trials); the store's disk; and what
each device got on validation (and, after, on test), among the same first N trials and among all.
One run each, alone on the machine: a whole study cannot be interleaved with another.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

RECIPE = {
    "name": "bench-tune",
    "seed": 0,
    "data": {"source": "embedded"},
    "model": {"name": "tiny_cnn"},
    "stages": [
        {"train": {"epochs": 3, "lr": 0.01}},
        {"prune": {"target": {"keep_macs": 0.6}, "steps": 2, "finetune": {"epochs": 1}}},
        {"export": {}},
        {"quantize": {}},
        {"validate": {"runs": 100}},
    ],
    "devices": ["raspberry-pi-4", "intel-n100"],
}
SPACE = {
    "prune.target.keep_macs": {"float": [0.3, 0.9]},
    "prune.finetune.epochs": {"int": [1, 3]},
    "prune.finetune.lr": {"float": [0.001, 0.03], "log": True},
    "quantize.method": {"choice": ["static", "accuracy_aware"]},
}
SPACES = {"shared": SPACE, "unshared": {"train.lr": {"float": [0.002, 0.05], "log": True}, **SPACE}}


def timed(command: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, peak RSS MB, the finished process) of a command under GNU time."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *command], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds, int(done.stderr.strip().splitlines()[-1]) / 1024, done


def run_tune(out: Path, trials: int, recipe: dict, space: dict = SPACE, resume: bool = False, **tune) -> dict:
    """One `compress tune` study in its own process: TPE seed 0, no pruner unless `tune` names one.
    With `resume`, a finished study in `out` is read back (compress tune resumes it and runs nothing);
    its timing then comes from the study's own timestamps, its peak RSS is not measured again."""
    if not resume:
        shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    spec = out / "spec.yaml"
    section = {"trials": trials, "seed": 0, "pruner": "none", "space": space, **tune}
    spec.write_text(yaml.safe_dump({**recipe, "tune": section}, sort_keys=False))
    resumed = resume and (out / "tune" / "tune.json").exists()
    seconds, rss, _ = timed([sys.executable, "-m", "pipeline", "tune", str(spec), "--out", str(out / "tune"), "--quiet"])
    summary = json.loads((out / "tune" / "tune.json").read_text())
    return {"seconds": None if resumed else seconds, "peak_rss_mb": None if resumed else rss, "summary": summary, "study": out / "tune" / "study.db", "name": recipe["name"]}


def study_span(trials) -> float:
    """Seconds from the first trial's start to the last one's end: what the trials took, whatever
    ran before or after them in the process (its start, a resumed study's read-back)."""
    ended = [t.datetime_complete for t in trials if t.datetime_complete]
    return (max(ended) - min(t.datetime_start for t in trials)).total_seconds()


def tune_trials(tuned: dict) -> list:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=tuned["name"], storage=f"sqlite:///{tuned['study']}")
    return sorted(study.trials, key=lambda t: t.number)


def tune_picks_within(trials: list, devices: list[str]) -> dict:
    """Each device's pick among these trials by the tune's own rule (validation only), with the test
    figure of the pick read after."""
    import optuna

    from pipeline.tune.picks import pick
    from pipeline.tune.study_summary import row

    done = {t.number: t for t in trials if t.state == optuna.trial.TrialState.COMPLETE}
    rows = [row(t) for t in done.values()]
    picks = {}
    for device in devices:
        best = pick(rows, device)
        picks[device] = {"trial": best["trial"], "val": best["devices"][device]["val_accuracy"],
                         "test": done[best["trial"]].user_attrs["test"][device]["accuracy"]}
    return picks


PLAIN = '''
import json, subprocess, sys, copy, yaml, optuna
recipe, space, trials, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
optuna.logging.set_verbosity(optuna.logging.WARNING)

def set_path(raw, path, value):
    first, *rest = path.split(".")
    node = next(e[first] for e in raw["stages"] if isinstance(e, dict) and first in e)
    for key in rest[:-1]:
        node = node.setdefault(key, {})
    node[rest[-1]] = value

def objective(trial):
    raw = copy.deepcopy(recipe)
    for path, p in space.items():
        if "choice" in p:
            value = json.loads(trial.suggest_categorical(path, [json.dumps(c) for c in p["choice"]]))
        elif "int" in p:
            value = trial.suggest_int(path, *p["int"], log=p.get("log", False))
        else:
            value = trial.suggest_float(path, *p["float"], log=p.get("log", False))
        set_path(raw, path, value)
    folder = f"{out}/trial-{trial.number:04d}"
    with open(folder + ".yaml", "w") as f:
        yaml.safe_dump(raw, f)
    subprocess.run([sys.executable, "-m", "pipeline", "run", folder + ".yaml", "--out", folder, "--quiet"], check=True, capture_output=True)
    devices = json.load(open(folder + "/report.json"))["devices"]
    broken = [sum(r["passed"] is False for r in d["budgets_on_validation"].values()) for d in devices.values()]
    trial.set_user_attr("constraints", [float(b) for b in broken])
    trial.set_user_attr("val", {n: d["val_accuracy"] for n, d in devices.items()})
    trial.set_user_attr("test", {n: d["accuracy"] for n, d in devices.items()})
    return min(d["val_accuracy"] for d in devices.values())

sampler = optuna.samplers.TPESampler(seed=0, constraints_func=lambda t: t.user_attrs.get("constraints", [1.0]))
study = optuna.create_study(direction="maximize", sampler=sampler)
study.optimize(objective, n_trials=trials, catch=(subprocess.CalledProcessError,))  # a run that fails (INT8 parity) is a failed trial
span = (max(t.datetime_complete for t in study.trials) - study.trials[0].datetime_start).total_seconds()
done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
picks = {}
for device in done[0].user_attrs["val"]:
    ok = [t for t in done if t.user_attrs["constraints"][list(t.user_attrs["val"]).index(device)] == 0] or done
    best = max(ok, key=lambda t: (t.user_attrs["val"][device], -t.number))
    picks[device] = {"trial": best.number, "val": best.user_attrs["val"][device], "test": best.user_attrs["test"][device]}
print(json.dumps({"picks": picks, "values": [t.value for t in study.trials], "failed": len(study.trials) - len(done), "span": span}))
'''


def run_plain(out: Path, trials: int, recipe: dict, space: dict = SPACE) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    seconds, rss, done = timed([sys.executable, "-c", PLAIN, json.dumps(recipe), json.dumps(space), str(trials), str(out)])
    return {"seconds": seconds, "peak_rss_mb": rss, **json.loads(done.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--plain-trials", type=int, default=None,
                        help="trials of the plain script (default: --trials); the two are timed over that many first trials each")
    parser.add_argument("--data", choices=["embedded", "fashion-mnist"], default="embedded",
                        help="the data source of every trial (fashion-mnist: the full set from its IDX files)")
    parser.add_argument("--space", choices=sorted(SPACES), default="shared",
                        help="unshared: the training learning rate is searched too, so no trial can reuse another's trained base")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-tune")
    parser.add_argument("--resume", action="store_true", help="read back a finished tune study in --out instead of running it again")
    args = parser.parse_args()
    n = args.plain_trials or args.trials
    recipe = {**RECIPE, "data": {"source": args.data}}
    space = SPACES[args.space]
    tuned = run_tune(args.out / "pipeline", args.trials, recipe, space, resume=args.resume)
    plain = run_plain(args.out / "plain", n, recipe, space)
    s = tuned["summary"]
    trials = tune_trials(tuned)
    first = [t for t in trials if t.number < n]
    tune_first, tune_all = study_span(first), study_span(trials)
    reuse = s["stage_reuse"]
    rss = {r["trial"]: r["worker_rss_mb"] for r in s["rows"]}
    peak = "–" if tuned["peak_rss_mb"] is None else f"{tuned['peak_rss_mb']:.0f}"
    wall = "–" if tuned["seconds"] is None else f"{tuned['seconds']:.0f}"
    print(f"| who | trials | seconds for the first {n} trials (ratio to plain) | seconds for all its trials | process wall s | peak RSS MB | "
          "stages reused | seconds saved | store MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| compress tune | {s['trials']['all']} | {tune_first:.0f} ({tune_first / plain['span']:.2f}x) | {tune_all:.0f} | {wall} | {peak} | "
          f"{reuse['reused']}/{reuse['stages']} ({reuse['rate']:.0%}) | {reuse['seconds_saved']:.0f} | {reuse['store_bytes'] / 2**20:.1f} |")
    print(f"| plain Optuna script | {len(plain['values'])} | {plain['span']:.0f} (1.00x) | {plain['span']:.0f} | {plain['seconds']:.0f} | "
          f"{plain['peak_rss_mb']:.0f} | 0 | 0 | – |")
    print()
    print("tune worker RSS MB after trial: " + ", ".join(f"{k + 1}: {rss.get(k)}" for k in (0, 9, 24, 49) if k in rss))
    print()
    print("| device | who | trials searched | trial picked | val | test (read after the choice) |")
    print("|---|---|---|---|---|---|")
    within = tune_picks_within(first, list(s["devices"]))
    for device, pick in s["devices"].items():
        if n < args.trials:
            w = within[device]
            print(f"| {device} | compress tune | first {n} | {w['trial']} | {w['val']:.4f} | {w['test']:.4f} |")
        print(f"| {device} | compress tune | {s['trials']['all']} | {pick['trial']} | {pick['val_accuracy']:.4f} | {pick['test_accuracy']:.4f} |")
        p = plain["picks"][device]
        print(f"| {device} | plain script | {n} | {p['trial']} | {p['val']:.4f} | {p['test']:.4f} |")
    tune_values = {r["trial"]: r["score"] for r in s["rows"]}
    same = sum(1 for k, v in enumerate(plain["values"]) if v is not None and tune_values.get(k) is not None and abs(v - tune_values[k]) < 1e-9)
    failed_tune = sum(1 for t in first if t.state.name == "FAIL")
    print(f"\nfailed trials among the first {n} (INT8 parity refused): compress tune {failed_tune}, plain {plain['failed']}; "
          f"trials with the same validation score on both sides: {same} of {n} (a trial scores differently where validate shipped it another file)")


if __name__ == "__main__":
    main()
