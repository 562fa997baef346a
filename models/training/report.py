"""The evaluation report: PNG plots (ROC, precision-recall, confusion matrix, training curves,
example heatmaps with annotated lesions and the model's marks), the raw figures as JSON, and
a Markdown or HTML page that shows them.

``figures.json`` holds every figure the page shows, so any can be checked or recomputed:
``model``, ``caveat``, ``cases``, ``patients``, ``operating_point``, ``calibration``,
``binary``, ``per_class``, ``baselines``, ``training_history``, ``predictions`` (per test
image: truth, unrounded score, probabilities) and ``froc`` (null without annotations):
``lesions``, ``images``, ``sensitivity_at_false_marks_per_image`` ({"0.25": ..., "0.5": ...,
"1.0": ..., "2.0": ...}), ``curve`` (``false_marks_per_image``, ``sensitivity``),
``by_lesion_type`` and ``by_density`` (group name -> the same four keys, per lesion type
with the false marks of all images, per density over that density's images), and
``density_images``; FROC figures unrounded (``models.training.report_lesions``).

Every page and plot of a checkpoint not validated for clinical use says so.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure  # object API: no pyplot state, no display backend
from sklearn import metrics as skm

from models.serving.inference import POSITIVE_LABELS
from models.training.evaluation import Evaluation
from models.training.html_page import markdown_page, titled_figure, write_report_files
from models.training.metrics import BinaryReport, Estimate
from models.training.report_lesions import LEGEND, draw_example, froc_figures, froc_lines

NOT_VALIDATED = "NOT VALIDATED - NOT FOR CLINICAL USE"


def caveat(evaluation: Evaluation) -> str:
    manifest = evaluation.manifest
    if manifest.extra.get("demo"):
        return "DEMO MODEL (synthetic phantoms) - " + NOT_VALIDATED
    return "" if manifest.validated_for_clinical_use else NOT_VALIDATED


def figures_json(evaluation: Evaluation) -> dict[str, Any]:
    """Everything the report shows, as numbers."""
    manifest = evaluation.manifest
    return {
        "model": {
            "name": manifest.name,
            "version": manifest.version,
            "task": manifest.task,
            "labels": list(manifest.labels),
            "backbone": manifest.backbone,
            "input_size": list(manifest.input_size),
            "operating_threshold": manifest.operating_threshold,
            "validated_for_clinical_use": manifest.validated_for_clinical_use,
            "sha256": manifest.sha256,
        },
        "caveat": caveat(evaluation),
        "cases": int(evaluation.truth.size),
        "patients": evaluation.patients,
        "operating_point": _operating_point(evaluation),
        "calibration": {
            "method": asdict(manifest.calibration) if manifest.calibration else None,
            "test": evaluation.calibration_figures(),
        },
        "binary": asdict(evaluation.binary),
        "per_class": asdict(evaluation.multiclass),
        "froc": froc_figures(evaluation),
        "baselines": [
            {
                "name": b.name,
                "smote": b.smote,
                "binary": asdict(b.binary),
                "per_class": asdict(b.multiclass),
            }
            for b in evaluation.baselines
        ],
        "training_history": evaluation.manifest.extra.get("history", []),
        # per test image, in manifest order (no identifiers): to recompute any figure
        "predictions": [
            {
                "truth": manifest.labels[int(t)],
                # unrounded: the operating threshold is, and a score equal to it must stay
                # on the side it was judged on
                "score": float(s),
                "probabilities": [round(float(p), 6) for p in row],
            }
            for t, s, row in zip(
                evaluation.truth, evaluation.scores, evaluation.probabilities, strict=True
            )
        ],
    }


def _operating_point(evaluation: Evaluation) -> dict[str, Any]:
    """The rule that chose the threshold, what it gave on validation (from the manifest)
    and on these cases (with intervals)."""
    manifest, binary = evaluation.manifest, evaluation.binary
    point = manifest.operating_point
    return {
        "rule": point.rule if point else None,  # None: a checkpoint from before the rules
        "target": point.target if point else None,
        "described": _rule_text(evaluation),
        "threshold": manifest.operating_threshold,
        "validation": (
            {
                "sensitivity": point.sensitivity,
                "specificity": point.specificity,
                "recall_rate": point.recall_rate,
                "cases": point.cases,
            }
            if point
            else None
        ),
        "test": {
            "sensitivity": asdict(binary.recall),
            "specificity": asdict(binary.specificity),
            "recall_rate": asdict(binary.recall_rate) if binary.recall_rate else None,
            "cases": binary.cases,
        },
    }


def _rule_text(evaluation: Evaluation) -> str:
    manifest = evaluation.manifest
    if manifest.operating_point is None:
        recorded = manifest.extra.get("threshold_rule")
        return str(recorded) if recorded else "not recorded in the manifest"
    from models.serving.calibration import OperatingRule

    point = manifest.operating_point
    return OperatingRule(point.rule, point.target).describe() + " on the validation split"


def write_report(evaluation: Evaluation, folder: Path, style: str = "html") -> Path:
    """Write the plots, ``figures.json`` and ``report.html`` (or ``report.md``)."""
    title = caveat(evaluation)
    plots = {
        "roc.png": _curves(evaluation, title, "roc"),
        "precision-recall.png": _curves(evaluation, title, "pr"),
        "confusion.png": _confusion(evaluation, title),
    }
    if evaluation.manifest.extra.get("history"):
        plots["training.png"] = _training(evaluation, title)
    if evaluation.examples:
        plots["heatmaps.png"] = _heatmaps(evaluation, title)
    return write_report_files(
        folder,
        style,
        plots,
        figures_json(evaluation),
        lambda names: _markdown(evaluation, names),
        lambda names: _html(evaluation, folder, names),
    )


def _curves(evaluation: Evaluation, title: str, kind: str) -> Figure:
    """ROC (``kind`` "roc") or precision-recall curves of the CNN and the baselines."""
    caption = "ROC" if kind == "roc" else "Precision-recall"
    figure = titled_figure(title, f"{caption}: positive classes against the rest")
    axes = figure.add_subplot(1, 1, 1)
    truth = evaluation.positive_truth
    curves = [("CNN", evaluation.scores)] + [(b.name, b.scores) for b in evaluation.baselines]
    for name, scores in curves:
        if kind == "roc":
            fpr, tpr, _ = skm.roc_curve(truth, scores)
            axes.plot(fpr, tpr, label=f"{name} (AUC {skm.roc_auc_score(truth, scores):.3f})")
        else:
            precision, recall, _ = skm.precision_recall_curve(truth, scores)
            ap = skm.average_precision_score(truth, scores)
            axes.plot(recall, precision, label=f"{name} (AP {ap:.3f})")
    if kind == "roc":
        axes.plot([0, 1], [0, 1], linestyle=":", color="grey")
        axes.set_xlabel("1 - specificity")
        axes.set_ylabel("sensitivity")
    else:
        axes.axhline(truth.mean(), linestyle=":", color="grey", label="prevalence")
        axes.set_xlabel("recall (sensitivity)")
        axes.set_ylabel("precision")
    axes.legend(fontsize=7, loc="lower right" if kind == "roc" else "lower left")
    return figure


def _confusion(evaluation: Evaluation, title: str) -> Figure:
    figure = titled_figure(title, "Confusion matrix (CNN, most probable class)")
    axes = figure.add_subplot(1, 1, 1)
    matrix = np.asarray(evaluation.multiclass.confusion)
    labels = evaluation.manifest.labels
    axes.imshow(matrix, cmap="Blues")
    for (row, column), value in np.ndenumerate(matrix):
        colour = "white" if value > matrix.max() / 2 else "black"
        axes.text(column, row, str(value), ha="center", va="center", color=colour)
    axes.set_xticks(range(len(labels)), labels, rotation=30, fontsize=8)
    axes.set_yticks(range(len(labels)), labels, fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("truth")
    return figure


def _training(evaluation: Evaluation, title: str) -> Figure:
    history = evaluation.manifest.extra["history"]
    epochs = [h["epoch"] for h in history]
    figure = titled_figure(title, "Training curves", size=(9, 4))
    loss, score = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    loss.plot(epochs, [h["train_loss"] for h in history], label="training loss")
    loss.plot(epochs, [h["validation_loss"] for h in history], label="validation loss")
    score.plot(epochs, [h["train_accuracy"] for h in history], label="training accuracy")
    score.plot(epochs, [h["validation_accuracy"] for h in history], label="validation accuracy")
    score.plot(epochs, [h["validation_auc"] for h in history], label="validation AUC")
    best = evaluation.manifest.extra.get("best_epoch")
    for axes in (loss, score):
        if best:
            axes.axvline(best, linestyle=":", color="grey", label="kept epoch")
        axes.set_xlabel("epoch")
        axes.legend(fontsize=7)
    return figure


def _heatmaps(evaluation: Evaluation, title: str) -> Figure:
    examples = evaluation.examples
    columns = 4
    rows = -(-len(examples) // columns)
    figure = titled_figure(
        title, "Example heatmaps (Grad-CAM / saliency on the model grid)", (10, 3.4 * rows)
    )
    for n, example in enumerate(examples):
        draw_example(figure.add_subplot(rows, columns, n + 1), example)
    if any(example.lesions or example.marks for example in examples):
        figure.text(0.5, 0.0, LEGEND, ha="center", va="top", fontsize=8)  # below the images
    return figure


def _estimate(value: Estimate | None) -> str:
    if value is None:
        return "n/a"
    return f"{value.value:.3f} ({value.low:.3f}-{value.high:.3f})"


def _markdown(evaluation: Evaluation, plots: list[str]) -> str:
    manifest, binary = evaluation.manifest, evaluation.binary
    lines = [f"# Evaluation: {manifest.name} {manifest.version}", ""]
    if caveat(evaluation):
        lines += [f"**{caveat(evaluation)}**", ""]
    lines += [
        f"- Task {manifest.task} ({', '.join(manifest.labels)}), {manifest.backbone} at "
        f"{manifest.input_size[0]}x{manifest.input_size[1]}, checkpoint SHA-256 "
        f"{manifest.sha256[:12]}...",
        f"- {evaluation.truth.size} test images of {evaluation.patients} patients; "
        f"{binary.positives} positive ({', '.join(_positive_names(evaluation))})",
        f"- Operating threshold {binary.threshold:.3f}; 95% bootstrap confidence intervals "
        "over images in brackets",
        "",
        "## The node's score: positive classes against the rest",
        "",
        "| model | accuracy | precision | recall | specificity | F1 | ROC AUC | PR AUC | "
        f"sensitivity at {binary.target_specificity:.0%} specificity |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        _binary_line("CNN", binary),
    ]
    for b in evaluation.baselines:
        name = f"{b.name} on CNN features" + (" (SMOTE)" if b.smote else "")
        lines.append(_binary_line(name, b.binary))
    (tn, fp), (fn, tp) = binary.confusion
    lines += [
        "",
        f"CNN at the operating threshold: TP {tp}, FP {fp}, FN {fn}, TN {tn}.",
        "",
        *_operating_lines(evaluation, binary),
        "",
        "## Per class (CNN, most probable class)",
        "",
        f"Accuracy {_estimate(evaluation.multiclass.accuracy)}, macro F1 "
        f"{_estimate(evaluation.multiclass.macro_f1)}, quadratic-weighted kappa "
        f"{_estimate(evaluation.multiclass.weighted_kappa)}.",
        "",
        "| class | cases | precision | recall | F1 | ROC AUC (one vs rest) | PR AUC |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in evaluation.multiclass.per_class:
        lines.append(
            f"| {c.label} | {c.support} | {c.precision:.3f} | {c.recall:.3f} | {c.f1:.3f} | "
            f"{_estimate(c.roc_auc)} | {_estimate(c.pr_auc)} |"
        )
    lines += froc_lines(evaluation)
    lines += ["", "## Figures", ""]
    lines += [f"![{name}]({name})" for name in plots]
    lines += ["", "Raw figures: `figures.json`.", ""]
    return "\n".join(lines)


def _operating_lines(evaluation: Evaluation, binary: BinaryReport) -> list[str]:
    manifest = evaluation.manifest
    point, calibration = manifest.operating_point, manifest.calibration
    lines = [
        "## Operating point and calibration",
        "",
        f"- Operating point: {_rule_text(evaluation)}, threshold {binary.threshold:.4f}",
    ]
    if point is not None:
        lines.append(
            f"- On the validation split ({point.cases} images): sensitivity "
            f"{point.sensitivity:.3f}, specificity {point.specificity:.3f}, recall rate "
            f"{point.recall_rate:.3f}"
        )
    lines.append(
        f"- On these {binary.cases} test images: sensitivity {_estimate(binary.recall)}, "
        f"specificity {_estimate(binary.specificity)}, recall rate "
        f"{_estimate(binary.recall_rate)}"
    )
    figures = evaluation.calibration_figures()
    if calibration is None:
        lines.append(
            "- Scores not calibrated (the manifest carries no calibration): Brier score "
            f"{figures['brier_reported']:.4f}, expected calibration error "
            f"{figures['ece_reported']:.4f}"
        )
    else:
        name = {"platt": "Platt scaling", "isotonic": "isotonic regression"}[calibration.method]
        lines += [
            f"- Scores calibrated on the validation split ({calibration.cases} images) by "
            f"{name}; chosen by {calibration.reason}",
            f"- On the test split: Brier score {figures['brier_network']:.4f} before, "
            f"{figures['brier_reported']:.4f} calibrated; expected calibration error "
            f"{figures['ece_network']:.4f} before, {figures['ece_reported']:.4f} calibrated",
        ]
    return lines


def _binary_line(name: str, report: Any) -> str:
    cells = [
        report.accuracy,
        report.precision,
        report.recall,
        report.specificity,
        report.f1,
        report.roc_auc,
        report.pr_auc,
        report.sensitivity_at_specificity,
    ]
    return f"| {name} | " + " | ".join(_estimate(c) for c in cells) + " |"


def _positive_names(evaluation: Evaluation) -> list[str]:
    return list(POSITIVE_LABELS[evaluation.manifest.task])


def _html(evaluation: Evaluation, folder: Path, plots: list[str]) -> str:
    """The Markdown's content as one self-contained page (plots embedded)."""
    title = f"{evaluation.manifest.name} evaluation"
    return markdown_page(_markdown(evaluation, []), folder, plots, title)
