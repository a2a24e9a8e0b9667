"""Training that holds on small data: weight decay, early stopping that restores the best epoch, learning curves.

Every network family compiles with :func:`optimizer` (AdamW: weight decay decoupled from the loss, so the training
and validation losses stay the quantities the reports and early stopping read), stops with :func:`early_stopping`
(the best epoch's weights are restored, whether training stops early or runs its last epoch) and records
:func:`stopping_record` in its ``shopfloor_model.json``, which :func:`learning_curves_png` marks on the curves.
"""

from __future__ import annotations

import base64
import io

__all__ = ["early_stopping", "learning_curves_caption", "learning_curves_png", "optimizer", "stopping_record"]

# Not decayed: biases, batch-norm scale and offset (shrinking them regularizes nothing; it shifts the activations)
NOT_DECAYED = ("bias", "gamma", "beta")


def optimizer(learning_rate: float, weight_decay: float):
    """AdamW with ``weight_decay`` (decoupled: each step shrinks the kernels by ``learning_rate * weight_decay``).

    Decoupled decay, not an L2 term in the loss: the loss curves stay the data's loss (comparable between train and
    validation, and across configurations with different decay), and the decay does not fight Adam's per-weight
    scaling. 0 is plain Adam.
    """
    import keras

    chosen = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay)
    chosen.exclude_from_weight_decay(var_names=list(NOT_DECAYED))
    return chosen


def early_stopping(monitor: str, mode: str, patience: int, start_from_epoch: int = 0):
    """Keras early stopping on ``monitor`` that restores the best epoch's weights at the end of training.

    Keras restores them in ``on_train_end`` also when the last epoch is reached without stopping, so the saved
    model is always the best epoch's (tested per family).
    """
    import keras

    return keras.callbacks.EarlyStopping(
        monitor=monitor, mode=mode, patience=patience, restore_best_weights=True, start_from_epoch=start_from_epoch
    )


def stopping_record(stopper, history: dict[str, list[float]]) -> dict:
    """What the model description says about early stopping: the monitored value and the restored epoch (1-based)."""
    epochs = len(history.get("loss", []))
    best = int(getattr(stopper, "best_epoch", epochs - 1)) + 1 if epochs else 0
    values = history.get(stopper.monitor, [])
    return {
        "monitor": stopper.monitor,
        "mode": stopper.mode,
        "restored_epoch": best,
        "restored_value": float(values[best - 1]) if 0 < best <= len(values) else None,
        "epochs_run": epochs,
    }


def learning_curves_png(history: dict[str, list[float]], stopping: dict | None, metric: str | None = None) -> str:
    """Train vs validation loss (and ``metric``, when the history has it) per epoch, the restored epoch marked.

    A widening gap between the two curves is overfitting; the dashed line is the epoch whose weights were kept.
    Returns a base64 PNG (as :func:`shopfloor.common.plots.figure_png`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [("loss", "loss")]
    if metric and metric in history and f"val_{metric}" in history:
        pairs.append((metric, metric.replace("_", " ")))
    figure, axes = plt.subplots(1, len(pairs), figsize=(5.2 * len(pairs), 3.8), dpi=90, squeeze=False)
    restored = int((stopping or {}).get("restored_epoch") or 0)
    for axis, (name, label) in zip(axes[0], pairs, strict=True):
        for key, curve in ((name, "train"), (f"val_{name}", "validation")):
            if key in history:
                values = history[key]
                axis.plot(range(1, len(values) + 1), values, marker=".", label=curve)
        if restored:
            axis.axvline(restored, ls="--", color="grey", label=f"restored epoch {restored}")
        axis.set(xlabel="epoch", ylabel=label, title=label)
        axis.legend(fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def learning_curves_caption(stopping: dict | None) -> str:
    """The figure's title: "Learning curves", with the epoch whose weights the model kept when known."""
    if not stopping or not stopping.get("restored_epoch"):
        return "Learning curves"
    return (
        f"Learning curves (restored epoch {stopping['restored_epoch']} of {stopping['epochs_run']}, "
        f"best {stopping['monitor']})"
    )
