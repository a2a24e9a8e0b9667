"""The predictive-maintenance family as the steps see it: failure-within-horizon + RUL on labelled windows."""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from shopfloor.common.config import HpoConfig, validated
from shopfloor.common.progress import report_progress
from shopfloor.common.storage import join_uri, read_bytes, sha256_hex
from shopfloor.contracts.model_artifact import TrainResult, write_model
from shopfloor.contracts.windows import LabelledWindows, load_windows
from shopfloor.families.base import (
    Explained,
    ExplainRequest,
    ModelFamily,
    ModelRecord,
    Rendered,
    SensorLabels,
    StepInputs,
    Trained,
)
from shopfloor.families.classical import ENGINE_LIGHTGBM, ENGINE_NETWORK, EngineChoice
from shopfloor.families.predictive_maintenance.config import GateConfig, LabelingConfig, ModelConfig
from shopfloor.families.registry import ModelKind
from shopfloor.families.shared import final_metrics, split_rates

if TYPE_CHECKING:
    import pandas as pd

    from shopfloor.families.predictive_maintenance.evaluation import Evaluation
    from shopfloor.families.search import SearchProblem

__all__ = [
    "PredictiveMaintenance",
    "TrainedEngines",
    "train_engines",
]


def operating_point(model_info: dict, gate: GateConfig) -> dict:
    """The alarm threshold training chose on validation (method, value, what it achieved there).

    A model trained before operating points existed has none: the gate's fixed threshold stands in.
    """
    return model_info.get("threshold") or {"method": "fixed", "value": gate.decision_threshold}


@dataclasses.dataclass(frozen=True)
class TrainedEngines:
    """Every engine fitted on one split, the choice between them, their validation scores and fitting seconds."""

    result: TrainResult
    engines: dict[str, Any]
    choice: EngineChoice
    validation_scores: dict[str, np.ndarray]
    seconds: dict[str, float]


def train_engines(
    windows: LabelledWindows, config: ModelConfig, gate: GateConfig, data_sha256: str = ""
) -> TrainedEngines:
    """Fit the network and its classical challenger on one split; choose the better on validation PR-AUC.

    Each engine gets its alarm threshold for the gate's operating point; ``gate.challenger: none`` fits the
    network alone.
    """
    from shopfloor.families.classical import choose_on_validation, fit_boosted_windows
    from shopfloor.families.predictive_maintenance.evaluation import predict
    from shopfloor.families.predictive_maintenance.model import train_model
    from shopfloor.families.shared import operating_threshold

    started = time.perf_counter()
    result = train_model(windows, config, data_sha256)
    seconds = {ENGINE_NETWORK: time.perf_counter() - started}
    engines: dict[str, Any] = {ENGINE_NETWORK: result.model}
    if gate.challenger != "none":
        started = time.perf_counter()
        engines[ENGINE_LIGHTGBM] = fit_boosted_windows(windows, config.seed)
        seconds[ENGINE_LIGHTGBM] = time.perf_counter() - started
    validation = windows.part("validation")
    scores = {engine: predict(model, validation.x)[0] for engine, model in engines.items()}
    point = (gate.operating_point, gate.decision_threshold, gate.target_recall, gate.miss_cost)
    choice = choose_on_validation(
        scores, validation.failure, lambda score: operating_threshold(validation.failure, score, *point)
    )
    return TrainedEngines(result, engines, choice, scores, seconds)


class PredictiveMaintenance(ModelFamily[LabelledWindows, "Evaluation"]):
    """A window model that predicts failure within a horizon and the remaining useful life, per asset."""

    key = ModelKind.PREDICTIVE_MAINTENANCE
    data_kind = "windows"
    score_output = "failure_probability"
    served_model = "shopfloor.serving.predictor:WindowModel"
    headline_metrics = ("roc_auc", "pr_auc", "f1", "rul_mae_hours")

    def alarm_threshold(self, model_info: dict, blessing: dict) -> float:
        """The gate's decision threshold, which the evaluation blessed the model at."""
        return float(blessing["gate"]["decision_threshold"])

    def label_sensors(
        self,
        sensors: pd.DataFrame,
        events: pd.DataFrame,
        features: list[str],
        failure_values: list[str],
        labeling: dict,
        sites: dict | None = None,
    ) -> SensorLabels:
        """Windows labelled "fails within the horizon" with the remaining useful life, split by asset."""
        from shopfloor.families.predictive_maintenance.fleet import site_labeling
        from shopfloor.families.predictive_maintenance.labelling import label_windows

        config = validated(LabelingConfig, labeling, "pipeline parameter labeling")
        by_site = site_labeling(labeling, sites) if sites else None  # a fleet config: labelled and split by site
        windows = label_windows(sensors, events, features, failure_values, config, site_configs=by_site)
        rates = split_rates(windows)
        summary = f"{windows.failure.size:,} windows; failing within {config.horizon_hours:g} h: {rates}"
        return SensorLabels(windows, summary, "positive_rate")

    def train(self, data_path: str, hyperparameters: dict, inputs: StepInputs, model_dir: str) -> Trained:
        """Fit the failure/RUL model on the labelled windows; the windows file's hash goes into the model."""
        from shopfloor.contracts.edge import EDGE_DIR
        from shopfloor.families.edge_export import EdgeConfig, no_export, write_edge
        from shopfloor.families.predictive_maintenance.edge import export_window_model
        from shopfloor.families.predictive_maintenance.fleet import site_thresholds
        from shopfloor.families.predictive_maintenance.strategies import check_retrain_sites, fleet_config

        config = validated(ModelConfig, hyperparameters, "hyperparameters artifact")
        gate = validated(GateConfig, inputs.gate, "pipeline parameter gate")
        data_sha256 = sha256_hex(read_bytes(join_uri(data_path, "windows.npz")))
        windows = load_windows(data_path)
        check_retrain_sites(fleet_config(inputs.data_schema), windows)
        trained = train_engines(windows, config, gate, data_sha256)
        result, engines, choice, scores = trained.result, trained.engines, trained.choice, trained.validation_scores
        validation = windows.part("validation")
        score = scores[choice.chosen]
        result.info.update(engine=choice.chosen, threshold=choice.thresholds[choice.chosen])
        result.info["threshold"]["by_site"] = site_thresholds(validation, score, inputs, result.info["threshold"])
        extra: dict[str, bytes] = {}
        if ENGINE_LIGHTGBM in engines:
            result.info["challenger"] = choice.record()
            extra = engines[ENGINE_LIGHTGBM].files()
            report_progress(choice.line())
        extra.update(self._site_models(windows, trained, config, inputs))
        exported = None
        if choice.chosen == ENGINE_NETWORK:
            exported = export_window_model(
                result.model, windows, result.info["threshold"]["value"], validated(EdgeConfig, inputs.edge, "edge")
            )
            result.info["edge"] = exported.info
        else:
            result.info["edge"] = no_export(choice.chosen)
        write_model(result, model_dir, extra)
        if exported is not None:
            write_edge(exported, join_uri(model_dir, EDGE_DIR))
        metadata = {key: result.info[key] for key in ("epochs_run", "features", "window")}
        metrics = final_metrics(result.history) | {
            f"validation_pr_auc_{engine}": value for engine, value in choice.validation.items() if np.isfinite(value)
        }
        return Trained(result.history, {"framework": choice.chosen, **metadata}, metrics)

    def _site_models(
        self, windows: LabelledWindows, trained: TrainedEngines, config: ModelConfig, inputs: StepInputs
    ) -> dict[str, bytes]:
        """The site models of the fleet's strategies (``fleet`` in ``data_schema``) as files; records them in the info.

        A fleet config (``sites:`` overlays) or a site-level strategy records ``fleet`` in the info (the server's
        site endpoints follow it); site models are trained only for a site-level strategy or ``fleet.compare``.
        """
        from shopfloor.common.fleet import fleet_schema
        from shopfloor.families.predictive_maintenance.fleet import site_gate
        from shopfloor.families.predictive_maintenance.strategies import (
            fleet_config,
            fleet_record,
            strategies_to_train,
            train_site_models,
        )

        fleet = fleet_config(inputs.data_schema)
        names = sorted({str(s) for s in windows.sites} - {""})
        info = trained.result.info
        _, overlays = fleet_schema(inputs.data_schema)
        if not names or not (strategies_to_train(fleet) or overlays):
            return {}
        gates = {site: site_gate(inputs.gate, overlays, site) for site in names}
        models, fallback = train_site_models(
            windows, trained.result, trained.engines, config, gates, fleet, train_engines
        )
        info["fleet"] = fleet_record(fleet, names, info["threshold"]["by_site"], models, fallback)
        files: dict[str, bytes] = {}
        for model in models:
            files.update(model.files())
        return files

    def load_evaluation_data(self, data_path: str, inputs: StepInputs) -> LabelledWindows:
        """The labelled windows (evaluation scores their test split)."""
        return load_windows(data_path)

    def evaluate(self, model: Any, model_info: dict, data: LabelledWindows, inputs: StepInputs) -> Evaluation:
        """Failure and RUL metrics on the test split at the gate's decision threshold, and the gate (also per site).

        The metrics come by site and by asset type too, where the data names them (only sites are gated).
        """
        from shopfloor.families.predictive_maintenance.evaluation import evaluate_model
        from shopfloor.families.predictive_maintenance.fleet import evaluate_by_group
        from shopfloor.families.predictive_maintenance.strategies import GLOBAL, FleetModel, strategy_metrics

        gate = validated(GateConfig, inputs.gate, "pipeline parameter gate")
        operating = operating_point(model_info, gate)
        if not isinstance(model, FleetModel):
            return evaluate_by_group(evaluate_model(model, data, gate, operating), data, inputs)
        # a fleet with site models: each test window answered by its site's model at that model's threshold
        test = data.part("test")
        routed = {**operating, "by_site": model.site_thresholds()}
        own = model.strategy != GLOBAL
        evaluation = evaluate_by_group(evaluate_model(model.routed(test.sites), data, gate, routed, own), data, inputs)
        return dataclasses.replace(evaluation, metrics={**evaluation.metrics, **strategy_metrics(model, test)})

    def load_model(self, model_dir: str) -> Any:
        """The answering engine, or with site models (``fleet`` strategies) a ``FleetModel`` routing by site."""
        from shopfloor.families.classical import load_scoring_model
        from shopfloor.families.predictive_maintenance.strategies import load_fleet_model

        return load_fleet_model(model_dir, load_scoring_model(model_dir))

    def comparable_inputs(self, model_info: dict, data: LabelledWindows) -> dict:
        """Production's model scores these windows only if it reads the same sensors over the same window."""
        return {"features": data.features, "window": int(data.info["window"])}

    def champion_metric(self, result: Evaluation) -> tuple[str, Literal[">=", "<="]]:
        """PR-AUC: failures are rare, so ranking them above healthy windows is what matters."""
        return "pr_auc", ">="

    def reference_scores(self, result: Evaluation) -> np.ndarray:
        """The test windows' failure probabilities."""
        return result.failure_score

    def confusion_labels(self, result: Evaluation) -> list[str]:
        """Healthy windows, then windows followed by a failure within the horizon."""
        return ["ok", "fails"]

    def render(self, result: Evaluation, record: ModelRecord, data: LabelledWindows) -> Rendered:
        """ROC/PR curves, RUL and one asset's risk over time; the model card quotes the labels' settings."""
        from shopfloor.families.predictive_maintenance.fleet import groups_card_markdown
        from shopfloor.families.predictive_maintenance.report import model_task, render_report, render_summary
        from shopfloor.families.predictive_maintenance.strategies import (
            strategy_report_html,
            strategy_summary_markdown,
        )
        from shopfloor.families.reporting import engines_card_section, engines_html, render_model_card

        names = self.headline_metrics
        card = render_model_card(record, data.info, result, model_task(record.model_info))
        strategy = str((record.model_info.get("fleet") or {}).get("strategy", "global"))
        by_strategy = strategy_summary_markdown(result.metrics, strategy)  # '' unless site models were trained
        comparison = engines_html(record, result.metrics, names) + strategy_report_html(result, strategy)
        return Rendered(
            report=render_report(
                result, record.history, record.model_name, comparison, record.model_info.get("early_stopping")
            ),
            summary=render_summary(result, record.model_name) + by_strategy,
            model_card=card
            + groups_card_markdown(result.metrics)
            + engines_card_section(record, result.metrics, names)
            + by_strategy,
        )

    def progress_line(self, result: Evaluation) -> str:
        """Ranking, F1 at the threshold and the RUL error."""
        m = result.metrics
        ranking = f"ROC-AUC {m['roc_auc']:.3f}, PR-AUC {m['pr_auc']:.3f}"
        return f"{ranking}, F1 {m['f1']:.3f}, RUL MAE {m['rul_mae_hours']:.1f} h"

    def explain(
        self, model: Any, model_info: dict, data_path: str, inputs: StepInputs, request: ExplainRequest
    ) -> Explained:
        """Integrated gradients on a sample of test windows: sensor importance and the showcased cases' heatmaps."""
        from shopfloor.families.predictive_maintenance.explanation import (
            explain_windows,
            render_explain_report,
            render_explain_summary,
        )

        gate = validated(GateConfig, inputs.gate, "pipeline parameter gate")
        threshold = float(operating_point(model_info, gate)["value"])
        found = explain_windows(
            model, load_windows(data_path), model_info, sample_size=request.sample_size, threshold=threshold
        )
        top = sorted(found.importance, key=lambda name: found.importance[name], reverse=True)[:3]
        return Explained(
            report=render_explain_report(found, request.model_name),
            summary=render_explain_summary(found, request.model_name),
            importance=found.importance,
            progress=f"explained {found.attributions.values.shape[0]} windows; top sensors: {', '.join(top)}",
        )

    def search_problem(
        self, data_path: str, hyperparameters: dict, inputs: StepInputs, config: HpoConfig
    ) -> SearchProblem:
        """Maximize the validation failure PR-AUC over the window model's space."""
        from shopfloor.families.predictive_maintenance.search import problem_at

        return problem_at(data_path, hyperparameters, inputs.data_schema, inputs.split, config)
