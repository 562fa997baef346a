"""``breastnode models audit OUTCOMES.csv --output DIR``: the model against a site's outcomes.

The node keeps no table of scores: each study's latest TID 1500 SR in the file store holds
its breast (or study) scores and categories, so the audit reads them from there, found
through the result index, and joins them with the outcomes file by Study Instance UID or
accession number. Every row of the file is either used or counted under a reason; none is
dropped silently. The report carries no identifier (see models/training/site_audit_report.py).
"""

from __future__ import annotations

import argparse
import csv
import logging
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from node.cli.common import open_database
from node.config import Settings
from node.errors import NodeError

logger = logging.getLogger(__name__)

TID_1500_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.34"
FINDING = ("121071", "DCM")
BREAST = ("76752008", "SCT")
PROBABILITY_OF_CANCER = ("111047", "DCM")
OVERALL_ASSESSMENT = ("111037", "DCM")
SUSPICIOUS = ("444814009", "SCT")
# A breast's composition, as the node's report codes it (CID 6000); a study's is the denser
# breast's, as screening reports it
BREAST_COMPOSITION = ("129715009", "SCT")
COMPOSITION_LETTERS = {
    ("129716005", "SCT"): "a",
    ("129717001", "SCT"): "b",
    ("129718006", "SCT"): "c",
    ("129719003", "SCT"): "d",
}
ALGORITHM_NAME = ("111001", "DCM")
ALGORITHM_VERSION = ("111003", "DCM")

OUTCOMES = {"cancer": True, "malignant": True, "benign": False, "normal": False}
YES_NO = {"yes": True, "y": True, "true": True, "1": True, "no": False, "n": False}
YES_NO |= {"false": False, "0": False}
DENSITY = re.compile(r"^[A-Za-z0-9]{1,3}$")  # a-d, 1-4, F/G/D: never free text
OUTCOMES_HELP = """\
OUTCOMES.csv: one row per screening study, comma-separated, with a header row:
  study_instance_uid  the study's Study Instance UID      } at least one of the two
  accession_number    the study's accession number        } per row
  outcome             cancer (or malignant): cancer diagnosed within the site's follow-up
                      interval (e.g. 12 months); benign or normal: no cancer
  recalled            optional: yes/no, the site's readers recalled the woman
  date                optional: study date, YYYY-MM-DD or YYYYMMDD (else the node's record)
  density             optional: breast composition, e.g. a-d or 1-4
Other columns are ignored and never copied into the report. Rows that cannot be used
(no key, unknown outcome, no stored result, an ambiguous accession number, a second row for
a study) are counted by reason with their line numbers."""


@dataclass(frozen=True)
class StoredScore:
    """What the node's SR says of one study."""

    score: float  # the study score: the highest breast (or study) score
    positive: bool  # some breast (or the study) categorised suspicious
    model: str
    density: str | None
    clinical: bool  # its series description does not say NOT FOR CLINICAL USE


@dataclass(frozen=True)
class OutcomeRow:
    line: int
    study_instance_uid: str
    accession_number: str
    cancer: bool
    recalled: bool | None
    day: date | None
    density: str | None


def add_audit_command(actions: Any) -> None:
    """Register ``audit`` on the ``models`` subparsers."""
    audit = actions.add_parser(
        "audit",
        help="audit the model against the site's outcomes (recall rate, CDR, PPV1, ...)",
        description="Join the node's stored results with outcomes the site exports and write "
        "a BI-RADS medical audit of the model's operating point, without identifiers.",
        epilog=OUTCOMES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    audit.add_argument("outcomes", type=Path, metavar="OUTCOMES.csv")
    audit.add_argument("--output", type=Path, required=True, metavar="DIR")
    audit.add_argument(
        "--target-recall",
        type=float,
        default=0.10,
        help="recall rate whose threshold to report (default 0.10)",
    )
    audit.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    audit.add_argument(
        "--follow-up",
        default="",
        help="the site's cancer outcome definition, "
        "shown in the report (e.g. 'cancer within 12 months')",
    )
    audit.add_argument("--format", choices=("html", "md"), default="html")
    audit.add_argument("--seed", type=int, default=0)
    audit.set_defaults(run=run_audit)


def read_outcomes(
    path: Path,
) -> tuple[list[OutcomeRow], dict[str, list[int]], Counter[str], int]:
    """The usable rows, the unusable ones' line numbers by reason, notes on rows kept, and
    how many data rows the file has."""
    total = 0
    excluded: dict[str, list[int]] = {}
    notes: Counter[str] = Counter()
    rows: list[OutcomeRow] = []
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise NodeError(f"cannot read {path}: {exc.strerror}") from exc
    with handle:
        reader = csv.DictReader(handle)
        columns = {(c or "").strip().lower() for c in reader.fieldnames or ()}
        if not columns & {"study_instance_uid", "accession_number"} or "outcome" not in columns:
            raise NodeError(
                f"{path.name}: the header needs 'outcome' and 'study_instance_uid' or "
                "'accession_number' (see `breastnode models audit --help`)"
            )
        for raw in reader:
            total += 1
            line = reader.line_num
            row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
            uid, accession = row.get("study_instance_uid", ""), row.get("accession_number", "")
            outcome = OUTCOMES.get(row.get("outcome", "").lower())
            if not uid and not accession:
                excluded.setdefault("no study key", []).append(line)
                continue
            if outcome is None:
                excluded.setdefault("unknown outcome", []).append(line)
                continue
            recalled_text = row.get("recalled", "").lower()
            recalled = YES_NO.get(recalled_text)
            if recalled_text and recalled is None:
                notes["rows with an unreadable 'recalled' (used without it)"] += 1
            day = _day(row.get("date", ""))
            if row.get("date") and day is None:
                notes["rows with an unreadable date (the node's date used)"] += 1
            density = row.get("density", "")
            if density and not DENSITY.match(density):
                notes["rows with an unrecognised density (used without it)"] += 1
                density = ""
            rows.append(
                OutcomeRow(line, uid, accession, outcome, recalled, day, density.lower() or None)
            )
    return rows, excluded, notes, total


def _day(text: str) -> date | None:
    for pattern in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def _code(item: Dataset, sequence: str) -> tuple[str, str] | None:
    codes = item.get(sequence)
    if not codes:
        return None
    return str(codes[0].CodeValue), str(codes[0].CodingSchemeDesignator)


def _text(items: Any, concept: tuple[str, str]) -> str:
    for item in items or ():
        if _code(item, "ConceptNameCodeSequence") == concept and "TextValue" in item:
            return str(item.TextValue)
    return ""


def sr_scores(ds: Dataset) -> StoredScore | None:
    """The study score and call of a node's TID 1500 SR: its breast assessment groups (or
    its study group), each with a Probability of cancer and an Overall Assessment."""
    scores: list[float] = []
    positive = False
    model = ""
    density: str | None = None
    for container in ds.get("ContentSequence", ()):
        if container.get("ValueType") != "CONTAINER":
            continue
        for group in container.get("ContentSequence", ()):
            items = group.get("ContentSequence", ())
            kinds = [
                _code(i, "ConceptCodeSequence")
                for i in items
                if _code(i, "ConceptNameCodeSequence") == FINDING
            ]
            if kinds != [BREAST]:
                continue  # a finding's group: its score is already in its breast's
            for item in items:
                name = _code(item, "ConceptNameCodeSequence")
                if name == PROBABILITY_OF_CANCER and "MeasuredValueSequence" in item:
                    scores.append(float(item.MeasuredValueSequence[0].NumericValue))
                elif name == OVERALL_ASSESSMENT:
                    positive |= _code(item, "ConceptCodeSequence") == SUSPICIOUS
                elif name == BREAST_COMPOSITION:
                    value = _code(item, "ConceptCodeSequence")
                    letter = COMPOSITION_LETTERS.get(value) if value else None
                    density = max(filter(None, (density, letter)), default=None)
            model = model or " ".join(
                x for x in (_text(items, ALGORITHM_NAME), _text(items, ALGORITHM_VERSION)) if x
            )
    if not scores:
        return None
    clinical = "NOT FOR CLINICAL USE" not in str(ds.get("SeriesDescription", "")).upper()
    return StoredScore(max(scores), positive, model or "unknown model", density, clinical)


def run_audit(settings: Settings, args: argparse.Namespace) -> int:
    from models.training import AuditCase, AuditContext, write_audit_report
    from models.training.site_audit import site_audit
    from storage.analysed import analysed_studies
    from storage.filestore import FileStore

    if not 0.0 <= args.target_recall <= 1.0:
        raise NodeError("--target-recall is a rate within [0, 1], e.g. 0.10")
    if args.bootstrap < 0:
        raise NodeError("--bootstrap: 0 or more resamples")
    rows, excluded, notes, total = read_outcomes(args.outcomes)
    with open_database(settings) as (engine, _index):
        studies = analysed_studies(engine, TID_1500_SOP_CLASS)
    by_uid = {s.study_instance_uid: s for s in studies}
    by_accession: dict[str, list[str]] = {}
    for s in studies:
        if s.accession_number:
            by_accession.setdefault(s.accession_number, []).append(s.study_instance_uid)
    store = FileStore(settings.storage_root)
    cases: list[AuditCase] = []
    models: Counter[str] = Counter()
    not_clinical = False
    used: set[str] = set()
    for row in rows:
        uid = row.study_instance_uid
        if not uid:
            matches = by_accession.get(row.accession_number, [])
            if len(matches) > 1:
                excluded.setdefault("accession number of several studies", []).append(row.line)
                continue
            uid = matches[0] if matches else ""
        study = by_uid.get(uid)
        if study is None:
            excluded.setdefault("no stored result of the node", []).append(row.line)
            continue
        if uid in used:
            excluded.setdefault("a second row for a study", []).append(row.line)
            continue
        stored = _read_score(store.path_of(study.file_path))
        if stored is None:
            excluded.setdefault("stored result unreadable or without a score", []).append(row.line)
            continue
        used.add(uid)
        models[stored.model] += 1
        not_clinical |= not stored.clinical
        day = row.day or _day(study.study_date or "")
        if day is None:
            notes["screens without a date (in no month)"] += 1
        cases.append(
            AuditCase(
                stored.score,
                stored.positive,
                row.cancer,
                row.recalled,
                day.strftime("%Y-%m") if day else None,
                row.density or stored.density,
            )
        )
    if not cases:
        reasons = ", ".join(f"{k}: {len(v)}" for k, v in excluded.items()) or "no rows"
        raise NodeError(f"no outcome row matched a stored result ({reasons})")
    if len(models) > 1:
        logger.warning("the joined screens were analysed by %d model versions", len(models))
    audit = site_audit(cases, args.target_recall, args.bootstrap, args.seed)
    context = AuditContext(
        outcomes_file=args.outcomes.name,
        rows=total,
        excluded=excluded,
        notes=dict(notes),
        analysed_without_outcome=len(set(by_uid) - used),
        models=dict(models.most_common()),
        follow_up=args.follow_up,
        caveat=_caveat(models, not_clinical),
    )
    path = write_audit_report(audit, context, cases, args.output, args.format)
    o = audit.overall
    print(
        f"{o.screens} screens ({o.cancers} cancers): recall rate {o.recall_rate.value:.1%}, "
        f"CDR {o.cdr_per_1000.value:.1f}/1000, PPV1 "
        f"{'n/a' if o.ppv1 is None else f'{o.ppv1.value:.1%}'}; "
        f"{sum(len(v) for v in excluded.values())} row(s) not used"
    )
    print(f"report: {path}")
    return 0


def _read_score(path: Path) -> StoredScore | None:
    try:
        return sr_scores(dcmread(path, stop_before_pixels=True))
    except (OSError, InvalidDicomError, AttributeError, ValueError, KeyError, IndexError) as exc:
        logger.warning("a stored SR could not be read: %s", type(exc).__name__)
        return None


def _caveat(models: Counter[str], not_clinical: bool) -> str:
    """The warning the results themselves carried, repeated on every page of the report."""
    if any("demo" in name.lower() for name in models):
        return "DEMO MODEL (synthetic phantoms) - NOT VALIDATED - NOT FOR CLINICAL USE"
    return "NOT VALIDATED - NOT FOR CLINICAL USE" if not_clinical else ""
