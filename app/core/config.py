"""Settings: read once from the environment (``WATCHKEEPER_*``) and ``watchkeeper.toml``.

Environment variables win over the file; lists and nested values take JSON in the
environment (``WATCHKEEPER_TARGETS='[...]'``). The TOML file is looked up at
``WATCHKEEPER_CONFIG_FILE`` or ``./watchkeeper.toml``.
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from app.core.enums import Priority

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
    )

    environment: Environment = Environment.DEVELOPMENT
    data_dir: Path = Path("var")
    database_url: str = Field(
        default="",
        description="SQLAlchemy async URL; empty means a SQLite file under data_dir.",
    )
    database_pool_size: int = Field(default=10, ge=1, le=200)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    admin_username: str = "admin"
    admin_token: SecretStr | None = None
    session_token_ttl_minutes: int = Field(default=60, ge=1, le=60 * 24 * 30)

    log_format: LogFormat = LogFormat.TEXT
    log_level: str = "INFO"

    max_request_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    issue_resolution_target_hours: dict[Priority, float] = Field(
        default_factory=lambda: dict.fromkeys(Priority, 48.0),
        description="Hours each priority may take to resolve; missing ones keep 48.",
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

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("WATCHKEEPER_CONFIG_FILE", DEFAULT_CONFIG_FILE))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_file),
        )


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return Settings()
