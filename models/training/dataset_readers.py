"""Public mammography datasets' label files turned into manifest rows (``models.training.dataset``).

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
  refuses fields that would lead outside it;
- carries the lesions the dataset outlines as ``Row.annotations`` (``models.training.annotations``),
  in the image's source pixels, with type and pathology where given; an image without any (a
  normal image, a lesion without coordinates) keeps its image label alone;
- carries the breast's density as ``Row.density`` where the dataset gives it, whatever the
  task, so that an evaluation can break lesion detection down by density.

Nothing is logged: the label files hold patient identifiers.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from PIL import Image, UnidentifiedImageError
from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from models.serving.breast_view import laterality_of, view_of
from models.serving.checkpoint import TASKS
from models.training.annotations import Annotation, Box, Circle, Mask
from models.training.dataset import DatasetError, Row, class_name

MIAS_CLASSES = ("CALC", "CIRC", "SPIC", "MISC", "ARCH", "ASYM", "NORM")
MIAS_NAME = re.compile(r"mdb(\d{3})")
CBIS_PATHOLOGY = {"MALIGNANT": "malignant", "BENIGN": "benign", "BENIGN_WITHOUT_CALLBACK": "benign"}
CBIS_LATERALITY = {"LEFT": "L", "RIGHT": "R"}
VINDR_SPLITS: dict[str, str | None] = {"training": None, "test": "test"}
# Lesion types (models.training.annotations.LESION_TYPES) by each dataset's own names.
MIAS_TYPES = {
    "CIRC": "mass",
    "SPIC": "mass",
    "MISC": "mass",
    "CALC": "calcification",
    "ARCH": "architectural distortion",
    "ASYM": "asymmetry",
}
MIAS_TISSUES = {"F": "fatty", "G": "fatty-glandular", "D": "dense-glandular"}
NO_DENSITY = "no breast density given"
MIAS_SIZE = 1024  # every mini-MIAS image is 1024 x 1024 pixels (its Info.txt says so)
CBIS_TYPES = {"mass": "mass", "calcification": "calcification"}
VINDR_FINDINGS = "finding_annotations.csv"
VINDR_TYPES = {
    "mass": "mass",
    "suspicious calcification": "calcification",
    "architectural distortion": "architectural distortion",
    "asymmetry": "asymmetry",
    "focal asymmetry": "asymmetry",
    "global asymmetry": "asymmetry",
}
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
    label_file: Path,
    required: Sequence[tuple[str, ...]],
    optional: Sequence[tuple[str, ...]] = (),
) -> Iterator[tuple[str, dict[str, str]]]:
    """Data rows of a CSV as ("FILE: row N", {required column's first name: value}).

    Column names match ignoring case, spaces and underscores; each required column may be
    spelled in any of its alternatives. Optional columns, when absent, read as "". Rows are
    numbered as in a spreadsheet (header = 1).
    """
    try:
        with label_file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [_key(name) for name in next(reader, [])]
            columns: dict[str, int | None] = {}
            missing = []
            for names in required:
                found = [header.index(_key(n)) for n in names if _key(n) in header]
                if found:
                    columns[names[0]] = found[0]
                else:
                    missing.append(" or ".join(repr(n) for n in names))
            if missing:
                raise DatasetError(f"{label_file.name}: missing column(s) {', '.join(missing)}")
            for names in optional:
                found = [header.index(_key(n)) for n in names if _key(n) in header]
                columns[names[0]] = found[0] if found else None
            count = 0
            for number, record in enumerate(reader, 2):
                if not any(value.strip() for value in record):
                    continue
                count += 1
                values = {
                    name: record[index].strip() if index is not None and index < len(record) else ""
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
    density_fgd: the background tissue (F fatty, G fatty-glandular, D dense-glandular),
    which is also every row's density whatever the task.
    Annotations: a circle per lesion row with coordinates (x, y, r; y counts from the bottom
    edge, so row = height - 1 - y, the height read from the image's header, else 1024),
    typed CIRC/SPIC/MISC mass, CALC calcification, ARCH architectural distortion, ASYM
    asymmetry, B benign and M malignant; rows without coordinates (``*NOTE 3*``: spread
    calcifications) give none.
    """
    _check_task(
        "mini-MIAS",
        task,
        {
            "normal_abnormal": None,
            "benign_malignant": None,
            "density_fgd": None,
            "birads": "mini-MIAS has no BI-RADS assessments",
            "density": "mini-MIAS gives background tissue F/G/D (density_fgd), not BI-RADS",
        },
    )
    # name -> (where, class, severity, (x, y, r) or None)
    lesions: dict[str, list[tuple[str, str, str, tuple[float, float, float] | None]]] = {}
    tissues: dict[str, str] = {}
    for where, name, abnormality, severity, coordinates, tissue in _mias_lines(label_file):
        if tissue and tissue not in MIAS_TISSUES:
            raise DatasetError(f"{where}: background tissue {tissue!r} is not F, G or D")
        if tissue:
            tissues[name] = tissue
        if not MIAS_NAME.fullmatch(name):
            raise DatasetError(f"{where}: name {name!r} is not mdbNNN")
        if abnormality not in MIAS_CLASSES:
            raise DatasetError(
                f"{where}: abnormality {abnormality!r} is not one of {', '.join(MIAS_CLASSES)}"
            )
        if abnormality != "NORM" and severity not in {"B", "M"}:
            raise DatasetError(f"{where}: {abnormality} lesion without severity B or M")
        circle = None if abnormality == "NORM" else _mias_circle(where, *coordinates)
        lesions.setdefault(name, []).append((where, abnormality, severity, circle))

    rows: list[Row] = []
    skipped: Counter[str] = Counter()
    for name, found in lesions.items():
        normal = [where for where, abnormality, _, _ in found if abnormality == "NORM"]
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
        if task == "density_fgd":
            if name not in tissues:
                skipped[NO_DENSITY] += 1
                continue
            label = MIAS_TISSUES[tissues[name]]
        elif task == "normal_abnormal":
            label = "normal" if normal else "abnormal"
        else:
            label = "malignant" if any(s == "M" for _, _, s, _ in found) else "benign"
        number = int(name[3:])
        woman = f"mias-woman-{(number + 1) // 2:03d}"
        height = _image_height(image) or MIAS_SIZE
        annotations = tuple(
            Annotation(
                Circle(circle[0], height - 1 - circle[1], circle[2]),
                MIAS_TYPES[abnormality],
                "malignant" if severity == "M" else "benign",
            )
            for _, abnormality, severity, circle in found
            if circle is not None
        )
        side = "R" if number % 2 else "L"
        density = MIAS_TISSUES.get(tissues.get(name, ""))
        rows.append(Row(image, woman, woman, side, "MLO", label, None, annotations, density))
    return Converted(tuple(rows), dict(skipped))


def _mias_circle(where: str, x: str, y: str, r: str) -> tuple[float, float, float] | None:
    """(x, y, r) of a lesion row; None where it gives none (empty, or a ``*NOTE n*``)."""
    if not (x and y and r) or x.startswith("*"):
        return None
    try:
        values = float(x), float(y), float(r)
    except ValueError:
        raise DatasetError(f"{where}: coordinates {x!r} {y!r} {r!r} are not numbers") from None
    if values[2] <= 0 or min(values) < 0:
        raise DatasetError(f"{where}: coordinates {x} {y} {r} are not a circle in the image")
    return values


def _image_height(image: Path) -> int | None:
    """Rows of a PNG/PGM from its header (None where it cannot be read)."""
    try:
        with Image.open(image) as opened:
            return int(opened.height)
    except (OSError, UnidentifiedImageError):
        return None


def _mias_lines(
    label_file: Path,
) -> Iterator[tuple[str, str, str, str, tuple[str, str, str], str]]:
    """(where, name, abnormality, severity, (x, y, r) as written, background tissue F/G/D or
    empty) per row, from either form."""
    try:
        text = label_file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {label_file.name}: {exc}") from exc
    first = next((line for line in text.splitlines() if line.strip()), "")
    if "," in first:
        required = [("Name", "REFNUM"), ("Abnormality", "CLASS"), ("Type", "SEVERITY")]
        optional = [("x", "X"), ("y", "Y"), ("r", "RADIUS"), ("Background Tissue", "BG")]
        for where, values in _table(label_file, required, optional):
            yield (
                where,
                values["Name"].lower(),
                values["Abnormality"].upper(),
                values["Type"].upper(),
                (values["x"], values["y"], values["r"]),
                values["Background Tissue"].upper(),
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
        x, y, r = [*parts[4:7], "", "", ""][:3]
        yield where, parts[0].lower(), parts[2].upper(), severity, (x, y, r), parts[1].upper()
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
    highest assessment is 0 (incomplete) is left out for birads; density: ``breast_density``
    1-4 as BI-RADS composition a-d (an image without one is left out), also every row's
    density whatever the task (none where its abnormality rows disagree, which task density
    refuses). Images of the published test
    sets (path starting ``Mass-Test``/``Calc-Test``) get split "test"; the others none.
    Annotations: per abnormality its ``ROI mask file path`` (a mask with the full image's
    rows and columns, under ``images`` like the image), typed by ``abnormality type`` (mass,
    calcification), with its pathology. The paths are kept as published: in some TCIA
    downloads the ROI mask and the cropped image of a case trade places, so a user of the
    mask checks that its size is the image's.
    """
    _check_task(
        "CBIS-DDSM",
        task,
        {
            "benign_malignant": None,
            "birads": None,
            "density": None,
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
    optional = [
        ("abnormality type",),
        ("ROI mask file path",),
        ("breast_density", "breast density"),
    ]
    images_seen: dict[
        PurePosixPath,
        tuple[str, str, str, str, list[int], list[str], list[Annotation], list[str]],
    ] = {}
    for where, values in _table(label_file, required, optional):
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
        seen = images_seen.setdefault(path, (where, patient, laterality, view, [], [], [], []))
        if seen[1:4] != (patient, laterality, view):
            raise DatasetError(
                f"{where}: image {path} has another patient, breast or view than at {seen[0]}"
            )
        density = values["breast_density"]
        if density and density not in {"1", "2", "3", "4"}:
            raise DatasetError(f"{where}: breast_density {density!r} is not 1 to 4")
        if density:
            seen[7].append(density)
        seen[4].append(int(values["assessment"]))
        seen[5].append(pathology)
        if values["ROI mask file path"]:
            kind = values["abnormality type"].lower()
            if kind and kind not in CBIS_TYPES:
                raise DatasetError(
                    f"{where}: abnormality type {values['abnormality type']!r} is not "
                    "mass or calcification"
                )
            roi = _relative(where, "ROI mask file path", values["ROI mask file path"])
            seen[6].append(Annotation(Mask(images / roi), CBIS_TYPES.get(kind), pathology))

    rows: list[Row] = []
    skipped: Counter[str] = Counter()
    for path, seen in images_seen.items():
        _, patient, laterality, view, assessments, pathologies, annotations, densities = seen
        if task == "density":
            if not densities:
                skipped[NO_DENSITY] += 1
                continue
            if len(set(densities)) > 1:
                raise DatasetError(f"{seen[0]}: image {path} has breast densities {densities}")
            label = "abcd"[int(densities[0]) - 1]
        elif task == "birads":
            if max(assessments) == 0:
                skipped[INCOMPLETE] += 1
                continue
            label = f"BI-RADS {max(assessments)}"
        else:
            label = "malignant" if "malignant" in pathologies else "benign"
        test = path.parts[0].lower().startswith(("mass-test", "calc-test"))
        split = "test" if test else None
        composition = "abcd"[int(densities[0]) - 1] if len(set(densities)) == 1 else None
        rows.append(
            Row(
                images / path,
                patient,
                patient,
                laterality,
                view,
                label,
                split,
                tuple(annotations),
                composition,
            )
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
    density: ``breast_density`` (DENSITY A to D) as BI-RADS composition a-d, also every
    row's density whatever the task.
    Annotations: the boxes of ``finding_annotations.csv`` beside the label file, when it is
    there (xmin, ymin, xmax, ymax in the image's pixels; "No Finding" rows have none), typed
    by the first of their ``finding_categories`` that is a lesion type (Mass, Suspicious
    Calcification, Architectural Distortion, Asymmetry and its Focal/Global forms); other
    findings (lymph node, skin thickening, ...) keep their box with no type. No pathology.
    """
    _check_task(
        "VinDr-Mammo",
        task,
        {
            "birads": None,
            "normal_abnormal": None,
            "density": None,
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
    boxes = _vindr_boxes(label_file.parent / VINDR_FINDINGS)
    rows: list[Row] = []
    skipped: Counter[str] = Counter()
    seen: dict[tuple[str, str], str] = {}
    for where, values in _table(label_file, required, [("breast_density",)]):
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
        density: str | None = None
        if values["breast_density"]:
            try:
                density = class_name("density", values["breast_density"].lower())
            except DatasetError as exc:
                raise DatasetError(f"{where}: breast_density: {exc}") from None
        if task == "density":
            if density is None:
                skipped[NO_DENSITY] += 1
                continue
            label = density
        elif task == "normal_abnormal":
            label = "normal" if birads == "BI-RADS 1" else "abnormal"
        else:
            label = birads
        split = VINDR_SPLITS[published]
        annotations = tuple(boxes.get((study, image_id), ()))
        rows.append(Row(image, study, study, laterality, view, label, split, annotations, density))
    return Converted(tuple(rows), dict(skipped))


def _vindr_boxes(findings: Path) -> dict[tuple[str, str], list[Annotation]]:
    """(study_id, image_id) -> its boxes, from ``finding_annotations.csv`` (none if absent)."""
    boxes: dict[tuple[str, str], list[Annotation]] = {}
    if not findings.is_file():
        return boxes
    required = [("study_id",), ("image_id",), ("finding_categories",)]
    required += [("xmin",), ("ymin",), ("xmax",), ("ymax",)]
    for where, values in _table(findings, required):
        corners = [values[name] for name in ("xmin", "ymin", "xmax", "ymax")]
        if not any(corners):  # "No Finding"
            continue
        try:
            left, top, right, bottom = (float(value) for value in corners)
        except ValueError:
            raise DatasetError(f"{where}: box {' '.join(corners)!r} is not four numbers") from None
        if not (0 <= left <= right and 0 <= top <= bottom):
            raise DatasetError(f"{where}: box {' '.join(corners)!r} is not xmin ymin xmax ymax")
        categories = re.findall(r"[A-Za-z][A-Za-z ]*[A-Za-z]", values["finding_categories"])
        kinds = [VINDR_TYPES[c.lower()] for c in categories if c.lower() in VINDR_TYPES]
        key = (values["study_id"], values["image_id"])
        annotation = Annotation(Box(left, top, right, bottom), kinds[0] if kinds else None)
        boxes.setdefault(key, []).append(annotation)
    return boxes


READERS: dict[str, Reader] = {
    "mini-mias": read_mini_mias,
    "cbis-ddsm": read_cbis_ddsm,
    "cmmd": read_cmmd,
    "vindr-mammo": read_vindr_mammo,
}
