"""The data profile as the Kubeflow dashboard shows it: a Markdown summary beside the JSON that monitoring reads."""

from __future__ import annotations

__all__ = ["image_profile_markdown", "sensor_profile_markdown"]


def _value(value: object) -> str:
    """A profile number as a table cell ('' where the profile has none)."""
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def sensor_profile_markdown(profile: dict) -> str:
    """Rows, assets, events by type, and per feature its missing readings, mean, spread and range."""
    sensors = profile["sensors"]
    events = profile["events"]
    by_type = ", ".join(f"{kind} {count:,}" for kind, count in events["by_type"].items()) or "none"
    lines = [
        "# Ingested data",
        "",
        f"{sensors['rows']:,} readings of {profile['assets']} assets, {len(profile['features'])} features; "
        f"{events['rows']:,} events ({by_type}).",
        "",
        "| feature | missing | non-finite | mean | std | min | max |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for feature in profile["features"]:
        column = sensors["columns"][feature]
        cells = [column.get(key) for key in ("mean", "std", "min", "max")]
        lines.append(
            f"| {feature} | {column['missing']:,} | {column.get('non_finite', 0):,} | "
            + " | ".join(_value(cell) for cell in cells)
            + " |"
        )
    lines += ["", "| source | sha256 | bytes |", "| --- | --- | --- |"]
    for name, source in profile["sources"].items():
        lines.append(f"| {name} | `{source['sha256'][:16]}` | {source['bytes']:,} |")
    return "\n".join(lines) + "\n"


def image_profile_markdown(profile: dict) -> str:
    """Images per class, the defect share, sizes and the pixel statistics monitoring compares with."""
    counts = profile["class_counts"]
    pixels = profile["pixels"]
    share = profile["defect_share"]
    lines = [
        "# Ingested images",
        "",
        f"{profile['images']:,} images ({profile['unlabelled']:,} unlabelled), "
        f"{'-' if share is None else f'{share:.1%}'} defective; "
        f"{', '.join(f'{size}: {n}' for size, n in profile['sizes'].items())}.",
        "",
        "| class | images |",
        "| --- | --- |",
        *(f"| {name} | {count:,} |" for name, count in counts.items()),
        "",
        "| channel | mean | std |",
        "| --- | --- | --- |",
        *(
            f"| {channel} | {_value(mean)} | {_value(std)} |"
            for channel, mean, std in zip(pixels["channels"], pixels["mean"], pixels["std"], strict=True)
        ),
    ]
    return "\n".join(lines) + "\n"
