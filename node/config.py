"""Typed, validated settings read from config.toml, overridable from the environment.

One place decides what a setting means: every key is documented here, once, in its field's
description (the shipped config.toml is rendered from them by :mod:`node.config_template`),
validated at start-up, and may be overridden by ``BREASTNODE_<SECTION>__<KEY>``
(``BREASTNODE_PEERS`` takes a JSON list). Relative paths are resolved against the folder
of the configuration file, so a node started from any working directory finds its store;
:mod:`node.config_search` says which file a command reads.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from node.config_search import find_config
from node.errors import ConfigError

ENV_PREFIX = "BREASTNODE_"

AETitle = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=16, pattern=r"^[ -\[\]-~]+$"),
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeSettings(_Section):
    """The node's own DICOM identity and listening address."""

    ae_title: AETitle = Field(
        default="BREASTNODE",
        description="Our AE title (1-16 characters); associations must call us by it.",
    )
    host: str = Field(default="0.0.0.0", description="Interface the Storage SCP listens on.")
    port: int = Field(
        default=11112, ge=1, le=65535, description="TCP port the Storage SCP listens on."
    )
    max_pdu_length: int = Field(
        default=4194304,
        ge=0,
        le=2**32 - 1,
        description="Largest PDU we accept, in bytes (0: no limit). Larger PDUs mean less "
        "per-PDU overhead. A peer that announces a larger one is aborted without it being read.",
    )
    max_associations: int = Field(
        default=16,
        ge=1,
        le=1000,
        description="Associations served at once by each receiver process; more are rejected "
        "(transient, local limit exceeded).",
    )
    receivers: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Receiver processes sharing the port, so reception uses several cores. "
        "0: one per CPU core, at most 4.",
    )
    acse_timeout_s: float = Field(
        default=30.0, gt=0, description="Seconds to wait for association negotiation."
    )

    @model_validator(mode="before")
    @classmethod
    def _old_receivers_name(cls, data: Any) -> Any:
        """ "workers", the name before 0.2, is still read; "receivers" wins where both are."""
        if isinstance(data, dict) and "workers" in data:
            data = dict(data)
            workers = data.pop("workers")
            data.setdefault("receivers", workers)
        return data

    dimse_timeout_s: float = Field(
        default=60.0, gt=0, description="Seconds to wait for a DIMSE message."
    )
    network_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="Seconds an association may stay idle (no data from the peer) before it "
        "is aborted.",
    )
    association_request_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="A connection that has not sent its whole association request this many "
        "seconds after it was accepted is dropped (a silent or trickling peer never holds a "
        "place another sender needs).",
    )
    max_association_request_bytes: int = Field(
        default=65536,
        ge=1024,
        le=1 << 24,
        description="Largest association request accepted, in bytes; a larger announced one "
        "is aborted without being read.",
    )
    max_object_bytes: int = Field(
        default=1 << 32,
        ge=0,
        description="Largest data set received, in bytes (0: no bound); the association of a "
        "peer that sends more, or more than 16 MiB while free space is below [storage] "
        "min_free_bytes, is aborted and its partial file removed.",
    )
    max_associations_per_peer: int = Field(
        default=8,
        ge=1,
        le=1000,
        description="Associations at once from one address, per receiver process; more are "
        "rejected (transient, local limit exceeded), logged and audited.",
    )


class TLSSettings(_Section):
    """DICOM TLS (PS3.15 B.9, the non-downgrading BCP 195 profile: TLS 1.2 or newer, ECDHE
    with AES-GCM suites for TLS 1.2) on the Storage SCP, on associations to peers with
    tls = true, on the audit shipping (syslog_protocol = "tls") and on the monitoring
    endpoint. The files are PEM; when they change (a renewed certificate) new connections
    use the new ones, without a restart."""

    certificate: str = Field(
        default="",
        description="The node's certificate (PEM, followed by any intermediate CA "
        "certificates), shown to peers both as server and as client. Empty: no TLS, and the "
        "Storage SCP on [node] port speaks plain DICOM.",
    )
    private_key: str = Field(
        default="", description="The certificate's private key (PEM, not encrypted)."
    )
    ca_file: str = Field(
        default="",
        description="CA certificates (PEM bundle) that peers' certificates must chain to.",
    )
    require_client_certificate: bool = Field(
        default=True,
        description="Refuse a TLS connection to the Storage SCP that presents no "
        "certificate. false: such a client may still associate, as a peer with tls = false.",
    )
    plain_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="With a certificate: a second, plain (unencrypted) DICOM port for peers "
        "with tls = false (a modality without TLS). 0: none; every association is over TLS.",
    )
    handshake_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="A connection that has not completed its TLS handshake this many "
        "seconds after it was accepted is dropped.",
    )

    @property
    def enabled(self) -> bool:
        return bool(self.certificate)

    @model_validator(mode="after")
    def _complete(self) -> TLSSettings:
        given = {
            "certificate": self.certificate,
            "private_key": self.private_key,
            "ca_file": self.ca_file,
        }
        if any(given.values()) and not all(given.values()):
            missing = ", ".join(k for k, v in given.items() if not v)
            raise ValueError(
                f"certificate, private_key and ca_file go together; missing: {missing}"
            )
        if self.plain_port and not self.certificate:
            raise ValueError(
                "plain_port is for a node with a certificate (without one the port is plain)"
            )
        return self


class StorageSettings(_Section):
    """Where received instances and their index live."""

    root: Path = Field(
        default=Path("var"),
        description="Folder that holds received objects (objects/), the spool of transfers "
        "in progress (spool/), the demo checkpoints (models/) and, with the embedded default, "
        "the index database (index.sqlite3).",
    )
    database_url: str = Field(
        default="",
        description="Index database. Empty: embedded SQLite under the storage root. "
        "PostgreSQL when several processes or hosts share the work: "
        "postgresql://user@host:5432/db",
    )
    min_free_bytes: int = Field(
        default=1 << 30,
        ge=0,
        description="Instances are refused with 0xA700 (out of resources) while free space "
        "is below this.",
    )
    retention_days: float = Field(
        default=0,
        ge=0,
        description="Received images older than this many days are purged (index rows and "
        "results say so). 0 keeps everything.",
    )
    shared: bool = Field(
        default=False,
        description="Whether several nodes run on this root at once (scale-out: every one "
        "with shared = true and one PostgreSQL database). false: a second node started on "
        "the root exits at once, naming the running one; true: a node that starts while "
        "others run leaves the spool and unindexed files to them.",
    )

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:", "postgresql:", "postgresql+")):
            raise ValueError("must be empty (embedded SQLite), sqlite:///PATH or postgresql://...")
        return value


class ValidationSettings(_Section):
    """The structural check every received data set passes before it is acknowledged."""

    max_sequence_depth: int = Field(
        default=32,
        ge=1,
        le=100,
        description="Sequences nested deeper than this are refused (0xC000).",
    )
    max_inflated_bytes: int = Field(
        default=1 << 30,
        ge=1,
        description="A Deflated Explicit VR Little Endian data set that inflates to more "
        "bytes than this is refused (0xC000).",
    )
    inflate_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="A deflated data set whose inflation takes longer than this is refused "
        "(0xC000).",
    )


class PeerSettings(_Section):
    """DICOM peers allowed to associate with us (calling AE title and host must both match);
    results go to those with a port."""

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = Field(
        description="The peer's name in this configuration and on the command line."
    )
    ae_title: AETitle = Field(description="The peer's AE title.")
    host: str = Field(
        min_length=1,
        description="The peer's address: an IP address, a CIDR network or a host name.",
    )
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Where the peer listens for results; omit it for a peer that only sends.",
    )
    tls: bool = Field(
        default=False,
        description="DICOM TLS with this peer (needs [tls]): the node calls it over TLS and "
        "checks its server certificate, and it is admitted only over TLS with a certificate "
        "from the CA bundle that carries certificate_name; its AE title and address alone no "
        "longer admit it.",
    )
    certificate_name: str | None = Field(
        default=None,
        min_length=1,
        description="With tls = true: the name the peer's certificate must carry, as its "
        "subject CN, a SAN DNS name or a SAN IP address (compared exactly, no wildcards). "
        "Omitted: the peer's host, which must then not be a network.",
    )

    @model_validator(mode="after")
    def _identity_known(self) -> PeerSettings:
        if self.tls and self.certificate_name is None and "/" in self.host:
            raise ValueError("a peer with tls = true and a network as host needs certificate_name")
        return self

    @property
    def identity(self) -> str:
        """The name its certificate must carry (tls = true)."""
        return self.certificate_name or self.host


ANALYSIS_OFF = "none"


class PipelineSettings(_Section):
    """From received instances to analysis jobs."""

    quiet_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A study that is not a complete four-view screening mammogram is analysed "
        "once no new instance has arrived for this many seconds (also after a late instance "
        "re-opens it).",
    )
    analysis: str = Field(
        default="models",
        pattern=r"^$|^models$|^none$|^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description='The analysis to run for each complete study: "models" for the node\'s own '
        'models (see [models]), or a plug-in as "package.module:function". "none": studies are '
        "queued but not analysed until an analysis is configured (an empty value, as earlier "
        "releases wrote it, means the same).",
    )
    lease_seconds: float = Field(
        default=120.0,
        gt=0,
        description="A worker holds a job this long without a heartbeat before it is given "
        "to another.",
    )
    sweep_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How often completed studies are looked for. A sweep reads only the "
        "pending studies (milliseconds however large the index), so a short interval costs "
        "little and a four-view study waits on average half of it.",
    )
    poll_seconds: float = Field(
        default=1.0, gt=0, description="How often idle workers poll for work."
    )
    retry_backoff_base_seconds: float = Field(
        default=30.0,
        gt=0,
        description="An analysis that failed for a passing reason (a database or device "
        "hiccup) is tried again after this long, doubling (with jitter) on each failure.",
    )
    retry_backoff_cap_seconds: float = Field(
        default=600.0,
        gt=0,
        description="The longest wait between two attempts at an analysis.",
    )
    retry_max_age_hours: float = Field(
        default=6.0,
        gt=0,
        description="An analysis still failing this long after its first attempt is "
        "dead-lettered. Permanent failures (an unreadable pixel stream, a checkpoint that "
        "does not fit the network) are dead-lettered at once.",
    )
    retry_max_attempts: int = Field(
        default=0,
        ge=0,
        description="Attempts at an analysis before it is dead-lettered; 0: no limit but "
        "retry_max_age_hours.",
    )

    @field_validator("analysis")
    @classmethod
    def _off(cls, value: str) -> str:
        # "none" and empty both mean no analysis; the pipeline reads an empty value as off
        return "" if value == ANALYSIS_OFF else value

    @model_validator(mode="after")
    def _backoff_cap_at_least_base(self) -> PipelineSettings:
        if self.retry_backoff_cap_seconds < self.retry_backoff_base_seconds:
            raise ValueError("retry_backoff_cap_seconds must be >= retry_backoff_base_seconds")
        return self


class ModelsSettings(_Section):
    """The node's own models ([pipeline] analysis = "models"). A checkpoint is a weights file
    with its JSON manifest beside it (NAME.pt + NAME.json: task, labels, backbone, input
    size, operating threshold, SHA-256, clinical validation); the hash is checked at start-up
    and on load, and nothing is downloaded."""

    mammography: str = Field(
        default="",
        description="Mammography and tomosynthesis checkpoint. Empty: the demo checkpoint "
        "under the storage root, made by `breastnode models init-demo` (`make run` makes "
        "it), trained on synthetic phantoms: every result it gives says NOT FOR CLINICAL USE.",
    )
    mri: str = Field(
        default="",
        description="Breast MRI checkpoint (task mri_benign_malignant, or any two-class "
        "task). Empty: the demo MRI checkpoint under the storage root, also made by "
        "`breastnode models init-demo`, trained on synthetic DCE phantoms (NOT FOR CLINICAL "
        'USE). "none": MRI studies are not analysed.',
    )
    density: str = Field(
        default="",
        description="Breast density checkpoint (task density: BI-RADS breast composition "
        "a-d, trained with `breastnode models train MANIFEST --task density`). Each breast's "
        "composition goes into the TID 1500 report (coded as DICOM's CID 6000) and on the "
        "overlays of mammography studies. Empty: the demo density checkpoint under the "
        "storage root, also made by `breastnode models init-demo`, trained on synthetic "
        "phantoms of known composition (NOT FOR CLINICAL USE: a report that carries its "
        'composition says so, whatever the mammography model). "none": no composition is '
        "reported.",
    )
    device: str = Field(
        default="auto",
        pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description='"auto" (the first CUDA GPU when present, else the CPU), "cpu", "cuda" '
        'or "cuda:N".',
    )
    batch_size: int = Field(
        default=8,
        ge=1,
        le=512,
        description="Views per forward pass (tomosynthesis slabs count as views).",
    )
    threads: int = Field(
        default=0,
        ge=0,
        le=256,
        description="CPU threads for the networks (0: one per core). On a CPU-only node that "
        "also receives heavy traffic, leaving a core to the receivers keeps inference from "
        "stalling.",
    )
    studies_per_batch: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Queued studies the worker takes at once, so that their views share the "
        "network's batches.",
    )
    slab_frames: int = Field(
        default=10, ge=1, description="Tomosynthesis: frames per maximum-intensity slab."
    )
    slab_stride: int = Field(
        default=0,
        ge=0,
        description="Tomosynthesis: frames between slab starts (0: slab_frames, so slabs do "
        "not overlap).",
    )
    mri_pre: list[str] = Field(
        default_factory=list,
        description="Breast MRI: regular expressions (case-insensitive) on Series Description "
        "picking the pre-contrast series of the dynamic exam. Empty: built-in rules "
        "(pre, native, dyn 0-1).",
    )
    mri_post: list[str] = Field(
        default_factory=list,
        description="Breast MRI: regular expressions picking the first post-contrast series "
        "(subtracted from the pre-contrast one, then projected). Empty: built-in rules "
        "(post, +C, phase N, dyn 2-9).",
    )
    mri_fallback: list[str] = Field(
        default_factory=list,
        description="Breast MRI: regular expressions picking the series to project when no "
        "pre/post pair is found. Empty: built-in rules (T1, then dyn, else the largest series).",
    )

    @field_validator("mri_pre", "mri_post", "mri_fallback")
    @classmethod
    def _regular_expressions(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from exc
        return patterns


class RoutingSettings(_Section):
    """Where results go."""

    result_destinations: list[str] = Field(
        default_factory=list,
        description="Peer names (with a port) that receive every result. Empty: the peer that "
        "sent the study.",
    )


class DeliverySettings(_Section):
    """Sending results: transient failures are retried with exponential back-off (base,
    capped) and jitter; permanent failures are dead-lettered at once (see
    `breastnode resend`)."""

    max_age_hours: float = Field(
        default=72.0, gt=0, description="Transient failures are retried for this many hours."
    )
    backoff_base_seconds: float = Field(
        default=10.0, gt=0, description="The first retry's delay, doubled at each attempt."
    )
    backoff_cap_seconds: float = Field(
        default=900.0, gt=0, description="The longest delay between two attempts."
    )
    timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Seconds to wait for a peer (connection, association, response).",
    )


class ResultsSettings(_Section):
    """The DICOM objects made from an analysis."""

    uid_root: str = Field(
        default="",
        pattern=r"^$|^[0-2](\.(0|[1-9][0-9]*))*\.$",
        max_length=40,
        description="Root (ending in a dot) for the UIDs of result objects. Empty: "
        'UUID-derived "2.25." UIDs, which need no registration. Use your organisation\'s '
        "root otherwise.",
    )
    device_uid: str = Field(
        default="",
        pattern=r"^$|^[0-2](\.(0|[1-9][0-9]*))+$",
        max_length=64,
        description="Device UID of this node in Contributing Equipment and the SR observer "
        "context. Empty: derived from the AE title, so it stays the same across restarts.",
    )
    gsps: bool = Field(
        default=False,
        description="Also produce Grayscale Softcopy Presentation States with the findings "
        "as annotations.",
    )


class AuditSettings(_Section):
    """The audit trail: DICOM PS3.15 A.5 records kept append-only and hash-chained in the
    database (`breastnode audit verify`, `breastnode audit export`), and sent to a syslog
    collector (RFC 5424 over UDP, TCP or TLS) when syslog_host is set."""

    source_id: str = Field(default="", description="AuditSourceID. Empty: the node's AE title.")
    enterprise_site_id: str = Field(
        default="", description="AuditEnterpriseSiteID of the records. Empty: none."
    )
    syslog_host: str = Field(
        default="", description="Syslog collector. Empty: keep the trail local only."
    )
    syslog_port: int = Field(default=514, ge=1, le=65535, description="The collector's port.")
    syslog_protocol: Literal["udp", "tcp", "tls"] = Field(
        default="udp",
        description='"udp", "tcp" or "tls" (RFC 5425: the collector\'s certificate is checked '
        "against [tls] ca_file and syslog_host, and the node shows its own).",
    )
    ship_interval_seconds: float = Field(
        default=10.0, gt=0, description="How often new records are sent to the collector."
    )


class MetricsSettings(_Section):
    """Prometheus metrics at http://HOST:PORT/metrics and a health check at /healthz (200
    when the SCP, the database and the pipeline worker are up), served by the supervising
    process; over HTTPS with the [tls] certificate when one is configured."""

    host: str = Field(
        default="127.0.0.1",
        description='Interface to listen on; "0.0.0.0" lets a Prometheus on another machine '
        "scrape it.",
    )
    port: int = Field(
        default=9464, ge=0, le=65535, description="Port to listen on. 0: no monitoring endpoint."
    )


class LoggingSettings(_Section):
    """Operational logs, on standard error. They never carry patient data."""

    level: str = Field(default="INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL.")

    @field_validator("level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level


class Settings(BaseSettings):
    """The whole configuration; frozen so it is passed around, never mutated."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    node: NodeSettings = NodeSettings()
    tls: TLSSettings = TLSSettings()
    storage: StorageSettings = StorageSettings()
    validation: ValidationSettings = ValidationSettings()
    peers: list[PeerSettings] = Field(default_factory=list)
    pipeline: PipelineSettings = PipelineSettings()
    models: ModelsSettings = ModelsSettings()
    routing: RoutingSettings = RoutingSettings()
    delivery: DeliverySettings = DeliverySettings()
    results: ResultsSettings = ResultsSettings()
    audit: AuditSettings = AuditSettings()
    metrics: MetricsSettings = MetricsSettings()
    logging: LoggingSettings = LoggingSettings()
    config_dir: Path = Field(default=Path(), exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file, which is passed in as init values.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _peers_unique(self) -> Settings:
        names = [p.name for p in self.peers]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"peer names must be unique; repeated: {', '.join(duplicated)}")
        callable_peers = {p.name for p in self.peers if p.port is not None}
        unknown = [n for n in self.routing.result_destinations if n not in callable_peers]
        if unknown:
            raise ValueError(
                "[routing] result_destinations must name peers that have a port; "
                f"not such a peer: {', '.join(unknown)}"
            )
        if self.delivery.backoff_cap_seconds < self.delivery.backoff_base_seconds:
            raise ValueError("[delivery] backoff_cap_seconds must be >= backoff_base_seconds")
        if not self.tls.enabled:
            needing = [f"peer {p.name}" for p in self.peers if p.tls]
            if self.audit.syslog_protocol == "tls":
                needing.append('[audit] syslog_protocol = "tls"')
            if needing:
                raise ValueError(
                    f"{', '.join(needing)}: TLS needs [tls] certificate, private_key and ca_file"
                )
        if self.tls.plain_port and self.tls.plain_port == self.node.port:
            raise ValueError("[tls] plain_port must differ from [node] port")
        return self

    @property
    def storage_root(self) -> Path:
        return _resolve(self.config_dir, self.storage.root)

    @property
    def database_url(self) -> str:
        """The configured URL, or the embedded SQLite file under the storage root."""
        url = self.storage.database_url
        if not url:
            return f"sqlite:///{self.storage_root / 'index.sqlite3'}"
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
            return prefix + str(_resolve(self.config_dir, Path(url[len(prefix) :])))
        return url

    @property
    def demo_checkpoint(self) -> Path:
        return self.storage_root / "models" / "demo.pt"

    @property
    def mammography_checkpoint(self) -> Path:
        configured = self.models.mammography
        return _resolve(self.config_dir, Path(configured)) if configured else self.demo_checkpoint

    @property
    def demo_mri_checkpoint(self) -> Path:
        return self.storage_root / "models" / "demo-mri.pt"

    @property
    def demo_density_checkpoint(self) -> Path:
        return self.storage_root / "models" / "demo-density.pt"

    @property
    def demo_checkpoints(self) -> tuple[Path, Path, Path]:
        return self.demo_checkpoint, self.demo_mri_checkpoint, self.demo_density_checkpoint

    @property
    def mri_checkpoint(self) -> Path | None:
        return self._optional_checkpoint(self.models.mri, self.demo_mri_checkpoint)

    @property
    def density_checkpoint(self) -> Path | None:
        return self._optional_checkpoint(self.models.density, self.demo_density_checkpoint)

    def _optional_checkpoint(self, configured: str, demo: Path) -> Path | None:
        """A model the node may go without: "none" turns it off, empty is the demo one."""
        if configured.lower() == "none":
            return None
        return _resolve(self.config_dir, Path(configured)) if configured else demo

    def path(self, configured: str) -> Path:
        """A configured file name, relative ones against the configuration's folder."""
        return _resolve(self.config_dir, Path(configured))

    def peer(self, name: str) -> PeerSettings:
        for peer in self.peers:
            if peer.name == name:
                return peer
        known = ", ".join(p.name for p in self.peers) or "none configured"
        raise ConfigError(f"no peer named {name!r} (known peers: {known})")


def _resolve(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else (base / path).resolve()


def load_settings(path: Path | None = None) -> Settings:
    """Read, merge with the environment and validate; every problem is reported at once.
    ``path`` None: the file :func:`node.config_search.find_config` finds, if any."""
    return read_settings(path if path is not None else find_config(None).path)


def read_settings(config_path: Path | None) -> Settings:
    """The settings of one file; None: the built-in defaults, whose relative paths resolve
    against the working directory."""
    values: dict[str, Any] = {}
    if config_path is not None:
        try:
            values = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{config_path}: configuration file not found") from None
        except OSError as exc:
            raise ConfigError(f"{config_path}: cannot read it: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path}: not valid TOML: {exc}") from exc
    values["config_dir"] = config_path.resolve().parent if config_path else Path.cwd()
    sections = set(Settings.model_fields) - {"config_dir", "peers"}
    misspelt = sorted(
        name
        for name in os.environ
        if name.upper().startswith(ENV_PREFIX)
        and "__" in name
        and name[len(ENV_PREFIX) :].split("__", 1)[0].lower() not in sections
    )
    if misspelt:  # pydantic-settings would ignore them without a word
        raise ConfigError(
            f"environment: {', '.join(misspelt)}: no such section "
            f"(BREASTNODE_<SECTION>__<KEY>; sections: {', '.join(sorted(sections))})"
        )
    try:
        return Settings(**values)
    except ValidationError as exc:
        label = config_path or Path("built-in defaults")
        raise ConfigError(format_validation_error(label, exc)) from exc


def format_validation_error(config_path: Path, exc: ValidationError) -> str:
    lines = [f"{config_path}: {exc.error_count()} invalid setting(s):"]
    for error in exc.errors():
        location = _describe_location(error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against the documented config.toml)"
        shown = (
            "" if error["type"] in {"missing", "extra_forbidden"} else f" (got {error['input']!r})"
        )
        lines.append(f"  {location}: {message}{shown}")
    return "\n".join(lines)


def _describe_location(loc: tuple[int | str, ...]) -> str:
    if not loc:
        return "(top level)"
    head, *rest = loc
    if head == "peers" and rest and isinstance(rest[0], int):
        section = f"[[peers]] #{rest[0] + 1}"
        rest = rest[1:]
    else:
        section = f"[{head}]"
    return f"{section} {'.'.join(str(part) for part in rest)}".strip()
