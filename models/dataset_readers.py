"""Public mammography datasets' label files turned into manifest rows (``models.dataset``).

Each public dataset publishes its labels in its own shape: one row per lesion rather than per
image, its own spellings of laterality and pathology, image paths to be derived from IDs or
read from DICOM headers. These readers do that conversion once, in code that is tested, so
that a manifest says the same thing whoever built it. Every reader has the same signature,
``read(label_file, images, task) -> Converted``, and:

- gives one row per image (several lesion rows of one image collapse into one label);
- refuses a task the dataset cannot answer, and a malformed row, with a ``DatasetError`` that
  names the file, the row and why;
- leaves out, and counts by reason, images that cannot carry a label for the task;
- builds image paths only from the label file's own fields under the ``images`` root, and
  refuses fields that would lead outside it.

Nothing is logged: the label files hold patient identifiers.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from models.checkpoint import TASKS
from models.dataset import DatasetError, Row, class_name
from models.headers import laterality_of, view_of

MIAS_CLASSES = ("CALC", "CIRC", "SPIC", "MISC", "ARCH", "ASYM", "NORM")
MIAS_NAME = re.compile(r"mdb(\d{3})")
CBIS_PATHOLOGY = {"MALIGNANT": "malignant", "BENIGN": "benign", "BENIGN_WITHOUT_CALLBACK": "benign"}
CBIS_LATERALITY = {"LEFT": "L", "RIGHT": "R"}
VINDR_SPLITS: dict[str, str | None] = {"training": None, "test": "test"}
VIEWS = ("CC", "MLO", "ML", "LM", "LMO", "SIO", "XCCL", "XCCM", "FB", "AT")

# Reasons an image (or a label row) is left out; the keys of ``Converted.skipped``.
NORMAL_IMAGE = "normal image (no lesion to call benign or malignant)"
IMAGE_MISSING = "image file missing"
INCOMPLETE = "assessment 0 (incomplete, no BI-RADS category)"
NO_CLINICAL_ROW = "no clinical row for this breast"
NO_LATERALITY = "no laterality in the DICOM header"
UNREADABLE = "not a readable DICOM file"
NO_IMAGES = "clinical row without images"


@dataclass(frozen=True)
class Converted:
    """The manifest rows of a label file, and how many were left out for each reason."""

    rows: tuple[Row, ...]
    skipped: dict[str, int] = field(default_factory=dict)


Reader = Callable[[Path, Path, str], Converted]


def _check_task(dataset: str, task: str, supported: dict[str, str | None]) -> None:
    """``supported`` maps the dataset's tasks to None and the impossible ones to why."""
    if task not in TASKS:
        raise DatasetError(f"unknown task {task!r}; one of {', '.join(TASKS)}")
    if task in supported and supported[task] is None:
        return
    why = supported.get(task) or "the dataset has no labels for it"
    possible = ", ".join(name for name, reason in supported.items() if reason is None)
    raise DatasetError(f"{dataset} cannot be read for task {task!r}: {why} (tasks: {possible})")


def _key(name: str) -> str:
    return " ".join(name.replace("_", " ").split()).lower()


def _table(
    label_file: Path, required: Sequence[tuple[str, ...]]
) -> Iterator[tuple[str, dict[str, str]]]:
    """Data rows of a CSV as ("FILE: row N", {required column's first name: value}).

    Column names match ignoring case, spaces and underscores; each required column may be
    spelled in any of its alternatives. Rows are numbered as in a spreadsheet (header = 1).
    """
    try:
        with label_file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [_key(name) for name in next(reader, [])]
            columns: dict[str, int] = {}
            missing = []
            for names in required:
                found = [header.index(_key(n)) for n in names if _key(n) in header]
                if found:
                    columns[names[0]] = found[0]
                else:
                    missing.append(" or ".join(repr(n) for n in names))
            if missing:
                raise DatasetError(f"{label_file.name}: missing column(s) {', '.join(missing)}")
            count = 0
            for number, record in enumerate(reader, 2):
                if not any(value.strip() for value in record):
                    continue
                count += 1
                values = {
                    name: record[index].strip() if index < len(record) else ""
                    for name, index in columns.items()
                }
                yield f"{label_file.name}: row {number}", values
            if count == 0:
                raise DatasetError(f"{label_file.name}: no rows")
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"cannot read {label_file.name}: {exc}") from exc


def _plain(where: str, column: str, value: str) -> str:
    """An identifier used as one path component: non-empty, no separators, not '.'/'..'."""
    if not value:
        raise DatasetError(f"{where}: empty {column}")
    if "/" in value or "\\" in value or value in {".", ".."}:
        raise DatasetError(f"{where}: {column} {value!r} is not a plain name")
    return value


def _relative(where: str, column: str, value: str) -> PurePosixPath:
    """A relative path from the label file that stays under the images root."""
    if not value:
        raise DatasetError(f"{where}: empty {column}")
    path = PurePosixPath(value.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", value):
        raise DatasetError(f"{where}: {column} {value!r} leads outside the images folder")
    return path


# --- mini-MIAS --------------------------------------------------------------------------


def read_mini_mias(label_file: Path, images: Path, task: str) -> Converted:
    """mini-MIAS: ``labels.csv`` (``Name,Background Tissue,Abnormality,Type,x,y,r``) or the
    original whitespace-separated ``Info.txt`` (``mdb001 G CIRC B 535 425 197``, ``mdb003 D
    NORM``; lines not starting with ``mdb`` are skipped as prose). One row per image, the
    file ``images/<name>.png`` (or ``.pgm``). The films come in pairs of one woman: odd
    numbers are her right MLO, even numbers her left MLO; patient ``mias-woman-NNN`` with
    NNN = (n + 1) // 2. normal_abnormal: NORM is normal, any lesion abnormal;
    benign_malignant: lesion images only, malignant if any of its lesions is M.
    """
    _check_task(
        "mini-MIAS",
        task,
        {
            "normal_abnormal": None,
            "benign_malignant": None,
            "birads": "mini-MIAS has no BI-RADS assessments",
        },
    )
    lesions: dict[str, list[tuple[str, str, str]]] = {}  # name -> (where, class, severity)
    for where, name, abnormality, severity in _mias_lines(label_file):
        if not MIAS_NAME.fullmatch(name):
            raise DatasetError(f"{where}: name {name!r} is not mdbNNN")
        if abnormality not in MIAS_CLASSES:
            raise DatasetError(
                f"{where}: abnormality {abnormality!r} is not one of {', '.join(MIAS_CLASSES)}"
            )
        if abnormality != "NORM" and severity not in {"B", "M"}:
            raise DatasetError(f"{where}: {abnormality} lesion without severity B or M")
        lesions.setdefault(name, []).append((where, abnormality, severity))

    rows: list[Row] = []
    skipped: Counter[str] = Counter()
    for name, found in lesions.items():
        normal = [where for where, abnormality, _ in found if abnormality == "NORM"]
        if normal and len(normal) < len(found):
            raise DatasetError(f"{normal[0]}: {name} is listed both as normal and with a lesion")
        if task == "benign_malignant" and normal:
            skipped[NORMAL_IMAGE] += 1
            continue
        image = images / f"{name}.png"
        if not image.is_file() and (images / f"{name}.pgm").is_file():
            image = images / f"{name}.pgm"
        if not image.is_file():
            skipped[IMAGE_MISSING] += 1
            continue
        if task == "normal_abnormal":
            label = "normal" if normal else "abnormal"
        else:
            label = "malignant" if any(s == "M" for _, _, s in found) else "benign"
        number = int(name[3:])
        woman = f"mias-woman-{(number + 1) // 2:03d}"
        rows.append(Row(image, woman, woman, "R" if number % 2 else "L", "MLO", label))
    return Converted(tuple(rows), dict(skipped))


def _mias_lines(label_file: Path) -> Iterator[tuple[str, str, str, str]]:
    """(where, name, abnormality, severity) per lesion row, from either form."""
    try:
        text = label_file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {label_file.name}: {exc}") from exc
    first = next((line for line in text.splitlines() if line.strip()), "")
    if "," in first:
        required = [("Name", "REFNUM"), ("Abnormality", "CLASS"), ("Type", "SEVERITY")]
        for where, values in _table(label_file, required):
            yield (
                where,
                values["Name"].lower(),
                values["Abnormality"].upper(),
                values["Type"].upper(),
            )
        return
    count = 0
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or not parts[0].lower().startswith("mdb"):
            continue
        count += 1
        where = f"{label_file.name}: line {number}"
        if len(parts) < 3:
            raise DatasetError(f"{where}: expected name, background tissue and abnormality")
        severity = parts[3].upper() if len(parts) > 3 else ""
        yield where, parts[0].lower(), parts[2].upper(), severity
    if count == 0:
        raise DatasetError(f"{label_file.name}: no mdb lines")


# --- CBIS-DDSM ---------------------------------------------------------------------------


def read_cbis_ddsm(label_file: Path, images: Path, task: str) -> Converted:
    """CBIS-DDSM: one case description CSV (``mass_case_description_train_set.csv`` and its
    siblings; call once per file). One row per full mammogram (``image file path``, kept as
    published under ``images``, surrounding whitespace removed; its existence is not
    checked, as the published paths and a TCIA download's folder names often differ); the
    abnormalities of one image collapse: malignant if any is MALIGNANT (BENIGN and
    BENIGN_WITHOUT_CALLBACK are benign), BI-RADS the highest ``assessment``; an image whose
    highest assessment is 0 (incomplete) is left out for birads. Images of the published test
    sets (path starting ``Mass-Test``/``Calc-Test``) get split "test"; the others none.
    """
    _check_task(
        "CBIS-DDSM",
        task,
        {
            "benign_malignant": None,
            "birads": None,
            "normal_abnormal": "every CBIS-DDSM image has a lesion, none is normal",
        },
    )
    required = [
        ("patient_id",),
        ("left or right breast",),
        ("image view",),
        ("assessment",),
        ("pathology",),
        ("image file path",),
    ]
    images_seen: dict[PurePosixPath, tuple[str, str, str, str, list[int], list[str]]] = {}
    for where, values in _table(label_file, required):
        patient = values["patient_id"]
        if not patient:
            raise DatasetError(f"{where}: empty patient_id")
        laterality = CBIS_LATERALITY.get(values["left or right breast"].upper())
        if laterality is None:
            raise DatasetError(
                f"{where}: left or right breast {values['left or right breast']!r} "
                "is not LEFT or RIGHT"
            )
        view = values["image view"].upper()
        if view not in VIEWS:
            raise DatasetError(f"{where}: image view {values['image view']!r} is not a view")
        if values["assessment"] not in {str(n) for n in range(6)}:
            raise DatasetError(f"{where}: assessment {values['assessment']!r} is not 0 to 5")
        pathology = CBIS_PATHOLOGY.get(values["pathology"].upper())
        if pathology is None:
            raise DatasetError(
                f"{where}: pathology {values['pathology']!r} is not one of "
                f"{', '.join(CBIS_PATHOLOGY)}"
            )
        path = _relative(where, "image file path", values["image file path"])
        seen = images_seen.setdefault(path, (where, patient, laterality, view, [], []))
        if seen[1:4] != (patient, laterality, view):
            raise DatasetError(
                f"{where}: image {path} has another patient, breast or view than at {seen[0]}"
            )
        seen[4].append(int(values["assessment"]))
        seen[5].append(pathology)

    rows: list[Row] = []
    skipped: Counter[str] = Counter()
    for path, (_, patient, laterality, view, assessments, pathologies) in images_seen.items():
        if task == "birads":
            if max(assessments) == 0:
                skipped[INCOMPLETE] += 1
                continue
            label = f"BI-RADS {max(assessments)}"
        else:
            label = "malignant" if "malignant" in pathologies else "benign"
        test = path.parts[0].lower().startswith(("mass-test", "calc-test"))
        rows.append(
            Row(images / path, patient, patient, laterality, view, label, "test" if test else None)
        )
    return Converted(tuple(rows), dict(skipped))


# --- CMMD --------------------------------------------------------------------------------


def read_cmmd(label_file: Path, images: Path, task: str) -> Converted:
    """CMMD: the clinical table (``CMMD_clinicaldata_revision``) saved as CSV, one row per
    breast with a lesion (``ID1``, ``LeftRight``, ``classification`` Benign/Malignant). The
    images are DICOM files under ``images/<ID1>/``; each file takes the label of its
    patient's row for the breast in its header (ImageLaterality, else Laterality); the view
    comes from ViewPosition or the View Code Sequence. Files of a breast without a row are
    left out, and so are rows whose breast has no file.
    """
    _check_task(
        "CMMD",
        task,
        {
            "benign_malignant": None,
            "normal_abnormal": "every CMMD breast has a lesion, none is normal",
        },
    )
    labels: dict[tuple[str, str], tuple[str, str]] = {}  # (ID1, L/R) -> (where, label)
    required = [("ID1",), ("LeftRight",), ("classification",)]
    for where, values in _table(label_file, required):
        patient = _plain(where, "ID1", values["ID1"])
        side = values["LeftRight"].upper()
        if side not in {"L", "R"}:
            raise DatasetError(f"{where}: LeftRight {values['LeftRight']!r} is not L or R")
        try:
            label = class_name("benign_malignant", values["classification"])
        except DatasetError as exc:
            raise DatasetError(f"{where}: {exc}") from None
        earlier = labels.setdefault((patient, side), (where, label))
        if earlier[1] != label:
            raise DatasetError(f"{where}: contradicts {earlier[0]} for the same breast")

    rows: list[Row] = []
    skipped: Counter[str] = Counter()
    used: set[tuple[str, str]] = set()
    for patient in dict.fromkeys(patient for patient, _ in labels):
        folder = images / patient
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".dcm" and p.is_file())
        for path in files:
            try:
                ds = dcmread(path, stop_before_pixels=True)
            except (InvalidDicomError, OSError, ValueError, EOFError):
                skipped[UNREADABLE] += 1
                continue
            found = laterality_of(ds)
            if found is None:
                skipped[NO_LATERALITY] += 1
                continue
            side = found
            if (patient, side) not in labels:
                skipped[NO_CLINICAL_ROW] += 1
                continue
            used.add((patient, side))
            study = str(ds.get("StudyInstanceUID") or "").strip() or patient
            label = labels[(patient, side)][1]
            rows.append(Row(path, patient, study, side, view_of(ds), label))
    skipped[NO_IMAGES] += len(labels.keys() - used)
    return Converted(tuple(rows), {reason: n for reason, n in skipped.items() if n})


# --- VinDr-Mammo -------------------------------------------------------------------------


def read_vindr_mammo(label_file: Path, images: Path, task: str) -> Converted:
    """VinDr-Mammo: ``breast-level_annotations.csv``, one row per image, the file
    ``images/<study_id>/<image_id>.dicom``. The dataset has one study per woman, so the
    study ID is also the patient ID. birads: ``breast_birads`` as published.
    normal_abnormal: BI-RADS 1 (negative) is normal and BI-RADS 2 to 5 abnormal, so a
    benign finding (BI-RADS 2) counts as abnormal: the task asks whether there is anything
    to see, not whether it is suspicious. The published split is kept for its test set
    (split "test"); "training" images get no split, for the trainer to divide by patient.
    """
    _check_task(
        "VinDr-Mammo",
        task,
        {
            "birads": None,
            "normal_abnormal": None,
            "benign_malignant": "VinDr-Mammo has BI-RADS assessments but no pathology",
        },
    )
    required = [
        ("study_id",),
        ("image_id",),
        ("laterality",),
        ("view_position",),
        ("breast_birads",),
        ("split",),
    ]
    rows: list[Row] = []
    skipped: Counter[str] = Counter()
    seen: dict[tuple[str, str], str] = {}
    for where, values in _table(label_file, required):
        study = _plain(where, "study_id", values["study_id"])
        image_id = _plain(where, "image_id", values["image_id"])
        earlier = seen.setdefault((study, image_id), where)
        if earlier != where:
            raise DatasetError(f"{where}: image {image_id} is listed already at {earlier}")
        laterality = values["laterality"].upper()
        if laterality not in {"L", "R"}:
            raise DatasetError(f"{where}: laterality {values['laterality']!r} is not L or R")
        view = values["view_position"].upper()
        if view not in VIEWS:
            raise DatasetError(f"{where}: view_position {values['view_position']!r} is not a view")
        try:
            birads = class_name("birads", values["breast_birads"])
        except DatasetError as exc:
            raise DatasetError(f"{where}: {exc}") from None
        published = values["split"].lower()
        if published not in VINDR_SPLITS:
            raise DatasetError(f"{where}: split {values['split']!r} is not training or test")
        image = images / study / f"{image_id}.dicom"
        if not image.is_file():
            skipped[IMAGE_MISSING] += 1
            continue
        if task == "normal_abnormal":
            label = "normal" if birads == "BI-RADS 1" else "abnormal"
        else:
            label = birads
        rows.append(Row(image, study, study, laterality, view, label, VINDR_SPLITS[published]))
    return Converted(tuple(rows), dict(skipped))


READERS: dict[str, Reader] = {
    "mini-mias": read_mini_mias,
    "cbis-ddsm": read_cbis_ddsm,
    "cmmd": read_cmmd,
    "vindr-mammo": read_vindr_mammo,
}
