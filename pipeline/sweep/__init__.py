"""`vava sweep`: many training runs (objectives, ablations) on one extracted feature set.

- `plan`: the plan file (runs and tables) and the names of the sweep's folder OUT;
- `run`: building every run of a plan, in OUT or once per seed S in OUT/seed-S (every trained run's
  config has seed S; identity runs, deterministic, are built in each folder too);
- `freshness`: whether a run folder holds the finished run of the current settings (reused), can
  train on (only its steps or evaluation options changed), or is moved to OUT/stale/;
- `results`: OUT/results.md (every number as mean ± sd over the seeds, both plateau tests) and
  OUT/loss_curves.png (each trained run's loss over its first logged value, mean over seeds), made from
  run records;
- `record`: a finished run's record, RUN/sweep_record.json: every number the tables read of it;
- `gather`: `vava gather`, the tables of records found under several folders (other machines, sittings).
"""
from vava.pipeline.sweep.freshness import EVAL_KEYS, recorded_seconds, run_steps, sweep_key
from vava.pipeline.sweep.gather import gather_records
from vava.pipeline.sweep.plan import (
    LOSS_CURVES_NAME,
    RESULTS_NAME,
    SEED_FOLDER,
    SweepPlan,
    SweepRun,
    load_plan,
    parse_seeds,
)
from vava.pipeline.sweep.record import RECORD_NAME, RunRecord, load_record, write_record
from vava.pipeline.sweep.results import (
    midpoint_score,
    midpoint_step,
    records_markdown,
    run_convergence,
    write_loss_curves,
)
from vava.pipeline.sweep.run import RunOptions, run_config, run_sweep

__all__ = ["EVAL_KEYS", "LOSS_CURVES_NAME", "RECORD_NAME", "RESULTS_NAME", "SEED_FOLDER", "RunOptions", "RunRecord",
           "SweepPlan", "SweepRun", "gather_records", "load_plan", "load_record", "midpoint_score", "midpoint_step",
           "parse_seeds", "recorded_seconds", "records_markdown", "run_config", "run_convergence", "run_steps",
           "run_sweep", "sweep_key", "write_loss_curves", "write_record"]
