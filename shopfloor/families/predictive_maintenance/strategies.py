"""Model strategies of a fleet: one global model, a model per site, or the global model fine-tuned per site.

The train step always fits the global model (the model folder's root: it answers at the fleet's endpoint and for
a site too small for a model of its own). With ``fleet.strategy: per-site`` or ``global-then-site`` (or
``fleet.compare``) it also fits, for every site of the windows, a complete model folder of its own at
``strategies/<strategy>/<site>/`` (``model.keras``, ``classical/``, ``shopfloor_model.json``; no SavedModel or
TFLite export), each trained like the global one on that site's windows only:

- ``per-site``: the network and its LightGBM challenger fitted on the site's training windows, the better on the
  site's validation windows answers (champion/challenger per site);
- ``global-then-site``: a copy of the global network trained further on the site's training windows at a lower
  learning rate (``fleet.fine_tune_learning_rate`` x the model's) for at most ``fleet.fine_tune_epochs``, stopping
  early on the site's validation PR-AUC; the global LightGBM model continues boosting on the site's windows the
  same way; again the better of the two on the site's validation windows answers.

Each site model's alarm threshold is chosen on the site's validation windows with the site's operating point.
A site whose training or validation windows lack failures (or non-failures) gets no model of its own: the global
model answers for it, and ``shopfloor_model.json``'s ``fleet.fallback`` says why. ``load_fleet_model`` reads it all
back as a ``FleetModel``, which routes windows to their site's model; evaluation scores the configured strategy
(and every compared one) on each site's held-out windows.

A retrain the monitor starts for the sites that drifted or degraded (``fleet.retrain_only``) fits the global model
and those sites' models again and keeps every other site's model byte for byte from the published version
(``fleet.keep_models_from``; ``kept_from`` in its fleet record): a plant that did not change keeps the model its
operators know.
"""

from __future__ import annotations

import dataclasses
import html
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shopfloor.common.progress import report_progress
from shopfloor.contracts.model_artifact import (
    MODEL_FILE,
    MODEL_INFO,
    STRATEGIES_DIR,
    load_model_info,
    resolve_model_dir,
)
from shopfloor.families.classical import ENGINE_LIGHTGBM, ENGINE_NETWORK, choose_on_validation, load_engine
from shopfloor.families.predictive_maintenance.config import FleetConfig, GateConfig, ModelConfig

if TYPE_CHECKING:
    from shopfloor.contracts.model_artifact import TrainResult
    from shopfloor.contracts.windows import LabelledWindows
    from shopfloor.families.classical import EngineChoice
    from shopfloor.families.predictive_maintenance.evaluation import Evaluation

__all__ = [
    "GLOBAL",
    "STRATEGIES",
    "STRATEGY_DIR",
    "STRATEGY_PREFIX",
    "FleetModel",
    "KeptSiteModel",
    "SiteModel",
    "best_by_site",
    "check_retrain_sites",
    "fine_tune_network",
    "fleet_config",
    "fleet_record",
    "keep_site_model",
    "load_fleet_model",
    "site_model_folder",
    "site_windows",
    "sites_retrain",
    "strategies_to_train",
    "strategy_metrics",
    "strategy_report_html",
    "strategy_summary_markdown",
    "train_site_models",
]

GLOBAL, PER_SITE, GLOBAL_THEN_SITE = "global", "per-site", "global-then-site"
STRATEGIES = (GLOBAL, PER_SITE, GLOBAL_THEN_SITE)
STRATEGY_DIR = STRATEGIES_DIR
STRATEGY_PREFIX = "strategy/"
"""Strategy x site test metrics are ``strategy/<strategy>/<site>/<metric>`` in the evaluation's metrics."""
_COMPARED = ("roc_auc", "pr_auc", "f1", "rul_mae_hours")


def fleet_config(data_schema: dict) -> FleetConfig:
    """The ``fleet`` section as it travels in ``data_schema`` (defaults when absent: the global strategy)."""
    from shopfloor.common.config import validated

    return validated(FleetConfig, data_schema.get("fleet") or {}, "pipeline parameter data_schema.fleet")


def strategies_to_train(fleet: FleetConfig) -> list[str]:
    """The site-level strategies to fit besides the global model: the configured one, or all when comparing."""
    if fleet.compare:
        return [PER_SITE, GLOBAL_THEN_SITE]
    return [] if fleet.strategy == GLOBAL else [fleet.strategy]


def site_model_folder(strategy: str, site: str) -> str:
    """Where a site's model of a strategy lives, relative to the model folder."""
    return f"{STRATEGY_DIR}/{strategy}/{site}"


def site_windows(windows: LabelledWindows, site: str) -> LabelledWindows:
    """The windows of one site (every split), with that site's RUL cap in ``info``."""
    keep = windows.sites == site
    info = dict(windows.info)
    labelled: dict = (info.get("sites") or {}).get(site) or {}
    if "rul_cap_hours" in labelled:  # the site's own cap (its overlay's labeling.rul_cap_hours)
        info["rul_cap_hours"] = float(labelled["rul_cap_hours"])
    return dataclasses.replace(windows.select(keep), info=info)


def _too_small(windows: LabelledWindows) -> str:
    """Why a site's windows cannot train and choose a model of their own ('' when they can)."""
    for part in ("train", "validation"):
        labels = windows.part(part).failure
        if np.unique(labels).size < 2:
            return f"its {part} windows hold {'no' if not labels.any() else 'only'} failures"
    return ""


def _network_logger(label: str, epochs: int) -> Any:
    """A Keras callback reporting each epoch of a site model's training as one progress line."""
    import keras

    return keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: report_progress(
            f"{label} epoch {epoch + 1}/{epochs}: loss {logs['loss']:.4f}, "
            f"val PR-AUC {logs.get('val_failure_pr_auc', float('nan')):.3f}"
        )
    )


def fine_tune_network(
    global_result: TrainResult, windows: LabelledWindows, fleet: FleetConfig, label: str
) -> TrainResult:
    """A copy of the global network trained further on one site's windows at a lower learning rate.

    The copy keeps the global model's architecture, standardization and compile settings (loss weights,
    optimizer kind, metrics); only the learning rate drops to ``fleet.fine_tune_learning_rate`` of the model's.
    Early stopping on the site's validation PR-AUC restores the best epoch, so a site the global model already
    suits keeps (nearly) the global weights.
    """
    import keras

    from shopfloor.contracts.model_artifact import TrainResult

    network = global_result.model
    hyperparameters = dict(global_result.info["hyperparameters"])
    keras.utils.set_random_seed(int(hyperparameters.get("seed", 7)))
    tuned = keras.models.clone_model(network)
    tuned.set_weights(network.get_weights())
    tuned.compile_from_config(network.get_compile_config())
    learning_rate = float(hyperparameters.get("learning_rate", 1e-3)) * fleet.fine_tune_learning_rate
    tuned.optimizer.learning_rate = learning_rate
    train, validation = windows.part("train"), windows.part("validation")
    fit = tuned.fit(
        train.x,
        {"failure": train.failure.astype("float32"), "rul": train.rul},
        validation_data=(validation.x, {"failure": validation.failure.astype("float32"), "rul": validation.rul}),
        epochs=fleet.fine_tune_epochs,
        batch_size=int(hyperparameters.get("batch_size", 256)),
        shuffle=True,
        verbose=0,
        callbacks=[
            keras.callbacks.EarlyStopping(
                monitor="val_failure_pr_auc", mode="max", patience=2, restore_best_weights=True
            ),
            _network_logger(label, fleet.fine_tune_epochs),
        ],
    )
    history = {key: [float(v) for v in values] for key, values in fit.history.items()}
    info = {
        **global_result.info,
        "epochs_run": len(history.get("loss", [])),
        "fine_tuned": {"from": GLOBAL, "learning_rate": learning_rate, "max_epochs": fleet.fine_tune_epochs},
    }
    return TrainResult(model=tuned, history=history, info=info)


@dataclasses.dataclass(frozen=True)
class SiteModel:
    """One site's model of one strategy: its engines, the choice between them and the description to write."""

    strategy: str
    site: str
    result: TrainResult
    engines: dict[str, Any]
    choice: EngineChoice

    def summary(self) -> dict:
        """What the fleet's model description records of it: engine, threshold, validation PR-AUC, epochs."""
        return {
            "engine": self.choice.chosen,
            "threshold": self.choice.thresholds[self.choice.chosen],
            "validation_pr_auc": round(float(self.choice.validation[self.choice.chosen]), 6),
            "epochs_run": int(self.result.info.get("epochs_run", 0)),
            "folder": site_model_folder(self.strategy, self.site),
        }

    def files(self) -> dict[str, bytes]:
        """The site model folder's files, relative to the fleet's model folder (Keras archive, challenger, info)."""
        from shopfloor.common.storage import write_json

        root = site_model_folder(self.strategy, self.site)
        info = {
            **self.result.info,
            "engine": self.choice.chosen,
            "threshold": self.choice.thresholds[self.choice.chosen],
            "site": self.site,
            "strategy": self.strategy,
        }
        if ENGINE_LIGHTGBM in self.engines:
            info["challenger"] = self.choice.record()
        challenger = self.engines.get(ENGINE_LIGHTGBM)
        files = {f"{root}/{name}": content for name, content in (challenger.files() if challenger else {}).items()}
        with tempfile.TemporaryDirectory(prefix="shopfloor-site-model-") as scratch:
            self.result.model.save(Path(scratch) / MODEL_FILE)
            write_json(Path(scratch) / MODEL_INFO, info)
            for name in (MODEL_FILE, MODEL_INFO):
                files[f"{root}/{name}"] = (Path(scratch) / name).read_bytes()
        return files


@dataclasses.dataclass(frozen=True)
class KeptSiteModel:
    """A site's model carried over unchanged from the published version: a retrain that named other sites."""

    strategy: str
    site: str
    record: dict  # its entry in the published version's fleet record (engine, threshold, folder, ...)
    source: str  # the published model folder it comes from
    folder_files: dict[str, bytes]  # its folder's files, relative to the fleet's model folder

    def summary(self) -> dict:
        """Its entry in the new fleet record: the published one, and where it was kept from."""
        return {**self.record, "kept_from": self.record.get("kept_from") or self.source}

    def files(self) -> dict[str, bytes]:
        """Its folder's files, byte for byte as published."""
        return self.folder_files


def keep_site_model(source: str, strategy: str, site: str) -> KeptSiteModel | None:
    """The published model folder's model of ``site`` under ``strategy``; ``None`` when it has none to keep."""
    from shopfloor.common.storage import join_uri, list_files, read_bytes, read_json

    record = read_json(join_uri(source, MODEL_INFO)).get("fleet") or {}
    summary = (record.get("models") or {}).get(strategy, {}).get(site)
    if not summary or "folder" not in summary:
        return None
    folder = join_uri(source, summary["folder"])
    prefix = folder.rstrip("/") + "/"
    found = list_files(folder)
    if not found:
        return None
    files = {f"{summary['folder']}/{uri[len(prefix) :]}": read_bytes(uri) for uri in found}
    return KeptSiteModel(strategy, site, dict(summary), source, files)


def sites_retrain(fleet: FleetConfig, sites: list[str], published_model_uri: str) -> FleetConfig | None:
    """The fleet section of a retrain of named sites (their site models refitted, the others kept).

    ``None`` when a retrain of some sites means retraining all: no sites named, or one global model (no site
    models to keep). Used by ``shopfloor run`` and by the cluster's retrain trigger alike.
    """
    if not sites or not strategies_to_train(fleet):
        return None
    return fleet.model_copy(update={"retrain_only": list(sites), "keep_models_from": published_model_uri})


def check_retrain_sites(fleet: FleetConfig, windows: LabelledWindows) -> None:
    """A retrain naming a site the windows do not hold is an error naming it (a typo would retrain nothing).

    Checked before anything is fitted.
    """
    from shopfloor.common.errors import DataValidationError

    sites = sorted({str(s) for s in windows.sites} - {""})
    unknown = sorted(set(fleet.retrain_only) - set(sites))
    if unknown:
        raise DataValidationError(
            "pipeline parameter data_schema.fleet",
            f"retrain_only names site '{unknown[0]}', which the labelled windows do not hold",
            field="fleet.retrain_only",
            expected=f"sites of the data: {', '.join(sites)}",
        )


def _choose(engines: dict[str, Any], windows: LabelledWindows, gate: GateConfig) -> EngineChoice:
    """The better engine on the site's validation windows, each with its threshold for the site's operating point."""
    from shopfloor.families.predictive_maintenance.evaluation import predict
    from shopfloor.families.shared import operating_threshold

    validation = windows.part("validation")
    scores = {engine: predict(model, validation.x)[0] for engine, model in engines.items()}
    point = (gate.operating_point, gate.decision_threshold, gate.target_recall, gate.miss_cost)
    return choose_on_validation(
        scores, validation.failure, lambda score: operating_threshold(validation.failure, score, *point)
    )


def train_site_models(
    windows: LabelledWindows,
    global_result: TrainResult,
    global_engines: dict[str, Any],
    config: ModelConfig,
    gates: dict[str, GateConfig],
    fleet: FleetConfig,
    fit_engines: Callable[[LabelledWindows, ModelConfig, GateConfig], Any],
) -> tuple[list[SiteModel | KeptSiteModel], dict[str, dict[str, str]]]:
    """Every site's model of every strategy to train, and the sites that got none (by strategy, site: why).

    With ``fleet.retrain_only`` (a retrain the monitor started for the sites that drifted or degraded), the other
    sites' models are kept byte for byte from ``fleet.keep_models_from`` where it has one (else trained).

    ``gates`` is each site's gate (the fleet's with the site's overlay): its operating point picks the site
    model's threshold. ``global_engines`` are the global model's engines, which fine-tuning starts from;
    ``fit_engines`` fits a per-site model as the global one was fitted (the family's ``train_engines``).
    """
    from shopfloor.families.classical import fit_boosted_windows

    trained: list[SiteModel | KeptSiteModel] = []
    fallback: dict[str, dict[str, str]] = {}
    check_retrain_sites(fleet, windows)
    sites = sorted({str(s) for s in windows.sites} - {""})
    for strategy in strategies_to_train(fleet):
        for site in sites:
            label = f"{strategy} {site}"
            if fleet.retrain_only and site not in fleet.retrain_only:
                kept = keep_site_model(fleet.keep_models_from, strategy, site)
                if kept is not None:
                    trained.append(kept)
                    report_progress(f"{label}: not named for retraining, its published model is kept")
                    continue
                report_progress(f"{label}: not named for retraining, but no published model to keep: trained")
            mine = site_windows(windows, site)
            why = _too_small(mine)
            if why:
                fallback.setdefault(strategy, {})[site] = f"{why}: the global model answers"
                report_progress(f"{label}: {why}; the global model answers there")
                continue
            started = time.perf_counter()
            report_progress(f"{label}: training on {int((mine.split == 0).sum()):,} windows")
            if strategy == PER_SITE:
                fitted = fit_engines(mine, config, gates[site])
                result, engines = fitted.result, fitted.engines
            else:
                result = fine_tune_network(global_result, mine, fleet, label)
                engines = {ENGINE_NETWORK: result.model}
                if ENGINE_LIGHTGBM in global_engines:  # the global trees boosted further on the site's windows
                    engines[ENGINE_LIGHTGBM] = fit_boosted_windows(
                        mine, config.seed, init=global_engines[ENGINE_LIGHTGBM]
                    )
            choice = _choose(engines, mine, gates[site])
            trained.append(SiteModel(strategy, site, result, engines, choice))
            report_progress(f"{label}: {choice.line()} ({time.perf_counter() - started:.1f} s)")
    return trained, fallback


def fleet_record(
    fleet: FleetConfig,
    sites: list[str],
    global_by_site: dict[str, dict],
    trained: list[SiteModel | KeptSiteModel],
    fallback: dict[str, dict[str, str]],
) -> dict:
    """``shopfloor_model.json``'s ``fleet``: the strategy that answers, and every site's model of every strategy.

    ``global_by_site`` is the global model's threshold per site (``threshold.by_site``).
    """
    models: dict[str, dict[str, dict]] = {
        GLOBAL: {site: {"threshold": global_by_site[site]} for site in sites if site in global_by_site}
    }
    for model in trained:
        models.setdefault(model.strategy, {})[model.site] = model.summary()
    return {
        "strategy": fleet.strategy,
        "sites": sites,
        "strategies": [GLOBAL, *strategies_to_train(fleet)],
        "models": models,
        "fallback": fallback,
    }


@dataclasses.dataclass(frozen=True)
class FleetModel:
    """A fleet's models as evaluation scores them: the global model and, per strategy, each site's model.

    Called like the global model (``predict(x)`` answers with it); ``routed(sites, strategy)`` answers each
    window with its site's model of that strategy (the global model where the site has none).
    """

    fleet: Any
    strategy: str
    models: dict[str, dict[str, Any]]  # strategy -> site -> scoring model (global: none, the fleet answers)
    thresholds: dict[str, dict[str, dict]]  # strategy -> site -> the threshold its model was chosen with

    def __call__(self, x: Any, training: bool = False) -> dict[str, np.ndarray]:
        """The global model's answer."""
        return self.fleet(x, training=training)

    def predict(self, x: Any, batch_size: int | None = None, verbose: int = 0) -> dict[str, np.ndarray]:
        """The global model's answer (Keras' ``predict`` signature)."""
        return self.fleet.predict(x, batch_size=batch_size or 2048, verbose=verbose)

    def routed(self, sites: np.ndarray, strategy: str | None = None) -> _Routed:
        """A model answering window ``i`` with site ``sites[i]``'s model of ``strategy`` (default: the configured)."""
        return _Routed(self, np.asarray(sites, dtype=str), strategy or self.strategy)

    def site_thresholds(self, strategy: str | None = None) -> dict[str, dict]:
        """Each site's threshold under ``strategy``: its own model's, or the global model's where it has none."""
        return {**self.thresholds.get(GLOBAL, {}), **self.thresholds.get(strategy or self.strategy, {})}


@dataclasses.dataclass(frozen=True)
class _Routed:
    """One strategy's answers for windows whose sites are known (``predict`` takes exactly those windows)."""

    fleet_model: FleetModel
    sites: np.ndarray
    strategy: str

    def predict(self, x: Any, batch_size: int | None = None, verbose: int = 0) -> dict[str, np.ndarray]:
        """Failure probability and RUL of every window from its site's model."""
        x = np.asarray(x)
        if len(x) != len(self.sites):
            raise ValueError(f"{len(x)} windows but {len(self.sites)} sites: route the windows the sites belong to")
        answer = {key: np.asarray(v).reshape(-1, 1).copy() for key, v in self.fleet_model.predict(x).items()}
        for site, model in self.fleet_model.models.get(self.strategy, {}).items():
            mine = self.sites == site
            if mine.any():
                theirs = model.predict(x[mine], batch_size=2048, verbose=0)
                for key in answer:
                    answer[key][mine] = np.asarray(theirs[key]).reshape(-1, 1)
        return answer


def load_fleet_model(model_dir: str | Path, fleet: Any) -> FleetModel | Any:
    """The model folder as evaluation scores it: a ``FleetModel`` when it holds site models, else ``fleet`` itself.

    ``fleet`` is the folder's scoring model (the global one, already loaded).
    """
    root = resolve_model_dir(model_dir)
    record = load_model_info(root).get("fleet") or {}
    if not record or len(record.get("strategies", [])) < 2:
        return fleet
    models: dict[str, dict[str, Any]] = {}
    thresholds: dict[str, dict[str, dict]] = {}
    for strategy, by_site in record["models"].items():
        for site, summary in by_site.items():
            thresholds.setdefault(strategy, {})[site] = summary["threshold"]
            if strategy != GLOBAL:
                models.setdefault(strategy, {})[site] = load_engine(root / summary["folder"], summary["engine"])
    return FleetModel(fleet, str(record["strategy"]), models, thresholds)


def strategy_metrics(fleet_model: FleetModel, test: LabelledWindows) -> dict[str, float]:
    """Every trained strategy's test metrics on each site's held-out windows, at that site model's threshold.

    ``strategy/<strategy>/<site>/<metric>`` for ROC-AUC, PR-AUC, F1 and RUL MAE (a site whose test windows hold
    one class only has no ROC-AUC, PR-AUC or F1).
    """
    from shopfloor.families.predictive_maintenance.evaluation import classification_metrics, regression_metrics

    found: dict[str, float] = {}
    sites = test.sites
    for strategy in (GLOBAL, *[s for s in STRATEGIES[1:] if s in fleet_model.thresholds]):
        thresholds = fleet_model.site_thresholds(strategy)
        failure, rul = (np.asarray(v).reshape(-1) for v in fleet_model.routed(sites, strategy).predict(test.x).values())
        for site in sorted(set(thresholds) & {str(s) for s in sites}):
            mine = sites == site
            values: dict[str, float] = {}
            if np.unique(test.failure[mine]).size == 2:
                values.update(
                    classification_metrics(test.failure[mine], failure[mine], float(thresholds[site]["value"]))
                )
            if (test.rul[mine] >= 0).any():
                values.update(regression_metrics(test.rul[mine], rul[mine]))
            found.update({f"{STRATEGY_PREFIX}{strategy}/{site}/{k}": values[k] for k in _COMPARED if k in values})
    return found


def _by_strategy(metrics: dict[str, float]) -> dict[str, dict[str, dict[str, float]]]:
    """The strategy x site metrics of an evaluation: strategy -> site -> metric -> value."""
    found: dict[str, dict[str, dict[str, float]]] = {}
    for key, value in metrics.items():
        if key.startswith(STRATEGY_PREFIX):
            strategy, site, metric = key[len(STRATEGY_PREFIX) :].split("/", 2)
            found.setdefault(strategy, {}).setdefault(site, {})[metric] = value
    return found


def best_by_site(metrics: dict[str, float], metric: str = "pr_auc") -> dict[str, str]:
    """The strategy with the best test ``metric`` at each site (ties go to the simpler: global, then per-site)."""
    table = _by_strategy(metrics)
    sites = sorted({site for by_site in table.values() for site in by_site})
    best = {}
    for site in sites:
        scored = [(s, table[s][site][metric]) for s in STRATEGIES if s in table and metric in table[s].get(site, {})]
        if scored:
            best[site] = max(scored, key=lambda pair: pair[1])[0]  # max keeps the first of equals
    return best


def strategy_report_html(evaluation: Evaluation, configured: str) -> str:
    """The report's "Strategies by site" section: each strategy's test metrics per site ("" when one was trained)."""
    table = _by_strategy(evaluation.metrics)
    if len(table) < 2:
        return ""
    sites = sorted({site for by_site in table.values() for site in by_site})
    best = best_by_site(evaluation.metrics)
    header = "".join(f"<th>{html.escape(c)}</th>" for c in ("site", "strategy", *_COMPARED))
    rows = []
    for site in sites:
        for strategy in (s for s in STRATEGIES if s in table):
            values = table[strategy].get(site, {})
            mark = " (ships)" if strategy == configured else ""
            mark += " best PR-AUC" if best.get(site) == strategy else ""
            cells = "".join(f"<td>{values[m]:.4g}</td>" if m in values else "<td>n/a</td>" for m in _COMPARED)
            rows.append(f"<tr><td>{html.escape(site)}</td><td>{html.escape(strategy + mark)}</td>{cells}</tr>")
    return (
        "<h2>Strategies by site</h2><p>Each strategy's model on each site's held-out assets, at that model's own "
        f"alarm threshold (chosen on the site's validation windows). The config's strategy ({html.escape(configured)})"
        " is what is gated, published and served.</p>"
        f"<table><tr>{header}</tr>{''.join(rows)}</table>"
    )


def strategy_summary_markdown(metrics: dict[str, float], configured: str) -> str:
    """The strategy x site PR-AUC as a Markdown table for the dashboard's summary ("" when one was trained)."""
    table = _by_strategy(metrics)
    if len(table) < 2:
        return ""
    strategies = [s for s in STRATEGIES if s in table]
    sites = sorted({site for by_site in table.values() for site in by_site})
    lines = [
        f"\n## Strategies by site (test PR-AUC; `{configured}` ships)\n",
        "| site | " + " | ".join(strategies) + " |",
        "| --- |" + " --- |" * len(strategies),
    ]
    for site in sites:
        cells = [f"{table[s][site]['pr_auc']:.3f}" if "pr_auc" in table[s].get(site, {}) else "n/a" for s in strategies]
        lines.append(f"| {site} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
