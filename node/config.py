"""Typed, validated settings read from config.toml, overridable from the environment.

One place decides what a setting means: every key is documented in the shipped config.toml,
validated here at start-up, and may be overridden by ``BREASTNODE_<SECTION>__<KEY>``
(``BREASTNODE_PEERS`` takes a JSON list). Relative paths are resolved against the folder
of the configuration file, so a node started from any working directory finds its store.
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

from node.errors import ConfigError

ENV_PREFIX = "BREASTNODE_"
DEFAULT_CONFIG = Path("config.toml")

AETitle = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=16, pattern=r"^[ -\[\]-~]+$"),
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeSettings(_Section):
    """The node's own DICOM identity and listening address."""

    ae_title: AETitle = "BREASTNODE"
    host: str = "0.0.0.0"
    port: int = Field(default=11112, ge=1, le=65535)
    max_pdu_length: int = Field(default=4194304, ge=0, le=2**32 - 1)
    max_associations: int = Field(default=16, ge=1, le=1000)
    workers: int = Field(default=0, ge=0, le=64)
    acse_timeout_s: float = Field(default=30.0, gt=0)
    dimse_timeout_s: float = Field(default=60.0, gt=0)
    network_timeout_s: float = Field(default=120.0, gt=0)


class StorageSettings(_Section):
    """Where received instances and their index live."""

    root: Path = Path("var")
    database_url: str = ""
    min_free_bytes: int = Field(default=1 << 30, ge=0)
    retention_days: float = Field(default=0, ge=0)

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:", "postgresql:", "postgresql+")):
            raise ValueError("must be empty (embedded SQLite), sqlite:///PATH or postgresql://...")
        return value


class PeerSettings(_Section):
    """A DICOM peer allowed to associate with the node (and, later, to receive results)."""

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    ae_title: AETitle
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)


class PipelineSettings(_Section):
    """From received instances to analysis jobs."""

    quiet_seconds: float = Field(default=30.0, gt=0)
    # "models": the node's own models ([models]); "package.module:function": a plug-in
    # called with a study; empty: no analysis runs (jobs wait).
    analysis: str = Field(default="", pattern=r"^$|^models$|^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    lease_seconds: float = Field(default=120.0, gt=0)
    sweep_interval_seconds: float = Field(default=1.0, gt=0)
    poll_seconds: float = Field(default=1.0, gt=0)
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

    @model_validator(mode="after")
    def _backoff_cap_at_least_base(self) -> PipelineSettings:
        if self.retry_backoff_cap_seconds < self.retry_backoff_base_seconds:
            raise ValueError("retry_backoff_cap_seconds must be >= retry_backoff_base_seconds")
        return self


class ModelsSettings(_Section):
    """The node's own models (``[pipeline] analysis = "models"``)."""

    # Mammography and tomosynthesis checkpoint (a .pt file with its .json manifest beside
    # it); empty: the demo checkpoint under the storage root (`breastnode models init-demo`).
    mammography: str = ""
    # Breast MRI checkpoint; empty: the demo MRI checkpoint under the storage root (made by
    # `breastnode models init-demo` too); "none": MRI studies are not analysed.
    mri: str = ""
    # Breast density checkpoint (task density: BI-RADS composition a-d); empty: the demo
    # density checkpoint under the storage root (`init-demo` makes it); "none": no density.
    density: str = ""
    device: str = Field(default="auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    batch_size: int = Field(default=8, ge=1, le=512)
    threads: int = Field(default=0, ge=0, le=256)  # CPU threads for torch; 0: one per core
    # Queued studies analysed together, their views sharing the network's batches.
    studies_per_batch: int = Field(default=4, ge=1, le=64)
    slab_frames: int = Field(default=10, ge=1)  # tomosynthesis frames per MIP slab
    slab_stride: int = Field(default=0, ge=0)  # frames between slabs; 0: slab_frames
    # Regular expressions on Series Description choosing the DCE pre- and post-contrast
    # series and the fallback series; empty lists: the built-in rules.
    mri_pre: list[str] = Field(default_factory=list)
    mri_post: list[str] = Field(default_factory=list)
    mri_fallback: list[str] = Field(default_factory=list)

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
    # Peer names that receive every result; empty: the peer that sent the study.
    result_destinations: list[str] = Field(default_factory=list)


class DeliverySettings(_Section):
    max_age_hours: float = Field(default=72.0, gt=0)
    backoff_base_seconds: float = Field(default=10.0, gt=0)
    backoff_cap_seconds: float = Field(default=900.0, gt=0)
    timeout_s: float = Field(default=30.0, gt=0)


class ResultsSettings(_Section):
    """The DICOM objects made from an analysis."""

    # Root for the UIDs of result objects; empty: UUID-derived 2.25 UIDs (no registration).
    uid_root: str = Field(default="", pattern=r"^$|^[0-2](\.(0|[1-9][0-9]*))*\.$", max_length=40)
    # Device UID naming this node in Contributing Equipment and the SR observer context;
    # empty: derived from the AE title (stable across restarts).
    device_uid: str = Field(default="", pattern=r"^$|^[0-2](\.(0|[1-9][0-9]*))+$", max_length=64)
    gsps: bool = False  # also make Grayscale Softcopy Presentation States


class AuditSettings(_Section):
    """The audit trail (DICOM PS3.15 A.5 messages) and where it is shipped."""

    source_id: str = ""  # AuditSourceID; empty: the node's AE title
    enterprise_site_id: str = ""
    syslog_host: str = ""  # empty: keep the trail local only
    syslog_port: int = Field(default=514, ge=1, le=65535)
    syslog_protocol: Literal["udp", "tcp"] = "udp"
    ship_interval_seconds: float = Field(default=10.0, gt=0)


class MetricsSettings(_Section):
    """Prometheus /metrics and /healthz, served by the supervising process."""

    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)  # 0: no monitoring endpoint


class LoggingSettings(_Section):
    level: str = "INFO"

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
    storage: StorageSettings = StorageSettings()
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

    def peer(self, name: str) -> PeerSettings:
        for peer in self.peers:
            if peer.name == name:
                return peer
        known = ", ".join(p.name for p in self.peers) or "none configured"
        raise ConfigError(f"no peer named {name!r} (known peers: {known})")


def _resolve(base: Path, path: Path) -> Path:
    return path if path.is_absolute() else (base / path).resolve()


def load_settings(path: Path | None = None) -> Settings:
    """Read, merge with the environment and validate; every problem is reported at once."""
    config_path = path or DEFAULT_CONFIG
    values: dict[str, Any] = {}
    if config_path.exists():
        try:
            values = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path}: not valid TOML: {exc}") from exc
    elif path is not None:
        raise ConfigError(f"{config_path}: configuration file not found")
    values["config_dir"] = config_path.resolve().parent
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
        raise ConfigError(format_validation_error(config_path, exc)) from exc


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
