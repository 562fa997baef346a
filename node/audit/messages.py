"""Audit messages in the DICOM PS3.15 A.5 form, written to the hash-chained trail.

Built with the standard library's ElementTree, following the schema of PS3.15 A.5.1
(EventIdentification, ActiveParticipant, AuditSourceIdentification,
ParticipantObjectIdentification). Audit records may carry patient data; they are kept in
the trail and sent to the site's audit repository, never to the operational log.
"""

from __future__ import annotations

import logging
import socket
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum

from sqlalchemy import Engine

from storage.audit import AuditTrail
from storage.times import utcnow

logger = logging.getLogger(__name__)


class Outcome(IntEnum):
    SUCCESS = 0
    MINOR_FAILURE = 4
    SERIOUS_FAILURE = 8
    MAJOR_FAILURE = 12


@dataclass(frozen=True)
class Code:
    code: str
    scheme: str
    meaning: str

    def element(self, tag: str, parent: ET.Element) -> ET.Element:
        return ET.SubElement(
            parent,
            tag,
            {"csd-code": self.code, "codeSystemName": self.scheme, "originalText": self.meaning},
        )


APPLICATION_ACTIVITY = Code("110100", "DCM", "Application Activity")
INSTANCES_ACCESSED = Code("110103", "DCM", "DICOM Instances Accessed")
INSTANCES_TRANSFERRED = Code("110104", "DCM", "DICOM Instances Transferred")
SECURITY_ALERT = Code("110113", "DCM", "Security Alert")
APPLICATION_START = Code("110120", "DCM", "Application Start")
APPLICATION_STOP = Code("110121", "DCM", "Application Stop")
NODE_AUTHENTICATION = Code("110126", "DCM", "Node Authentication")
ROLE_APPLICATION = Code("110150", "DCM", "Application")
ROLE_DESTINATION = Code("110152", "DCM", "Destination Role ID")
ROLE_SOURCE = Code("110153", "DCM", "Source Role ID")
STUDY_INSTANCE_UID = Code("110180", "DCM", "Study Instance UID")
PATIENT_NUMBER = Code("2", "RFC-3881", "Patient Number")


@dataclass(frozen=True)
class Participant:
    user_id: str
    role: Code
    is_requestor: bool
    address: str | None = None
    alternative_id: str | None = None


@dataclass(frozen=True)
class StudyObject:
    study_instance_uid: str
    sop_classes: Mapping[str, int] = field(default_factory=dict)  # SOP Class UID -> count
    patient_id: str | None = None
    patient_name: str | None = None


@dataclass(frozen=True)
class AuditEvent:
    event: Code
    action: str  # C, R, U, D or E
    outcome: Outcome
    participants: tuple[Participant, ...]
    event_type: Code | None = None
    studies: tuple[StudyObject, ...] = ()
    outcome_description: str | None = None


def to_xml(event: AuditEvent, source_id: str, site_id: str, at: datetime) -> str:
    root = ET.Element("AuditMessage")
    ident = ET.SubElement(
        root,
        "EventIdentification",
        {
            "EventActionCode": event.action,
            "EventDateTime": at.isoformat(timespec="milliseconds"),
            "EventOutcomeIndicator": str(int(event.outcome)),
        },
    )
    event.event.element("EventID", ident)
    if event.event_type:
        event.event_type.element("EventTypeCode", ident)
    if event.outcome_description:
        ET.SubElement(ident, "EventOutcomeDescription").text = event.outcome_description
    for participant in event.participants:
        attributes = {
            "UserID": participant.user_id,
            "UserIsRequestor": str(participant.is_requestor).lower(),
        }
        if participant.alternative_id:
            attributes["AlternativeUserID"] = participant.alternative_id
        if participant.address:
            attributes["NetworkAccessPointID"] = participant.address
            attributes["NetworkAccessPointTypeCode"] = "2"  # IP address
        active = ET.SubElement(root, "ActiveParticipant", attributes)
        participant.role.element("RoleIDCode", active)
    source = ET.SubElement(root, "AuditSourceIdentification", {"AuditSourceID": source_id})
    if site_id:
        source.set("AuditEnterpriseSiteID", site_id)
    ET.SubElement(source, "AuditSourceTypeCode", {"csd-code": "4"})  # application server
    for study in event.studies:
        # PS3.15 A.5.2.5: a study is a system object (type 2) in the report role (3)
        obj = _participant_object(root, study.study_instance_uid, "2", "3", STUDY_INSTANCE_UID)
        if study.sop_classes:
            description = ET.SubElement(obj, "ParticipantObjectDescription")
            for uid, count in sorted(study.sop_classes.items()):
                ET.SubElement(
                    description, "SOPClass", {"UID": uid, "NumberOfInstances": str(count)}
                )
        if study.patient_id is not None:
            # the patient: a person (type 1) in the patient role (1)
            patient = _participant_object(root, study.patient_id, "1", "1", PATIENT_NUMBER)
            if study.patient_name:
                ET.SubElement(patient, "ParticipantObjectName").text = study.patient_name
    return ET.tostring(root, encoding="unicode")


def _participant_object(
    root: ET.Element, object_id: str, type_code: str, role: str, id_type: Code
) -> ET.Element:
    attributes = {
        "ParticipantObjectID": object_id,
        "ParticipantObjectTypeCode": type_code,
        "ParticipantObjectTypeCodeRole": role,
    }
    element = ET.SubElement(root, "ParticipantObjectIdentification", attributes)
    id_type.element("ParticipantObjectIDTypeCode", element)
    return element


class Auditor:
    """Writes audit events to the trail; a failure to audit is logged, never raised."""

    def __init__(self, engine: Engine, source_id: str, site_id: str = "") -> None:
        self.trail = AuditTrail(engine)
        self.source_id = source_id
        self.site_id = site_id
        self.host = socket.gethostname()

    def record(self, event: AuditEvent) -> int | None:
        at = utcnow()
        try:
            message = to_xml(event, self.source_id, self.site_id, at)
            return self.trail.append(event.event.code, int(event.outcome), message, at)
        except Exception as exc:
            logger.error(
                "could not write audit record %s: %s", event.event.code, type(exc).__name__
            )
            return None

    def node(self, ae_title: str) -> Participant:
        return Participant(ae_title, ROLE_APPLICATION, False, self.host)


def application_activity(ae_title: str, started: bool, host: str) -> AuditEvent:
    return AuditEvent(
        APPLICATION_ACTIVITY,
        "E",
        Outcome.SUCCESS,
        (Participant(ae_title, ROLE_APPLICATION, False, host, alternative_id="breastnode"),),
        event_type=APPLICATION_START if started else APPLICATION_STOP,
    )


def instances_received(
    study: StudyObject,
    sender_ae: str,
    sender_address: str,
    node_ae: str,
    outcome: Outcome = Outcome.SUCCESS,
) -> AuditEvent:
    return AuditEvent(
        INSTANCES_TRANSFERRED,
        "C",
        outcome,
        (
            Participant(sender_ae, ROLE_SOURCE, True, sender_address),
            Participant(node_ae, ROLE_DESTINATION, False),
        ),
        studies=(study,),
    )


def instance_refused(
    sender_ae: str, sender_address: str, node_ae: str, description: str
) -> AuditEvent:
    """DICOM Instances Transferred, failed: a C-STORE answered with a failure status (the
    study is not named: nothing of the data set is trusted or kept)."""
    return AuditEvent(
        INSTANCES_TRANSFERRED,
        "C",
        Outcome.MINOR_FAILURE,
        (
            Participant(sender_ae, ROLE_SOURCE, True, sender_address),
            Participant(node_ae, ROLE_DESTINATION, False),
        ),
        outcome_description=description,
    )


def instances_sent(
    study: StudyObject,
    node_ae: str,
    destination_ae: str,
    destination_address: str,
    outcome: Outcome,
    description: str | None = None,
) -> AuditEvent:
    return AuditEvent(
        INSTANCES_TRANSFERRED,
        "R",
        outcome,
        (
            Participant(node_ae, ROLE_SOURCE, True),
            Participant(destination_ae, ROLE_DESTINATION, False, destination_address),
        ),
        studies=(study,),
        outcome_description=description,
    )


def association_rejected(
    calling_ae: str, address: str, node_ae: str, reason: str = "not a configured peer"
) -> AuditEvent:
    """Security Alert, node authentication failure (PS3.15 A.5.3.11): a caller refused."""
    return AuditEvent(
        SECURITY_ALERT,
        "E",
        Outcome.MINOR_FAILURE,
        (
            Participant(calling_ae, ROLE_SOURCE, True, address),
            Participant(node_ae, ROLE_DESTINATION, False),
        ),
        event_type=NODE_AUTHENTICATION,
        outcome_description=f"association refused: {reason}",
    )


def connection_refused(address: str, node_ae: str, reason: str) -> AuditEvent:
    """Security Alert, node authentication failure: a connection refused before any
    association (no TLS, a certificate not accepted); the caller is known by its address."""
    return AuditEvent(
        SECURITY_ALERT,
        "E",
        Outcome.MINOR_FAILURE,
        (
            Participant(address, ROLE_SOURCE, True, address),
            Participant(node_ae, ROLE_DESTINATION, False),
        ),
        event_type=NODE_AUTHENTICATION,
        outcome_description=f"connection refused: {reason}",
    )


def analysis_performed(
    study: StudyObject, node_ae: str, outcome: Outcome, description: str
) -> AuditEvent:
    return AuditEvent(
        INSTANCES_ACCESSED,
        "C",
        outcome,
        (Participant(node_ae, ROLE_APPLICATION, True),),
        studies=(study,),
        outcome_description=description,
    )
