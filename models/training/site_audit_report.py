"""The site audit report: PNG plots (ROC, figures by month), ``figures.json`` and a Markdown
or HTML page, shaped like the evaluation report (models/report.py).

Pseudonymised by construction: nothing here receives a study key, accession number or
patient attribute, only the screens' figures and the joining's counts (with the outcomes
file's line numbers, which name no one), so the report cannot show one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure  # object API: no pyplot state, no display backend
from sklearn import metrics as skm

from models.training.html_page import markdown_page, titled_figure, write_report_files
from models.training.metrics import Estimate
from models.training.site_audit import AuditCase, AuditFigures, SiteAudit

PSEUDONYMS = (
    "No study key, accession number, patient name or patient ID appears in this report or "
    "its files; excluded rows are named by their line in the outcomes file only."
)


@dataclass(frozen=True)
class AuditContext:
    """What the figures came from: the joining's counts, for the reader to judge them."""

    outcomes_file: str  # its file name only
    rows: int  # data rows read from the outcomes file
    excluded: dict[str, list[int]]  # reason -> outcomes file line numbers
    notes: dict[str, int]  # e.g. rows whose date was unreadable (still used)
    analysed_without_outcome: int  # studies the node analysed that no row names
    models: dict[str, int]  # "name version" -> screens
    follow_up: str = ""  # the site's definition of a cancer outcome, when given
    caveat: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def audit_json(audit: SiteAudit, context: AuditContext, cases: list[AuditCase]) -> dict[str, Any]:
    """Everything the report shows, as numbers; per screen without any identifier."""
    return {
        "context": asdict(context),
        "pseudonymisation": PSEUDONYMS,
        "bootstrap_rounds": audit.rounds,
        "overall": asdict(audit.overall),
        "readers": asdict(audit.readers) if audit.readers else None,
        "by_month": {k: asdict(v) for k, v in audit.by_month.items()},
        "by_density": {k: asdict(v) for k, v in audit.by_density.items()},
        "at_target_recall": asdict(audit.at_target_recall),
        "operating_range": {
            "highest_negative_score": audit.operating_range[0],
            "lowest_positive_score": audit.operating_range[1],
        },
        "screens": [
            {
                "score": round(c.score, 6),
                "positive": c.positive,
                "cancer": c.cancer,
                "recalled": c.recalled,
                "month": c.month,
                "density": c.density,
            }
            for c in cases
        ],
    }


def write_audit_report(
    audit: SiteAudit,
    context: AuditContext,
    cases: list[AuditCase],
    folder: Path,
    style: str = "html",
) -> Path:
    """Write the plots, ``figures.json`` and ``report.html`` (or ``report.md``)."""
    plots: dict[str, Figure] = {}
    cancer = np.array([c.cancer for c in cases], bool)
    if cancer.any() and not cancer.all():
        plots["roc.png"] = _roc(audit, cases, context.caveat)
    if audit.by_month:
        plots["by-month.png"] = _by_month(audit, context.caveat)
    return write_report_files(
        folder,
        style,
        plots,
        audit_json(audit, context, cases),
        lambda names: audit_markdown(audit, context, names),
        lambda names: _html(audit_markdown(audit, context, names), folder, names),
    )


def _roc(audit: SiteAudit, cases: list[AuditCase], title: str) -> Figure:
    figure = titled_figure(title, "ROC of the study score against the site's outcomes")
    axes = figure.add_subplot(1, 1, 1)
    truth = np.array([c.cancer for c in cases], bool)
    scores = np.array([c.score for c in cases], float)
    fpr, tpr, _ = skm.roc_curve(truth, scores)
    auc = audit.overall.roc_auc
    axes.plot(fpr, tpr, label=f"model (AUC {auc.value:.3f})" if auc else "model")
    axes.plot([0, 1], [0, 1], linestyle=":", color="grey")
    overall = audit.overall
    if overall.sensitivity and overall.specificity:
        axes.plot(
            [1 - overall.specificity.value],
            [overall.sensitivity.value],
            "o",
            label="operating point",
        )
    target = audit.at_target_recall
    if target.sensitivity is not None and target.specificity is not None:
        axes.plot(
            [1 - target.specificity],
            [target.sensitivity],
            "s",
            label=f"at {target.target:.0%} recall",
        )
    if audit.readers and audit.readers.sensitivity and audit.readers.specificity:
        axes.plot(
            [1 - audit.readers.specificity.value],
            [audit.readers.sensitivity.value],
            "^",
            label="site's readers",
        )
    axes.set_xlabel("1 - specificity")
    axes.set_ylabel("sensitivity")
    axes.legend(fontsize=7, loc="lower right")
    return figure


def _by_month(audit: SiteAudit, title: str) -> Figure:
    months = list(audit.by_month)
    figure = titled_figure(title, "Audit figures by month (95% bootstrap intervals)", (10, 4))
    rates, cdr = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    x = np.arange(len(months))
    for offset, name in enumerate(("recall_rate", "ppv1", "sensitivity", "specificity")):
        points = [(n, getattr(f, name)) for n, f in enumerate(audit.by_month.values())]
        shown = [(n, e) for n, e in points if e is not None]
        if not shown:
            continue
        xs = np.array([n for n, _ in shown]) + (offset - 1.5) * 0.06
        values = np.array([e.value for _, e in shown])
        errors = np.array(
            [[e.value - e.low for _, e in shown], [e.high - e.value for _, e in shown]]
        )
        rates.errorbar(xs, values, yerr=errors, marker="o", capsize=3, label=name.replace("_", " "))
    rates.set_ylim(-0.02, 1.02)
    rates.legend(fontsize=7)
    values = np.array([f.cdr_per_1000.value for f in audit.by_month.values()])
    errors = np.array(
        [
            [f.cdr_per_1000.value - f.cdr_per_1000.low for f in audit.by_month.values()],
            [f.cdr_per_1000.high - f.cdr_per_1000.value for f in audit.by_month.values()],
        ]
    )
    cdr.errorbar(x, values, yerr=errors, marker="o", capsize=3)
    cdr.set_ylabel("cancers detected per 1,000 screens")
    for axes in (rates, cdr):
        axes.set_xticks(x, months, rotation=45, fontsize=7)
    return figure


def _estimate(value: Estimate | None, scale: str = "{:.3f}") -> str:
    if value is None:
        return "n/a"
    return f"{scale.format(value.value)} ({scale.format(value.low)}-{scale.format(value.high)})"


def _row(name: str, f: AuditFigures) -> str:
    (tn, fp), (fn, tp) = f.confusion
    cells = [
        str(f.screens),
        str(f.cancers),
        _estimate(f.recall_rate, "{:.1%}"),
        _estimate(f.cdr_per_1000, "{:.1f}"),
        _estimate(f.ppv1, "{:.1%}"),
        _estimate(f.sensitivity, "{:.1%}"),
        _estimate(f.specificity, "{:.1%}"),
        _estimate(f.roc_auc),
        f"{tp} / {fp} / {fn} / {tn}",
    ]
    return f"| {name} | " + " | ".join(cells) + " |"


HEADER = [
    "| screens of | screens | cancers | recall rate | CDR per 1,000 | PPV1 | sensitivity | "
    "specificity | ROC AUC | TP / FP / FN / TN |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
]


def audit_markdown(audit: SiteAudit, context: AuditContext, plots: list[str]) -> str:
    o, target = audit.overall, audit.at_target_recall
    models = ", ".join(f"{name} ({n} screens)" for name, n in context.models.items()) or "unknown"
    lines = ["# Site audit of the model against the site's outcomes", ""]
    if context.caveat:
        lines += [f"**{context.caveat}**", ""]
    low, high = audit.operating_range
    lines += [
        f"- Model: {models}",
        f"- Outcomes file {context.outcomes_file}: {context.rows} rows, "
        f"{o.screens} screens joined with the node's results, {o.cancers} with cancer",
        f"- Positive screen: the model's category at or above its operating threshold "
        f"(suspicious); scores of the calls range: negatives up to "
        f"{'n/a' if low is None else f'{low:.3f}'}, positives from "
        f"{'n/a' if high is None else f'{high:.3f}'}",
        f"- 95% bootstrap confidence intervals ({audit.rounds} resamples of screens) in brackets",
        f"- {PSEUDONYMS}",
    ]
    if context.follow_up:
        lines.append(f"- Cancer outcome: {context.follow_up}")
    lines += [
        "",
        "## The model at its operating point (ACR BI-RADS audit)",
        "",
        "Recall rate = positive screens / screens; CDR = cancers among positive screens per "
        "1,000 screens; PPV1 = cancers among positive screens / positive screens; sensitivity "
        "= TP / (TP + FN); specificity = TN / (TN + FP).",
        "",
        *HEADER,
        _row("model", o),
    ]
    if audit.readers:
        lines.append(_row("site's readers (recalled)", audit.readers))
    lines += [
        "",
        f"## Threshold for a {target.target:.1%} recall rate",
        "",
        f"A study score threshold of {_estimate(target.threshold)} would have recalled "
        f"{target.recall_rate:.1%} of these screens, with sensitivity "
        f"{'n/a' if target.sensitivity is None else f'{target.sensitivity:.1%}'}, specificity "
        f"{'n/a' if target.specificity is None else f'{target.specificity:.1%}'} and "
        f"{target.cdr_per_1000:.1f} cancers detected per 1,000 screens.",
        "",
    ]
    for title, groups in (("By month (drift)", audit.by_month), ("By density", audit.by_density)):
        lines += [f"## {title}", ""]
        if groups:
            lines += [*HEADER, *(_row(k, f) for k, f in groups.items())]
        else:
            lines.append("Neither the outcomes nor the node's results give it.")
        lines.append("")
    lines += ["## Rows not used", ""]
    if context.excluded:
        lines += ["| reason | rows | lines of the outcomes file |", "| --- | --- | --- |"]
        for reason, numbers in context.excluded.items():
            shown = ", ".join(str(n) for n in numbers[:20]) + (" ..." if len(numbers) > 20 else "")
            lines.append(f"| {reason} | {len(numbers)} | {shown} |")
    else:
        lines.append("Every row was joined with a result of the node.")
    lines.append("")
    for note, count in context.notes.items():
        lines.append(f"- {note}: {count}")
    lines.append(
        f"- Studies the node analysed that no outcome row names: {context.analysed_without_outcome}"
    )
    lines += ["", "## Figures", ""]
    lines += [f"![{name}]({name})" for name in plots]
    lines += ["", "Raw figures: `figures.json`.", ""]
    return "\n".join(lines)


def _html(markdown: str, folder: Path, plots: list[str]) -> str:
    """The Markdown's content as one self-contained page (plots embedded)."""
    return markdown_page(markdown, folder, plots, "Site audit", width="80em")
