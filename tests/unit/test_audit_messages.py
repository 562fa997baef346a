"""Audit messages in the PS3.15 A.5 form, and their RFC 5424 framing."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from node.audit.messages import (
    Outcome,
    StudyObject,
    application_activity,
    association_rejected,
    instances_received,
    instances_sent,
    to_xml,
)
from node.audit.syslog import rfc5424
from storage.audit import StoredAudit

AT = datetime(2026, 7, 1, 9, 30, tzinfo=UTC)


def parse(xml: str) -> ET.Element:
    return ET.fromstring(xml)


def test_instances_received_names_both_sides_the_study_and_the_patient() -> None:
    study = StudyObject("1.2.3", {"1.2.840.10008.5.1.4.1.1.1.2": 4}, "SYN-1", "SYNTHETIC^A")
    root = parse(
        to_xml(
            instances_received(study, "MODALITY", "10.0.0.5", "BREASTNODE"),
            "BREASTNODE",
            "SITE",
            AT,
        )
    )
    ident = root.find("EventIdentification")
    assert ident is not None
    assert ident.get("EventActionCode") == "C"
    assert ident.get("EventOutcomeIndicator") == "0"
    assert ident.get("EventDateTime") == "2026-07-01T09:30:00.000+00:00"
    event_id = ident.find("EventID")
    assert event_id is not None and event_id.get("csd-code") == "110104"
    participants = root.findall("ActiveParticipant")
    assert [(p.get("UserID"), p.get("UserIsRequestor")) for p in participants] == [
        ("MODALITY", "true"),
        ("BREASTNODE", "false"),
    ]
    assert participants[0].get("NetworkAccessPointID") == "10.0.0.5"
    roles = [p.find("RoleIDCode") for p in participants]
    assert [r.get("csd-code") for r in roles if r is not None] == ["110153", "110152"]
    source = root.find("AuditSourceIdentification")
    assert source is not None and source.get("AuditEnterpriseSiteID") == "SITE"
    objects = root.findall("ParticipantObjectIdentification")
    assert [o.get("ParticipantObjectID") for o in objects] == ["1.2.3", "SYN-1"]
    sop = objects[0].find("ParticipantObjectDescription/SOPClass")
    assert sop is not None and sop.get("NumberOfInstances") == "4"
    assert objects[1].findtext("ParticipantObjectName") == "SYNTHETIC^A"


def test_other_events() -> None:
    start = parse(to_xml(application_activity("BREASTNODE", True, "host"), "BN", "", AT))
    assert start.find("EventIdentification/EventTypeCode").get("csd-code") == "110120"  # type: ignore[union-attr]
    stop = parse(to_xml(application_activity("BREASTNODE", False, "host"), "BN", "", AT))
    assert stop.find("EventIdentification/EventTypeCode").get("csd-code") == "110121"  # type: ignore[union-attr]
    alert = parse(to_xml(association_rejected("STRANGER", "10.9.9.9", "BN"), "BN", "", AT))
    assert alert.find("EventIdentification/EventID").get("csd-code") == "110113"  # type: ignore[union-attr]
    assert alert.find("EventIdentification").get("EventOutcomeIndicator") == "4"  # type: ignore[union-attr]
    sent = parse(
        to_xml(
            instances_sent(
                StudyObject("1.2"), "BN", "PACS", "10.1.1.1", Outcome.SERIOUS_FAILURE, "dead letter"
            ),
            "BN",
            "",
            AT,
        )
    )
    assert sent.find("EventIdentification").get("EventActionCode") == "R"  # type: ignore[union-attr]
    assert sent.findtext("EventIdentification/EventOutcomeDescription") == "dead letter"


def test_rfc5424_framing() -> None:
    record = StoredAudit(7, AT, "110104", 0, "<AuditMessage/>", "0" * 64, "1" * 64)
    message = rfc5424(record, "nodehost")
    header, _, body = message.partition(b" \xef\xbb\xbf")
    fields = header.decode().split(" ")
    assert fields[0] == "<85>1"  # authpriv.notice, version 1
    assert fields[1] == "2026-07-01T09:30:00.000Z"
    assert fields[2:4] == ["nodehost", "breastnode"]
    assert fields[5:] == ["DICOM+RFC3881", "-"]
    assert body == b"<AuditMessage/>"
    failed = StoredAudit(8, AT, "110104", 8, "<AuditMessage/>", "1" * 64, "2" * 64)
    assert rfc5424(failed, "h").startswith(b"<84>1 ")
