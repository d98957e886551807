"""`compress tune`: find the recipe instead of writing it.

A tune spec is a recipe plus a `tune:` section: a search space over the recipe's own fields, a
budget of trials and/or time, and a seed. Each trial is an ordinary run folder; trials that share
their first stages reuse them through a store addressed by stage fingerprint; the study lives in an
Optuna storage (a SQLite file in the tune folder by default), so a killed tune resumes. Every choice
reads validation figures: a trial's score is the recipe metric on the validation split of the file
each device would ship, subject to each device's budgets on validation.

`spec.py` reads and checks the spec and turns a trial's values into a recipe; `search.py` builds the
sampler, the pruner and the objective; `trial.py` runs one trial as a run folder seeded from
`stage_store.py`; `study.py` opens and runs the study; `study_summary.py` prints a line per trial and
sums the study up, with `picks.py` choosing each device's trial and its Pareto front; `tune_report.py`
writes tune.md and tune.html; `cleaning.py` is `compress tune-clean`.
"""
