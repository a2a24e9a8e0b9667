"""KFP wrapper for label: typed inputs and outputs only; the logic is ``components.label.labeling``."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components._image import IMAGE

__all__ = ["label"]


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def label(
    sensors: Input[Dataset],
    events: Input[Dataset],
    data_schema: dict,
    labeling: dict,
    windows: Output[Dataset],
    class_balance: Output[Metrics],
):
    """Join readings with failure events into labelled windows: fails within the horizon, and RUL.

    Args:
        sensors: validated readings from ingest.
        events: validated events from ingest.
        data_schema: the data schema; its failure_values name the event types that count as a failure.
        labeling: horizon_hours, window, stride, rul_cap_hours, split fractions and seed (``LabelingConfig``).
        windows: folder with windows.npz and labels.json.
        class_balance: windows and positive rate per split.
    """
    import pandas as pd

    from components.common.config import DataConfig, LabelingConfig, validated
    from components.common.progress import report_progress
    from components.label.labeling import label_windows, write_windows

    config = validated(LabelingConfig, labeling, "pipeline parameter labeling")
    failure_values = validated(DataConfig, data_schema, "pipeline parameter data_schema").failure_values
    table = pd.read_parquet(sensors.path)
    features = sensors.metadata.get("features") or [
        c for c in table.columns if c not in ("timestamp", "asset_id", "site")
    ]
    result = label_windows(table, pd.read_parquet(events.path), features, failure_values, config)
    write_windows(result, windows.path)
    balance = result.info["class_balance"]
    report_progress(
        f"{result.failure.size:,} windows; failing within {config.horizon_hours:g} h: "
        + ", ".join(f"{k} {v['positive_rate']:.1%}" for k, v in balance.items())
    )
    windows.metadata.update({"windows": int(result.failure.size), "features": features})
    for split, counts in balance.items():
        class_balance.log_metric(f"{split}_windows", counts["windows"])
        class_balance.log_metric(f"{split}_positive_rate", counts["positive_rate"])
