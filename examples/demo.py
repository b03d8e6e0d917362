"""The resultkit demo: a small sensor-regression pipeline that runs once, then comes from the cache.

Run it with ``make demo`` (or ``python examples/demo.py``). It needs no configuration and
keeps everything it makes under ``.resultkit-demo/`` in the working directory, which it
deletes first so every run starts cold.

1. A flow of four tasks (load and clean, features, train, evaluate) over synthetic data,
   each a second or so of real numpy/pandas work, runs twice: the second run is all
   cache hits read back from disk.
2. A ``transaction()`` writes a report file, then a validation task fails: the rollback
   hook deletes the file and no record is written.
3. ``resultkit ls`` and ``resultkit stats`` show the store the demo made.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

# resultkit reads RESULTKIT_HOME when it first needs storage; set it before anything runs so
# the demo's records, locks and files all live in one folder it can delete.
DEMO_HOME = Path.cwd() / ".resultkit-demo"
os.environ["RESULTKIT_HOME"] = str(DEMO_HOME)
# On a small, shared machine a multithreaded BLAS spends more time spinning than computing
# on matrices this size; one thread keeps the timings honest and steady.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from resultkit import flow, task, transaction  # noqa: E402
from resultkit.cache_policies import INPUTS, TASK_SOURCE  # noqa: E402
from resultkit.cli import main as resultkit_cli  # noqa: E402
from resultkit.storage import LocalStorage  # noqa: E402

# DEMO_ROWS shrinks the data (the test suite runs the demo on less); the story is the same.
ROWS = int(os.environ.get("DEMO_ROWS", "100000"))
SENSORS = 12
REPORT = DEMO_HOME / "exports" / "report.txt"

# INPUTS + TASK_SOURCE: the same arguments and the same code give a hit in any later run.
# (The default policy also includes the flow run's id, so a new run would recompute.)
# cache_result_in_memory=False makes the second run read every record back from disk,
# exactly as a fresh process would.
CACHED: dict[str, Any] = {"cache_policy": INPUTS + TASK_SOURCE, "cache_result_in_memory": False}


@task(**CACHED)
def load_and_clean(rows: int, seed: int) -> pd.DataFrame:
    """Synthetic sensor readings with gaps and spikes, interpolated and despiked."""
    rng = np.random.default_rng(seed)
    drift = rng.standard_normal((rows, SENSORS)).cumsum(axis=0) / 50
    spikes = (rng.random((rows, SENSORS)) < 0.002) * rng.normal(0, 40, (rows, SENSORS))
    readings = drift + 0.3 * rng.standard_normal((rows, SENSORS)) + spikes
    weights = rng.normal(size=SENSORS)
    raw = pd.DataFrame(readings, columns=[f"s{i:02d}" for i in range(SENSORS)])
    raw = raw.mask(rng.random(raw.shape) < 0.01)  # 1% of readings missing
    raw["target"] = np.sin(drift) @ weights + (drift**2) @ weights / SENSORS
    raw["target"] += rng.normal(0, 0.1, rows)

    clean = raw.interpolate(limit_direction="both")
    sensors = clean.columns[:SENSORS]
    median = clean[sensors].rolling(41, center=True, min_periods=1).median()
    deviation = (clean[sensors] - median).abs()
    spread = deviation.rolling(41, center=True, min_periods=1).median()
    clean[sensors] = clean[sensors].mask(deviation > 6 * spread + 1e-9, median)
    return clean


@task(**CACHED)
def engineer_features(clean: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Nonlinear and rolling-window features (float32) and the target."""
    readings = clean.iloc[:, :SENSORS]
    columns = [readings, np.sin(readings), np.cos(readings), readings**2]
    for window in (25, 100, 400):
        rolling = readings.rolling(window, min_periods=1)
        columns += [rolling.mean(), rolling.std().fillna(0.0)]
    features = np.hstack([np.asarray(c, dtype=np.float32) for c in columns])
    return features, clean["target"].to_numpy()


def _ridge(gram: np.ndarray, moment: np.ndarray, alpha: float) -> np.ndarray:
    return np.linalg.solve(gram + alpha * np.eye(len(gram)), moment)


@task(**CACHED)
def train(features: np.ndarray, target: np.ndarray, seed: int) -> dict[str, Any]:
    """Bagged ridge regression by least squares, its penalty picked on a holdout."""
    rng = np.random.default_rng(seed)
    design = np.hstack([features, np.ones((len(features), 1), np.float32)]).astype(np.float64)
    holdout = rng.random(len(design)) < 0.2
    fit, check = design[~holdout], design[holdout]
    gram, moment = fit.T @ fit, fit.T @ target[~holdout]
    errors = {a: np.mean((check @ _ridge(gram, moment, a) - target[holdout]) ** 2)
              for a in (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)}
    alpha = min(errors, key=errors.__getitem__)
    bags = []
    for _ in range(3):
        rows = rng.integers(0, len(design), len(design))
        sample = design[rows]
        bags.append(_ridge(sample.T @ sample, sample.T @ target[rows], alpha))
    return {"alpha": alpha, "weights": np.mean(bags, axis=0)}


@task(**CACHED)
def evaluate(model: dict[str, Any], features: np.ndarray, target: np.ndarray) -> dict[str, Any]:
    """5-fold cross-validated R² and each sensor's permutation importance."""
    design = np.hstack([features, np.ones((len(features), 1), np.float32)]).astype(np.float64)
    rng = np.random.default_rng(0)
    folds = np.array_split(rng.permutation(len(design)), 5)
    gram, moment = design.T @ design, design.T @ target
    scores = []
    for fold in folds:
        # Training on everything but the fold: subtract the fold's share, no copy of the rest.
        held, held_target = design[fold], target[fold]
        weights = _ridge(gram - held.T @ held, moment - held.T @ held_target, model["alpha"])
        scores.append(_r_squared(held_target, held @ weights))
    predicted = design @ model["weights"]
    baseline = _r_squared(target, predicted)
    importance = {}
    shuffled_rows = rng.permutation(len(design))
    for sensor in range(SENSORS):
        own = list(range(sensor, features.shape[1], SENSORS))  # every feature made from it
        columns, part = design[:, own], model["weights"][own]
        permuted = predicted - columns @ part + columns[shuffled_rows] @ part
        importance[f"s{sensor:02d}"] = baseline - _r_squared(target, permuted)
    return {"r2": baseline, "cv_r2": scores, "importance": importance}


def _r_squared(actual: np.ndarray, predicted: np.ndarray) -> float:
    return float(1 - np.sum((actual - predicted) ** 2) / np.sum((actual - actual.mean()) ** 2))


@flow
def pipeline(rows: int, seed: int) -> tuple[dict[str, tuple[str, float]], dict[str, Any]]:
    """Run the four tasks; return each task's state name and seconds, and the metrics."""
    steps: dict[str, tuple[str, float]] = {}

    def timed(step: Any, *args: Any) -> Any:
        start = time.perf_counter()
        state = step(*args, return_state=True)
        steps[step.name] = (state.name, time.perf_counter() - start)
        return state.result()

    clean = timed(load_and_clean, rows, seed)
    features, target = timed(engineer_features, clean)
    model = timed(train, features, target, seed)
    metrics = timed(evaluate, model, features, target)
    return steps, metrics


@task(cache_policy=INPUTS)
def export_report(metrics: dict[str, Any]) -> str:
    """A side effect: write a report file for others to pick up."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    top = sorted(metrics["importance"].items(), key=lambda item: -item[1])[:3]
    REPORT.write_text(f"R² {metrics['r2']:.4f}; top sensors {top}\n")
    return str(REPORT)


@export_report.on_rollback
def delete_report(txn: Any) -> None:
    """Undo the side effect when the transaction rolls back."""
    REPORT.unlink(missing_ok=True)


@task
def validate(metrics: dict[str, Any], min_r2: float) -> None:
    """Refuse to release a model below the bar."""
    if metrics["r2"] < min_r2:
        raise ValueError(f"R² {metrics['r2']:.4f} is below the release bar of {min_r2}")


def show_pipeline_runs() -> dict[str, Any]:
    print(f"1. A flow of four tasks over {ROWS:,} rows x {SENSORS} sensors, run twice")
    runs = []
    for _ in range(2):
        start = time.perf_counter()
        steps, metrics = pipeline(ROWS, seed=7)
        runs.append((steps, time.perf_counter() - start))
    (first, first_total), (second, second_total) = runs
    print(f"   {'task':<20} {'run 1':<20}   run 2")
    for name, (state, seconds) in first.items():
        again, again_seconds = second[name]
        print(f"   {name:<20} {state:<10}{seconds:>8.2f} s   {again:<10}{again_seconds:>6.2f} s")
    print(f"   {'flow total':<20} {'':<10}{first_total:>8.2f} s   {'':<10}{second_total:>6.2f} s"
          f"   ({first_total / second_total:.0f}x faster)")
    hits = sum(state == "Cached" for state, _ in second.values())
    print(f"   run 2: {hits} of {len(second)} tasks were cache hits (read from disk)")
    cv = np.array(metrics["cv_r2"])
    top = max(metrics["importance"], key=metrics["importance"].__getitem__)
    print(f"   model: R² {metrics['r2']:.4f}, 5-fold CV R² {cv.mean():.4f} ± {cv.std():.4f}, "
          f"most important sensor {top}")
    return metrics


def show_rollback(metrics: dict[str, Any]) -> None:
    print("\n2. A transaction rolls back a side effect")
    storage = LocalStorage(DEMO_HOME / "storage")  # the default storage, under RESULTKIT_HOME
    before = len(list(storage.list()))
    try:
        with transaction():
            state = export_report(metrics, return_state=True)
            where = REPORT.relative_to(Path.cwd())
            print(f"   export_report wrote {where} (exists: {REPORT.exists()})")
            validate(metrics, min_r2=0.999)
    except ValueError as exc:
        print(f"   validate failed: {exc}")
    after = len(list(storage.list()))
    print(f"   after the rollback: {where} exists: {REPORT.exists()}")
    print(f"   export_report's state: {state.name}; its record exists: "
          f"{storage.exists(state.cache_key or '')}; records in the store: {before} -> {after}")


def show_store() -> None:
    print("\n3. The store the demo made (the default storage: no arguments needed)")
    for command in (["ls"], ["stats"]):
        print(f"$ resultkit {' '.join(command)}")
        sys.stdout.flush()
        code = resultkit_cli(command)
        if code != 0:
            raise SystemExit(f"resultkit {command[0]} failed with exit code {code}")


def main() -> None:
    """Run the demo from a clean ``.resultkit-demo/``."""
    started = time.perf_counter()
    shutil.rmtree(DEMO_HOME, ignore_errors=True)
    print(f"resultkit demo: everything it makes lives in {DEMO_HOME}\n")
    metrics = show_pipeline_runs()
    show_rollback(metrics)
    show_store()
    print(f"\ndemo finished in {time.perf_counter() - started:.1f} s; "
          f"remove {DEMO_HOME.name}/ when done")


if __name__ == "__main__":
    main()
