"""Public datasets' label files to manifest rows: each format as published, written small and
synthetic, with the rows, the collapse of lesion rows, the skips and the refusals checked."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from models.synthetic import SyntheticPatient, mammogram, write
from models.training.annotations import Annotation, Box, Circle, Mask
from models.training.dataset import DatasetError, Row, read_manifest, write_manifest
from models.training.dataset_readers import (
    IMAGE_MISSING,
    INCOMPLETE,
    NO_CLINICAL_ROW,
    NO_IMAGES,
    NO_LATERALITY,
    NORMAL_IMAGE,
    READERS,
    UNREADABLE,
    Converted,
    read_cbis_ddsm,
    read_cmmd,
    read_mini_mias,
    read_vindr_mammo,
)


def table(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def touch(*paths: Path) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"synthetic")


# --- mini-MIAS ----------------------------------------------------------------------------

MIAS_HEADER = ["Name", "Background Tissue", "Abnormality", "Type", "x", "y", "r"]
INFO_TXT = """\
REFNUM BG CLASS SEVERITY X Y RADIUS
Synthetic Info.txt written by the tests; the lines below follow the published form.

mdb001 G CIRC B 535 425 197
mdb001 G CALC M 300 300 20
mdb002 G NORM
mdb003 D SPIC B 100 100 10
mdb006 F CALC B
mdb008 F NORM
"""


# The lesions of INFO_TXT: y counts from the bottom of a 1024-row image, so row = 1023 - y.
MDB001 = (
    Annotation(Circle(535, 598, 197), "mass", "benign"),
    Annotation(Circle(300, 723, 20), "calcification", "malignant"),
)
MDB003 = (Annotation(Circle(100, 923, 10), "mass", "benign"),)
# Background tissue G and D as every row's density, whatever the task
G, D = "fatty-glandular", "dense-glandular"


def mias_images(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    touch(images / "mdb001.png", images / "mdb002.png", images / "mdb003.pgm")
    touch(images / "mdb006.png")  # mdb008 has no image
    return images


# label rows the mini-MIAS tests share (REFNUM, tissue, class, severity, x, y, radius)
MDB001_CIRC = ["mdb001", "G", "CIRC", "B", "535", "425", "197"]
MDB002_NORMAL = ["mdb002", "G", "NORM", "", "", "", ""]
MDB003_SPIC = ["mdb003", "D", "SPIC", "B", "100", "100", "10"]


def test_mias_csv_normal_abnormal_gives_one_row_per_image(tmp_path: Path) -> None:
    images = mias_images(tmp_path)
    labels = table(
        tmp_path / "labels.csv",
        MIAS_HEADER,
        [
            MDB001_CIRC,
            ["mdb001", "G", "CALC", "M", "300", "300", "20"],
            MDB002_NORMAL,
            MDB003_SPIC,
            ["mdb008", "F", "NORM", "", "", "", ""],
        ],
    )
    converted = read_mini_mias(labels, images, "normal_abnormal")
    woman1, woman2 = "mias-woman-001", "mias-woman-002"
    assert converted.rows == (
        Row(images / "mdb001.png", woman1, woman1, "R", "MLO", "abnormal", None, MDB001, G),
        Row(images / "mdb002.png", woman1, woman1, "L", "MLO", "normal", None, (), G),
        Row(images / "mdb003.pgm", woman2, woman2, "R", "MLO", "abnormal", None, MDB003, D),
    )
    assert converted.skipped == {IMAGE_MISSING: 1}


def test_mias_info_txt_benign_malignant_collapses_lesions_and_skips_normals(
    tmp_path: Path,
) -> None:
    images = mias_images(tmp_path)
    info = tmp_path / "Info.txt"
    info.write_text(INFO_TXT, encoding="utf-8")
    converted = read_mini_mias(info, images, "benign_malignant")
    assert converted.rows == (
        # two lesion rows, one malignant: the image is malignant
        Row(
            images / "mdb001.png",
            "mias-woman-001",
            "mias-woman-001",
            "R",
            "MLO",
            "malignant",
            None,
            MDB001,
            G,
        ),
        Row(
            images / "mdb003.pgm",
            "mias-woman-002",
            "mias-woman-002",
            "R",
            "MLO",
            "benign",
            None,
            MDB003,
            D,
        ),
        # a CALC without coordinates: the image label alone
        Row(
            images / "mdb006.png",
            "mias-woman-003",
            "mias-woman-003",
            "L",
            "MLO",
            "benign",
            None,
            (),
            "fatty",
        ),
    )
    assert converted.skipped == {NORMAL_IMAGE: 2}  # mdb002, mdb008 (before its image is sought)


@pytest.mark.parametrize("form", ["Info.txt", "labels.csv"])
def test_mias_background_tissue_is_the_density_fgd_label(tmp_path: Path, form: str) -> None:
    """Every image (normal or not) gets its background tissue as its class, from either form;
    mini-MIAS has no BI-RADS composition, so task density is refused with the reason."""
    images = mias_images(tmp_path)
    if form == "Info.txt":
        labels = tmp_path / "Info.txt"
        labels.write_text(INFO_TXT, encoding="utf-8")
    else:
        labels = table(
            tmp_path / "labels.csv",
            MIAS_HEADER,
            [
                MDB001_CIRC,
                MDB002_NORMAL,
                MDB003_SPIC,
                ["mdb006", "F", "CALC", "B", "", "", ""],
            ],
        )
    converted = read_mini_mias(labels, images, "density_fgd")
    assert {row.path.stem: row.label for row in converted.rows} == {
        "mdb001": "fatty-glandular",
        "mdb002": "fatty-glandular",
        "mdb003": "dense-glandular",
        "mdb006": "fatty",
    }
    with pytest.raises(DatasetError, match="density_fgd"):
        read_mini_mias(labels, images, "density")


def test_mias_unknown_background_tissue_names_its_row(tmp_path: Path) -> None:
    info = tmp_path / "Info.txt"
    info.write_text("mdb001 X NORM\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="line 1: background tissue 'X'"):
        read_mini_mias(info, mias_images(tmp_path), "density_fgd")


def test_mias_prefers_png_over_pgm(tmp_path: Path) -> None:
    images = tmp_path / "images"
    touch(images / "mdb004.png", images / "mdb004.pgm")
    info = tmp_path / "Info.txt"
    info.write_text("mdb004 D NORM\n", encoding="utf-8")
    (row,) = read_mini_mias(info, images, "normal_abnormal").rows
    assert row.path == images / "mdb004.png"
    assert (row.patient_id, row.laterality, row.label) == ("mias-woman-002", "L", "normal")


def test_mias_has_no_birads(tmp_path: Path) -> None:
    info = tmp_path / "Info.txt"
    info.write_text(INFO_TXT, encoding="utf-8")
    with pytest.raises(DatasetError, match="mini-MIAS cannot be read for task 'birads'"):
        read_mini_mias(info, mias_images(tmp_path), "birads")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mdb001 G CIRC B 1 2 3\nmdb002 G TUMOUR B\n", r"Info\.txt: line 2: abnormality 'TUMOUR'"),
        ("REFNUM BG CLASS\nmdb001 G CIRC\n", r"Info\.txt: line 2: CIRC lesion without severity"),
        ("mdb001 G\n", r"Info\.txt: line 1: expected name, background tissue and abnormality"),
        ("mdb1 G NORM\n", r"Info\.txt: line 1: name 'mdb1' is not mdbNNN"),
        ("mdb001 G NORM\nmdb001 G CIRC B\n", r"line 1: mdb001 is listed both as normal"),
        ("REFNUM BG CLASS SEVERITY\nno mammograms here\n", r"Info\.txt: no mdb lines"),
    ],
)
def test_mias_malformed_info_txt(tmp_path: Path, text: str, message: str) -> None:
    info = tmp_path / "Info.txt"
    info.write_text(text, encoding="utf-8")
    with pytest.raises(DatasetError, match=message):
        read_mini_mias(info, mias_images(tmp_path), "normal_abnormal")


def test_mias_circles_use_the_image_height_and_skip_notes(tmp_path: Path) -> None:
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    Image.new("L", (40, 50)).save(images / "mdb005.png")  # a 50-row image: row = 49 - y
    info = tmp_path / "Info.txt"
    info.write_text(
        "mdb005 F ARCH M 10 5 4\nmdb005 F ASYM B 20 30 6.5\nmdb005 F CALC M *NOTE 3*\n"
        "mdb005 F MISC B 1 2 3\nmdb005 F SPIC M 3 4 5\n",
        encoding="utf-8",
    )
    (row,) = read_mini_mias(info, images, "benign_malignant").rows
    assert row.label == "malignant"
    assert row.annotations == (
        Annotation(Circle(10, 44, 4), "architectural distortion", "malignant"),
        Annotation(Circle(20, 19, 6.5), "asymmetry", "benign"),
        Annotation(Circle(1, 47, 3), "mass", "benign"),
        Annotation(Circle(3, 45, 5), "mass", "malignant"),
    )


@pytest.mark.parametrize(
    ("coordinates", "message"),
    [("1 two 3", r"line 1: coordinates '1' 'two' '3'"), ("1 2 0", "line 1: .* not a circle")],
)
def test_mias_malformed_coordinates(tmp_path: Path, coordinates: str, message: str) -> None:
    info = tmp_path / "Info.txt"
    info.write_text(f"mdb001 G CIRC B {coordinates}\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=message):
        read_mini_mias(info, mias_images(tmp_path), "normal_abnormal")


def test_mias_malformed_csv_names_the_row(tmp_path: Path) -> None:
    labels = table(
        tmp_path / "labels.csv",
        MIAS_HEADER,
        [["mdb001", "G", "CIRC", "B", "1", "2", "3"], ["mdb002", "G", "CIRC", "X", "", "", ""]],
    )
    with pytest.raises(DatasetError, match=r"labels\.csv: row 3: CIRC lesion without severity"):
        read_mini_mias(labels, mias_images(tmp_path), "benign_malignant")
    header_only = table(tmp_path / "other.csv", ["Name", "Background Tissue", "x"], [])
    with pytest.raises(DatasetError, match=r"other\.csv: missing column\(s\) 'Abnormality'"):
        read_mini_mias(header_only, mias_images(tmp_path), "benign_malignant")


# --- CBIS-DDSM ----------------------------------------------------------------------------

# The mass and the calcification description files differ in their density column's spelling
# and in the two columns that describe the lesion; both end with these.
CBIS_LAST_COLUMNS = (
    "assessment",
    "pathology",
    "subtlety",
    "image file path",
    "cropped image file path",
    "ROI mask file path",
)
CBIS_MASS_HEADER = [
    "patient_id",
    "breast_density",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "mass shape",
    "mass margins",
    *CBIS_LAST_COLUMNS,
]
CBIS_CALC_HEADER = [
    "patient_id",
    "breast density",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "calc type",
    "calc distribution",
    *CBIS_LAST_COLUMNS,
]
# Published form: <case folder>/<study UID>/<series UID>/000000.dcm (synthetic UIDs here).
P1_CC = "Mass-Training_P_99001_LEFT_CC/1.2.999.1/1.2.999.2/000000.dcm"
P1_MLO = "Mass-Training_P_99001_LEFT_MLO/1.2.999.3/1.2.999.4/000000.dcm"
P2_CC = "Mass-Training_P_99002_RIGHT_CC/1.2.999.5/1.2.999.6/000000.dcm"


def mass(
    patient: str, side: str, view: str, n: int, assessment: int, pathology: str, path: str
) -> list[str]:
    return [patient, "2", side, view, str(n), "mass", "OVAL", "CIRCUMSCRIBED", str(assessment),
            pathology, "3", path, "crop.dcm", roi_path(patient, side, view, n)]  # fmt: skip


def roi_path(patient: str, side: str, view: str, n: int) -> str:
    return f"Mass-Training_{patient}_{side}_{view}_{n}/1.2.999.9/1.2.999.10/000001.dcm"


def roi(images: Path, patient: str, side: str, view: str, n: int, pathology: str) -> Annotation:
    return Annotation(Mask(images / roi_path(patient, side, view, n)), "mass", pathology)


def changed(row: list[str], index: int, value: str) -> list[str]:
    return [value if i == index else v for i, v in enumerate(row)]


def cbis_train(tmp_path: Path) -> Path:
    return table(
        tmp_path / "mass_case_description_train_set.csv",
        CBIS_MASS_HEADER,
        [
            mass("P_99001", "LEFT", "CC", 1, 3, "BENIGN", P1_CC + "\n"),  # as published: a newline
            mass("P_99001", "LEFT", "CC", 2, 5, "MALIGNANT", " " + P1_CC),
            mass("P_99001", "LEFT", "MLO", 1, 4, "BENIGN_WITHOUT_CALLBACK", P1_MLO),
            mass("P_99002", "RIGHT", "CC", 1, 0, "BENIGN", P2_CC),
        ],
    )


def test_cbis_breast_density_is_the_composition(tmp_path: Path) -> None:
    """breast_density 1-4 is BI-RADS composition a-d; a density outside 1-4 names its row."""
    images = tmp_path / "CBIS-DDSM"
    converted = read_cbis_ddsm(cbis_train(tmp_path), images, "density")
    assert [row.label for row in converted.rows] == ["b", "b", "b"]  # the fixture's "2"
    rows = [mass("P_99003", "LEFT", "CC", 1, 3, "BENIGN", P2_CC)]
    rows[0][1] = "4"
    dense = table(tmp_path / "dense.csv", CBIS_MASS_HEADER, rows)
    assert [r.label for r in read_cbis_ddsm(dense, images, "density").rows] == ["d"]
    rows[0][1] = "5"
    wrong = table(tmp_path / "wrong.csv", CBIS_MASS_HEADER, rows)
    with pytest.raises(DatasetError, match="row 2: breast_density '5'"):
        read_cbis_ddsm(wrong, images, "density")


def test_cbis_benign_malignant_collapses_abnormalities_of_one_image(tmp_path: Path) -> None:
    images = tmp_path / "CBIS-DDSM"
    converted = read_cbis_ddsm(cbis_train(tmp_path), images, "benign_malignant")
    # breast_density 2 is every row's density, whatever the task
    assert converted.rows == (
        Row(images / P1_CC, "P_99001", "P_99001", "L", "CC", "malignant", None, (
            roi(images, "P_99001", "LEFT", "CC", 1, "benign"),
            roi(images, "P_99001", "LEFT", "CC", 2, "malignant"),
        ), "b"),
        Row(images / P1_MLO, "P_99001", "P_99001", "L", "MLO", "benign", None, (
            roi(images, "P_99001", "LEFT", "MLO", 1, "benign"),
        ), "b"),
        Row(images / P2_CC, "P_99002", "P_99002", "R", "CC", "benign", None, (
            roi(images, "P_99002", "RIGHT", "CC", 1, "benign"),
        ), "b"),
    )  # fmt: skip
    assert converted.skipped == {}


def test_cbis_birads_takes_the_highest_assessment_and_skips_incomplete(tmp_path: Path) -> None:
    images = tmp_path / "CBIS-DDSM"
    converted = read_cbis_ddsm(cbis_train(tmp_path), images, "birads")
    assert [(row.path, row.label) for row in converted.rows] == [
        (images / P1_CC, "BI-RADS 5"),
        (images / P1_MLO, "BI-RADS 4"),
    ]
    assert converted.skipped == {INCOMPLETE: 1}


def test_cbis_calc_test_set_gets_the_test_split(tmp_path: Path) -> None:
    path = "Calc-Test_P_99003_RIGHT_MLO/1.2.999.7/1.2.999.8/000000.dcm"
    calc = ["P_99003", "3", "RIGHT", "MLO", "1", "calcification", "PLEOMORPHIC", "CLUSTERED",
            "4", "MALIGNANT", "2", path, "crop.dcm", "roi.dcm"]  # fmt: skip
    labels = table(tmp_path / "calc_case_description_test_set.csv", CBIS_CALC_HEADER, [calc])
    images = tmp_path / "CBIS-DDSM"
    converted = read_cbis_ddsm(labels, images, "benign_malignant")
    mask = Annotation(Mask(images / "roi.dcm"), "calcification", "malignant")
    assert converted.rows == (
        Row(images / path, "P_99003", "P_99003", "R", "MLO", "malignant", "test", (mask,), "c"),
    )


def test_cbis_without_roi_column_gives_image_labels_alone(tmp_path: Path) -> None:
    header = [c for c in CBIS_MASS_HEADER if c not in {"ROI mask file path", "abnormality type"}]
    row = mass("P_99001", "LEFT", "CC", 1, 3, "BENIGN", P1_CC)
    del row[13], row[5]
    labels = table(tmp_path / "mass_case_description_train_set.csv", header, [row])
    (converted,) = read_cbis_ddsm(labels, tmp_path, "benign_malignant").rows
    assert converted.annotations == () and converted.label == "benign"


def test_cbis_has_no_normal_images(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="every CBIS-DDSM image has a lesion"):
        read_cbis_ddsm(cbis_train(tmp_path), tmp_path, "normal_abnormal")
    with pytest.raises(DatasetError, match="unknown task 'volume'"):
        read_cbis_ddsm(cbis_train(tmp_path), tmp_path, "volume")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (mass("P_99001", "LEFT", "CC", 1, 3, "UNPROVEN", P1_CC), "row 3: pathology 'UNPROVEN'"),
        (mass("P_99001", "BOTH", "CC", 1, 3, "BENIGN", P1_CC), "row 3: left or right breast"),
        (mass("P_99001", "LEFT", "XX", 1, 3, "BENIGN", P1_CC), "row 3: image view 'XX'"),
        (mass("P_99001", "LEFT", "CC", 1, 6, "BENIGN", P1_CC), "row 3: assessment '6' is not"),
        (mass("", "LEFT", "CC", 1, 3, "BENIGN", P1_CC), "row 3: empty patient_id"),
        (mass("P_99001", "LEFT", "CC", 1, 3, "BENIGN", "../../etc/x.dcm"), "row 3: .* outside"),
        (mass("P_99001", "LEFT", "CC", 1, 3, "BENIGN", "/abs/x.dcm"), "row 3: .* outside"),
        (mass("P_99009", "LEFT", "CC", 2, 3, "BENIGN", P1_CC), "row 3: image .* another patient"),
        (changed(mass("P_99001", "LEFT", "CC", 2, 3, "BENIGN", P1_CC), 5, "cyst"),
         "row 3: abnormality type 'cyst'"),
        (changed(mass("P_99001", "LEFT", "CC", 2, 3, "BENIGN", P1_CC), 13, "../roi.dcm"),
         "row 3: ROI mask file path .* outside"),
    ],
)  # fmt: skip
def test_cbis_malformed_rows(tmp_path: Path, row: list[str], message: str) -> None:
    first = mass("P_99001", "LEFT", "CC", 1, 3, "BENIGN", P1_CC)
    labels = table(tmp_path / "mass_case_description_train_set.csv", CBIS_MASS_HEADER, [first, row])
    with pytest.raises(DatasetError, match=r"mass_case_description_train_set\.csv: " + message):
        read_cbis_ddsm(labels, tmp_path, "benign_malignant")


def test_cbis_missing_column_and_empty_file(tmp_path: Path) -> None:
    no_path = table(tmp_path / "a.csv", CBIS_MASS_HEADER[:-3], [])
    with pytest.raises(DatasetError, match=r"a\.csv: missing column\(s\) 'image file path'"):
        read_cbis_ddsm(no_path, tmp_path, "birads")
    empty = table(tmp_path / "b.csv", CBIS_MASS_HEADER, [])
    with pytest.raises(DatasetError, match=r"b\.csv: no rows"):
        read_cbis_ddsm(empty, tmp_path, "birads")
    with pytest.raises(DatasetError, match=r"cannot read c\.csv"):
        read_cbis_ddsm(tmp_path / "c.csv", tmp_path, "birads")


# --- CMMD ---------------------------------------------------------------------------------

CMMD_HEADER = ["ID1", "LeftRight", "Age", "number", "abnormality", "classification", "subtype"]
STUDY_1 = "1.2.826.0.1.3680043.99.100"
STUDY_3 = "1.2.826.0.1.3680043.99.300"


def cmmd(tmp_path: Path) -> tuple[Path, Path]:
    labels = table(
        tmp_path / "CMMD_clinicaldata_revision.csv",
        CMMD_HEADER,
        [
            ["D9-0001", "L", "50", "2", "mass", "Malignant", "Luminal A"],
            ["D9-0001", "R", "50", "2", "calcification", "Benign", ""],
            ["D9-0002", "L", "60", "2", "mass", "Benign", ""],  # no images for it
            ["D9-0003", "R", "45", "2", "both", "Malignant", "HER2-enriched"],
        ],
    )
    images = tmp_path / "CMMD"
    one = SyntheticPatient()
    series = images / "D9-0001" / "07-18-2010-NA-NA-00001" / "1.000000-NA-00001"
    for name, laterality, view in [("1-1", "L", "CC"), ("1-2", "L", "MLO"), ("1-3", "R", "CC")]:
        ds = mammogram(
            one, study_uid=STUDY_1, laterality=laterality, view=view, rows=32, columns=24
        )
        write(ds, series, f"{name}.dcm")
    no_position = mammogram(one, study_uid=STUDY_1, laterality="R", view="MLO", rows=32, columns=24)
    del no_position.ViewPosition  # the view then comes from the View Code Sequence
    write(no_position, series, "1-4.dcm")
    no_side = mammogram(one, study_uid=STUDY_1, laterality="R", view="CC", rows=32, columns=24)
    del no_side.ImageLaterality, no_side.Laterality
    write(no_side, series, "1-5.dcm")
    (series / "1-6.dcm").write_bytes(b"synthetic: not a DICOM file")
    (series / "notes.txt").write_text("not an image", encoding="utf-8")
    three = images / "D9-0003" / "study" / "series"
    for name, view in [("1-1", "CC"), ("1-2", "MLO")]:  # left views; the row is for the right
        ds = mammogram(study_uid=STUDY_3, laterality="L", view=view, rows=32, columns=24)
        write(ds, three, f"{name}.dcm")
    return labels, images


def test_cmmd_labels_each_dicom_by_its_breast(tmp_path: Path) -> None:
    labels, images = cmmd(tmp_path)
    converted = read_cmmd(labels, images, "benign_malignant")
    series = images / "D9-0001" / "07-18-2010-NA-NA-00001" / "1.000000-NA-00001"
    assert converted.rows == (
        Row(series / "1-1.dcm", "D9-0001", STUDY_1, "L", "CC", "malignant"),
        Row(series / "1-2.dcm", "D9-0001", STUDY_1, "L", "MLO", "malignant"),
        Row(series / "1-3.dcm", "D9-0001", STUDY_1, "R", "CC", "benign"),
        Row(series / "1-4.dcm", "D9-0001", STUDY_1, "R", "MLO", "benign"),
    )
    assert converted.skipped == {
        UNREADABLE: 1,
        NO_LATERALITY: 1,
        NO_CLINICAL_ROW: 2,  # D9-0003's left views
        NO_IMAGES: 2,  # D9-0002 L (no folder), D9-0003 R (no right views)
    }


def test_cmmd_has_no_normal_breasts(tmp_path: Path) -> None:
    labels, images = cmmd(tmp_path)
    with pytest.raises(DatasetError, match="every CMMD breast has a lesion"):
        read_cmmd(labels, images, "normal_abnormal")
    with pytest.raises(DatasetError, match="CMMD cannot be read for task 'birads'"):
        read_cmmd(labels, images, "birads")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (["D9-0001", "B", "50", "2", "mass", "Benign", ""], "row 3: LeftRight 'B' is not L or R"),
        (["D9-0001", "L", "50", "2", "mass", "Unknown", ""], "row 3: label 'Unknown'"),
        (["D9-0001", "L", "50", "2", "mass", "Benign", ""], "row 3: contradicts .*row 2"),
        (["../D9", "L", "50", "2", "mass", "Benign", ""], "row 3: ID1 '../D9' is not a plain"),
        (["", "L", "50", "2", "mass", "Benign", ""], "row 3: empty ID1"),
    ],
)
def test_cmmd_malformed_rows(tmp_path: Path, row: list[str], message: str) -> None:
    first = ["D9-0001", "L", "50", "2", "mass", "Malignant", "Luminal B"]
    labels = table(tmp_path / "clinical.csv", CMMD_HEADER, [first, row])
    with pytest.raises(DatasetError, match=r"clinical\.csv: " + message):
        read_cmmd(labels, tmp_path, "benign_malignant")


# --- VinDr-Mammo --------------------------------------------------------------------------

VINDR_HEADER = [
    "study_id", "series_id", "image_id", "laterality", "view_position", "height", "width",
    "breast_birads", "breast_density", "split",
]  # fmt: skip


def vindr_row(study: str, image: str, side: str, view: str, birads: str, split: str) -> list[str]:
    return [study, "synseries", image, side, view, "3518", "2800", birads, "DENSITY C", split]


def vindr(tmp_path: Path) -> tuple[Path, Path]:
    labels = table(
        tmp_path / "breast-level_annotations.csv",
        VINDR_HEADER,
        [
            vindr_row("synstudy01", "synimage01", "L", "CC", "BI-RADS 1", "training"),
            vindr_row("synstudy01", "synimage02", "R", "MLO", "BI-RADS 2", "training"),
            vindr_row("synstudy02", "synimage03", "L", "MLO", "BI-RADS 5", "test"),
            vindr_row("synstudy02", "synimage04", "R", "CC", "BI-RADS 4", "test"),  # no file
        ],
    )
    images = tmp_path / "images"
    touch(*(images / s / f"{i}.dicom" for s, i in [("synstudy01", "synimage01"),
          ("synstudy01", "synimage02"), ("synstudy02", "synimage03")]))  # fmt: skip
    return labels, images


def test_vindr_breast_density_is_the_composition(tmp_path: Path) -> None:
    labels, images = vindr(tmp_path)
    converted = read_vindr_mammo(labels, images, "density")
    assert [row.label for row in converted.rows] == ["c", "c", "c"]  # DENSITY C, one file gone
    row = vindr_row("synstudy01", "synimage01", "L", "CC", "BI-RADS 1", "training")
    row[8] = "DENSITY E"
    wrong = table(tmp_path / "wrong.csv", VINDR_HEADER, [row])
    with pytest.raises(DatasetError, match="row 2: breast_density"):
        read_vindr_mammo(wrong, images, "density")


def test_vindr_birads_keeps_the_published_test_split(tmp_path: Path) -> None:
    labels, images = vindr(tmp_path)
    converted = read_vindr_mammo(labels, images, "birads")
    one, two = images / "synstudy01", images / "synstudy02"
    assert converted.rows == (
        # DENSITY C is every row's density, whatever the task
        Row(one / "synimage01.dicom", "synstudy01", "synstudy01", "L", "CC", "BI-RADS 1",
            None, (), "c"),
        Row(one / "synimage02.dicom", "synstudy01", "synstudy01", "R", "MLO", "BI-RADS 2",
            None, (), "c"),
        Row(two / "synimage03.dicom", "synstudy02", "synstudy02", "L", "MLO", "BI-RADS 5",
            "test", (), "c"),
    )  # fmt: skip
    assert converted.skipped == {IMAGE_MISSING: 1}


FINDINGS_HEADER = [
    "image_id", "study_id", "series_id", "laterality", "view_position", "height", "width",
    "breast_birads", "breast_density", "finding_categories", "finding_birads",
    "xmin", "ymin", "xmax", "ymax", "split",
]  # fmt: skip


def finding(image: str, study: str, categories: str, box: tuple[str, ...]) -> list[str]:
    return [image, study, "synseries", "L", "CC", "3518", "2800", "BI-RADS 4", "DENSITY C",
            categories, "BI-RADS 4" if box else "", *box, "training"]  # fmt: skip


def test_vindr_boxes_come_from_finding_annotations(tmp_path: Path) -> None:
    labels, images = vindr(tmp_path)
    table(
        tmp_path / "finding_annotations.csv",
        FINDINGS_HEADER,
        [
            finding("synimage01", "synstudy01", "['No Finding']", ("", "", "", "")),
            finding("synimage02", "synstudy01", "['Mass']", ("1210.5", "900", "1400", "1085.25")),
            finding("synimage02", "synstudy01", "['Suspicious Calcification', 'Mass']",
                    ("10", "20", "30", "40")),
            finding("synimage03", "synstudy02", "['Focal Asymmetry']", ("1", "2", "3", "4")),
            finding("synimage03", "synstudy02", "['Architectural Distortion']",
                    ("5", "6", "7", "8")),
            finding("synimage03", "synstudy02", "['Suspicious Lymph Node']", ("9", "9", "9", "9")),
            finding("synimage09", "synstudy09", "['Mass']", ("1", "1", "2", "2")),  # no image row
        ],
    )  # fmt: skip
    converted = read_vindr_mammo(labels, images, "normal_abnormal")
    assert [row.annotations for row in converted.rows] == [
        (),
        (
            Annotation(Box(1210.5, 900, 1400, 1085.25), "mass"),
            Annotation(Box(10, 20, 30, 40), "calcification"),
        ),
        (
            Annotation(Box(1, 2, 3, 4), "asymmetry"),
            Annotation(Box(5, 6, 7, 8), "architectural distortion"),
            Annotation(Box(9, 9, 9, 9), None),
        ),
    ]
    assert [row.label for row in converted.rows] == ["normal", "abnormal", "abnormal"]


@pytest.mark.parametrize(
    ("box", "message"),
    [(("1", "2", "x", "4"), "row 2: box '1 2 x 4' is not four numbers"),
     (("5", "2", "3", "4"), "row 2: box '5 2 3 4' is not xmin ymin xmax ymax")],
)  # fmt: skip
def test_vindr_malformed_boxes(tmp_path: Path, box: tuple[str, ...], message: str) -> None:
    labels, images = vindr(tmp_path)
    rows = [finding("synimage01", "synstudy01", "['Mass']", box)]
    table(tmp_path / "finding_annotations.csv", FINDINGS_HEADER, rows)
    with pytest.raises(DatasetError, match=r"finding_annotations\.csv: " + message):
        read_vindr_mammo(labels, images, "birads")


def test_vindr_normal_is_birads_1_only(tmp_path: Path) -> None:
    labels, images = vindr(tmp_path)
    converted = read_vindr_mammo(labels, images, "normal_abnormal")
    assert [row.label for row in converted.rows] == ["normal", "abnormal", "abnormal"]
    with pytest.raises(DatasetError, match="VinDr-Mammo has BI-RADS assessments but no pathology"):
        read_vindr_mammo(labels, images, "benign_malignant")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (vindr_row("s", "j", "L", "CC", "BI-RADS 0", "test"), "row 3: label 'BI-RADS 0'"),
        (vindr_row("s", "j", "L", "CC", "BI-RADS 3", "validation"), "row 3: split 'validation'"),
        (vindr_row("s", "j", "X", "CC", "BI-RADS 3", "test"), "row 3: laterality 'X'"),
        (vindr_row("s", "j", "L", "", "BI-RADS 3", "test"), "row 3: view_position ''"),
        (vindr_row("s/t", "i", "L", "CC", "BI-RADS 3", "test"), "row 3: study_id 's/t'"),
        (vindr_row("s", "..", "L", "CC", "BI-RADS 3", "test"), "row 3: image_id '..'"),
        (vindr_row("s", "i", "L", "CC", "BI-RADS 3", "test"), "row 3: image i is listed already"),
    ],
)
def test_vindr_malformed_rows(tmp_path: Path, row: list[str], message: str) -> None:
    first = vindr_row("s", "i", "L", "CC", "BI-RADS 1", "training")
    labels = table(tmp_path / "breast-level_annotations.csv", VINDR_HEADER, [first, row])
    with pytest.raises(DatasetError, match=r"breast-level_annotations\.csv: " + message):
        read_vindr_mammo(labels, tmp_path, "birads")


# --- all readers --------------------------------------------------------------------------


def test_readers_are_registered_by_dataset_name() -> None:
    assert list(READERS.items()) == [
        ("mini-mias", read_mini_mias),
        ("cbis-ddsm", read_cbis_ddsm),
        ("cmmd", read_cmmd),
        ("vindr-mammo", read_vindr_mammo),
    ]


def converted_by(name: str, tmp_path: Path) -> tuple[Converted, str]:
    if name == "mini-mias":
        info = tmp_path / "Info.txt"
        info.write_text(INFO_TXT, encoding="utf-8")
        return READERS[name](info, mias_images(tmp_path), "normal_abnormal"), "normal_abnormal"
    if name == "cbis-ddsm":
        return READERS[name](cbis_train(tmp_path), tmp_path / "CBIS-DDSM", "birads"), "birads"
    if name == "cmmd":
        return READERS[name](*cmmd(tmp_path), "benign_malignant"), "benign_malignant"
    labels, images = vindr(tmp_path)
    row = finding("synimage02", "synstudy01", "['Mass']", ("1210.5", "900", "1400", "1085.25"))
    table(tmp_path / "finding_annotations.csv", FINDINGS_HEADER, [row])
    return READERS[name](labels, images, "birads"), "birads"


@pytest.mark.parametrize("name", sorted(READERS))
def test_rows_round_trip_through_a_manifest(tmp_path: Path, name: str) -> None:
    converted, task = converted_by(name, tmp_path)
    assert converted.rows
    manifest = tmp_path / "manifest.csv"
    assert write_manifest(manifest, converted.rows) == len(converted.rows)
    text = manifest.read_text(encoding="utf-8")
    assert str(tmp_path) not in text  # paths relative to the manifest's folder
    assert tuple(read_manifest(manifest, task)) == converted.rows
    if name != "cmmd":  # CMMD publishes no lesion outlines, nor densities
        assert any(row.annotations for row in converted.rows)
        assert all(row.density for row in converted.rows)


def test_a_manifest_without_the_annotations_column_still_loads(tmp_path: Path) -> None:
    manifest = table(
        tmp_path / "old.csv",
        ["path", "patient_id", "study_id", "laterality", "view", "label", "split"],
        [["a.png", "p1", "s1", "L", "CC", "normal", ""]],
    )
    (row,) = read_manifest(manifest, "normal_abnormal")
    assert row == Row(tmp_path / "a.png", "p1", "s1", "L", "CC", "normal")
    assert row.annotations == () and row.density is None


def test_the_density_column_takes_either_scale_and_names_a_bad_row(tmp_path: Path) -> None:
    """BI-RADS composition (a-d, 1-4, "DENSITY C") and mini-MIAS's tissue names both read as
    the density, whatever the task; an empty cell is no density, an unknown one an error."""
    manifest = table(
        tmp_path / "dense.csv",
        ["path", "patient_id", "label", "density"],
        [
            ["a.png", "p1", "normal", "DENSITY C"],
            ["b.png", "p2", "normal", "4"],
            ["c.png", "p3", "abnormal", "Fatty-Glandular"],
            ["d.png", "p4", "abnormal", ""],
        ],
    )
    rows = read_manifest(manifest, "normal_abnormal")
    assert [row.density for row in rows] == ["c", "d", "fatty-glandular", None]
    bad = table(
        tmp_path / "bad.csv",
        ["path", "patient_id", "label", "density"],
        [["a.png", "p1", "normal", "a"], ["b.png", "p2", "normal", "very dense"]],
    )
    with pytest.raises(DatasetError, match="row 3: density 'very dense' is not one of a, b"):
        read_manifest(bad, "normal_abnormal")


def test_a_malformed_annotations_cell_names_the_row(tmp_path: Path) -> None:
    manifest = table(
        tmp_path / "bad.csv",
        ["path", "patient_id", "label", "annotations"],
        [["a.png", "p1", "normal", ""], ["b.png", "p2", "abnormal", '[{"circle":[1,2]}]']],
    )
    with pytest.raises(DatasetError, match=r"row 3: circle \[1, 2\] is not 3 numbers"):
        read_manifest(manifest, "normal_abnormal")
