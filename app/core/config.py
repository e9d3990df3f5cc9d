"""Settings: read once from the environment (``WATCHKEEPER_*``) and ``watchkeeper.toml``.

Environment variables win over the file; lists and nested values take JSON in the
environment (``WATCHKEEPER_TARGETS='[...]'``). The TOML file is looked up at
``WATCHKEEPER_CONFIG_FILE`` or ``./watchkeeper.toml``.
"""

from __future__ import annotations

import os
import tomllib
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

import apprise
from pydantic import Field, JsonValue, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from app.schemas.alerts import AlertRules, MaintenanceWindowCreate
from app.schemas.objectives import Objectives
from app.schemas.targets import mask_url
from app.vocabulary.issues import Priority
from app.vocabulary.performance import SELF_SERVICE, ServiceName

DEFAULT_CONFIG_FILE = Path("watchkeeper.toml")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class Settings(BaseSettings):
    """Everything Watchkeeper can be told; each field is ``WATCHKEEPER_<NAME>`` too."""

    model_config = SettingsConfigDict(
        env_prefix="WATCHKEEPER_",
        extra="forbid",
        validate_default=True,
        # Error messages must never echo a target list with its passwords back.
        hide_input_in_errors=True,
    )

    environment: Environment = Environment.DEVELOPMENT
    data_dir: Path = Path("var")
    database_url: str = Field(
        default="",
        description="SQLAlchemy async URL; empty means a SQLite file under data_dir.",
    )
    database_pool_size: int = Field(default=10, ge=1, le=200)
    database_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="Longest wait for the store: connecting, each statement, a pooled "
        "connection, SQLite's write lock. Past it the request answers 503.",
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    admin_username: str = "admin"
    admin_token: SecretStr | None = None
    session_token_ttl_minutes: int = Field(default=60, ge=1, le=60 * 24 * 30)
    login_failures_per_username: int = Field(
        default=10, ge=1, description="Failed logins a username may have within its window."
    )
    login_username_window_seconds: int = Field(
        default=300, ge=1, le=86_400, description="The sliding window of the username limit."
    )
    login_failures_per_address: int = Field(
        default=30, ge=1, description="Failed logins one client address may have in its window."
    )
    login_address_window_seconds: int = Field(
        default=60, ge=1, le=86_400, description="The sliding window of the address limit."
    )

    log_format: LogFormat = LogFormat.TEXT
    log_level: str = "INFO"

    max_request_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_header_bytes: int = Field(
        default=32 * 1024,
        ge=1024,
        description="Bytes the request target and all header names and values may total.",
    )
    max_header_count: int = Field(default=100, ge=10, description="Headers a request may have.")

    # Raw: the checks' registry, which knows every kind's fields, parses the entries where
    # the monitor is built (app.services.monitoring.check_configuration reports a mistake).
    targets: list[dict[str, JsonValue]] = Field(
        default_factory=list,
        description="Dependencies to watch ([[targets]] in the TOML, JSON in the environment).",
    )
    monitor_in_process: bool = Field(
        default=True, description="Run the monitoring loop inside the server."
    )
    monitor_interval_seconds: int = Field(default=60, ge=1, le=86_400)
    monitor_buffer_limit: int = Field(
        default=1000, ge=1, description="Sweeps kept in memory while the store is away."
    )
    health_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    health_retention_days: int = Field(default=30, ge=1, le=3650)
    health_rollup_retention_days: int = Field(default=400, ge=1, le=3650)

    alert_rules: AlertRules = Field(default_factory=AlertRules)
    alert_webhooks: list[str] = Field(
        default_factory=list, description="URLs that receive signed JSON for every alert event."
    )
    alert_webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 key of the X-Watchkeeper-Signature header."
    )
    alert_apprise_urls: list[str] = Field(
        default_factory=list, description="apprise URLs: slack://, discord://, mailto://, ..."
    )
    maintenance_windows: list[MaintenanceWindowCreate] = Field(default_factory=list)
    alert_dispatch_in_process: bool = Field(
        default=True, description="Send queued notifications from inside the server."
    )

    objectives: Objectives = Field(
        default_factory=Objectives,
        description="The success criteria /slo reports and the burn-rate alerts defend.",
    )
    issue_resolution_target_hours: dict[Priority, float] = Field(
        default_factory=lambda: dict.fromkeys(Priority, 48.0),
        description="Hours each priority may take to resolve; missing ones keep 48.",
    )

    # Request metrics and performance analysis.
    self_service_name: ServiceName = Field(
        default=SELF_SERVICE, description="The service Watchkeeper's own requests are of."
    )
    performance_flush_seconds: float = Field(
        default=5.0, gt=0, le=300, description="How often recorded minutes go to the store."
    )
    performance_rollup_after_days: int = Field(
        default=2, ge=1, le=90, description="Minutes older than this are kept only as hours."
    )
    performance_retention_days: int = Field(
        default=400, ge=7, le=3650, description="How long the hourly request figures are kept."
    )
    performance_max_buckets: int = Field(
        default=10_000,
        ge=100,
        description="Minute buckets held in memory while the store is away; the oldest go first.",
    )
    performance_exemplars: int = Field(
        default=5, ge=0, le=50, description="Slowest requests kept per minute as evidence."
    )
    performance_slow_endpoint_ms: float = Field(
        default=1000.0, gt=0, description="An endpoint whose p95 is above this is slow."
    )
    performance_error_rate: float = Field(
        default=0.01, gt=0, lt=1, description="5xx share above which an endpoint is failing."
    )
    performance_slow_dependency_ms: float = Field(
        default=500.0, gt=0, description="A dependency whose check p95 is above this is slow."
    )
    performance_min_requests: int = Field(
        default=20, ge=1, description="Requests an endpoint needs in a window to be judged."
    )
    performance_regression_ratio: float = Field(
        default=1.5, gt=1, description="Recent p95, p99 or 5xx share over baseline times this..."
    )
    performance_regression_significance: float = Field(
        default=0.001, gt=0, lt=0.5, description="...and a one-sided p-value under this."
    )
    performance_variance_ratio: float = Field(
        default=10.0, gt=1, description="An endpoint whose p99 is this times its median is erratic."
    )
    performance_capacity_days: float = Field(
        default=30.0, gt=0, description="Disk or memory projected full within this is a bottleneck."
    )
    # OTLP/HTTP ingest (POST /v1/traces and /v1/metrics).
    ingest_max_body_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Bytes an OTLP export may send."
    )
    ingest_max_inflated_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024, description="Bytes an OTLP export may inflate to."
    )
    ingest_max_routes_per_service: int = Field(
        default=500,
        ge=1,
        le=100_000,
        description="Routes kept per service; requests of further routes count as unmatched.",
    )
    metrics_public: bool = Field(
        default=True,
        description="Serve GET /metrics without a token (false: developers and admins only).",
    )
    status_page_enabled: bool = Field(
        default=False,
        description="Serve the public status page, its feed and badges at /status, unsigned.",
    )

    @model_validator(mode="after")
    def _default_sqlite_store(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'watchkeeper.db'}"
        return self

    @model_validator(mode="after")
    def _no_default_admin_token_in_production(self) -> Settings:
        token = self.admin_token.get_secret_value() if self.admin_token else None
        if self.environment is Environment.PRODUCTION and token is not None and len(token) < 32:
            raise ValueError("WATCHKEEPER_ADMIN_TOKEN must be at least 32 characters in production")
        return self

    @field_validator("issue_resolution_target_hours")
    @classmethod
    def _every_priority_has_a_target(cls, hours: dict[Priority, float]) -> dict[Priority, float]:
        if any(value <= 0 for value in hours.values()):
            raise ValueError("resolution targets must be positive hours")
        return {**dict.fromkeys(Priority, 48.0), **hours}

    @model_validator(mode="after")
    def _channels_are_usable(self) -> Settings:
        for url in self.alert_webhooks:
            if not url.lower().startswith(("http://", "https://")):
                raise ValueError(f"alert_webhooks: {mask_url(url)} is not an http(s) URL")
        if self.alert_webhooks and self.alert_webhook_secret is None:
            raise ValueError("alert_webhook_secret: needed to sign the alert webhooks")
        for url in self.alert_apprise_urls:
            if not apprise.Apprise().add(url):
                raise ValueError(f"alert_apprise_urls: apprise cannot use {mask_url(url)}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=_toml_file()),
        )


class ConfigurationError(Exception):
    """The environment or watchkeeper.toml holds something Watchkeeper cannot use."""


def describe(error: ValidationError) -> str:
    """One line per mistake: the setting (and target) and what is wrong with it."""
    problems = []
    for detail in error.errors():
        where = ".".join(str(part) for part in detail["loc"]) or "settings"
        problems.append(f"{where}: {detail['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read on first use; ConfigurationError names any mistake."""
    try:
        return Settings()
    except ValidationError as error:
        raise ConfigurationError(f"invalid configuration: {describe(error)}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"invalid configuration: {_toml_file()}: {error}") from None
    except SettingsError as error:
        # pydantic-settings says which field and source; the cause says what was wrong.
        cause = f": {error.__cause__}" if error.__cause__ else ""
        raise ConfigurationError(f"invalid configuration: {error}{cause}") from None


def _toml_file() -> Path:
    return Path(os.environ.get("WATCHKEEPER_CONFIG_FILE", DEFAULT_CONFIG_FILE))
