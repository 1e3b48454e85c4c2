"""The one typed settings object, read once from the environment.

Every setting is an environment variable prefixed ``RENSHI_`` except the few names that
tools share (``DATABASE_URL``, ``TEST_DATABASE_URL``, ``BROKER_URL``). Secrets are
``SecretStr`` so they never show in a ``repr`` or a log line.
"""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# NOTE: a fixed development key keeps `make run` working with no set-up. Production
# deployments must set RENSHI_SECRET_KEY; `environment=production` refuses the default.
_DEVELOPMENT_SECRET = "renshi-development-secret-do-not-use-in-production"  # noqa: S105


class Settings(BaseSettings):
    """Process-wide configuration."""

    model_config = SettingsConfigDict(env_prefix="RENSHI_", extra="ignore")

    environment: str = Field(
        default="development",
        description="development, test or production; GraphiQL is served only outside production.",
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "RENSHI_DATABASE_URL"),
        description="PostgreSQL URL; when unset an embedded server is started.",
    )
    broker_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("BROKER_URL", "RENSHI_BROKER_URL"),
        description="Message broker: amqp:// (RabbitMQ) or postgresql:// (the Postgres "
        "broker); when unset, the Postgres broker on the database.",
    )
    broker_heartbeat_seconds: float = Field(
        default=60.0,
        description="Postgres broker: a worker silent this long is dead and its messages "
        "go back to the queue.",
    )
    data_dir: Path = Field(
        default=PROJECT_ROOT / "var",
        description="Where the embedded PostgreSQL keeps its data between runs.",
    )
    pool_size: int = Field(default=10, description="Connections in the one shared pool.")
    pool_overflow: int = Field(default=5, description="Extra connections allowed at peaks.")
    secret_key: SecretStr = Field(
        default=SecretStr(_DEVELOPMENT_SECRET),
        description="Key signing access tokens (HS256) and deriving field-encryption keys.",
    )
    access_token_minutes: int = Field(default=15, description="Lifetime of an access token.")
    refresh_token_days: int = Field(default=14, description="Lifetime of a refresh token.")
    base_domain: str = Field(
        default="localhost",
        description="Tenants are addressed as <slug>.<base_domain> for unauthenticated calls.",
    )
    spare_schemas: int = Field(
        default=3, description="Migrated spare schemas kept ready so tenant creation is fast."
    )
    migrate_concurrency: int = Field(
        default=4, description="Tenant schemas migrated at once by `renshi tenants migrate`."
    )
    max_query_depth: int = Field(default=12, description="Deepest GraphQL selection allowed.")
    max_query_tokens: int = Field(default=2000, description="Most tokens in one GraphQL document.")
    max_query_aliases: int = Field(default=30, description="Most aliases in one GraphQL document.")
    default_locale: str = Field(default="en", description="Locale when nothing else decides.")
    smtp_host: str = Field(default="localhost", description="SMTP server that sends e-mail.")
    smtp_port: int = Field(default=25, description="Port of the SMTP server.")
    smtp_user: str | None = Field(default=None, description="SMTP user name, if it wants one.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_starttls: bool = Field(default=False, description="Upgrade the connection with STARTTLS.")
    smtp_sender: str = Field(
        default="Renshi <no-reply@renshi.localhost>", description="From address of e-mail."
    )
    smtp_timeout: float = Field(default=15.0, description="Seconds before an SMTP call gives up.")
    smtp_retry_seconds: float = Field(
        default=30.0, description="First wait before retrying a transient SMTP failure; doubles."
    )
    smtp_max_attempts: int = Field(
        default=8, description="Attempts at one e-mail before it is recorded as failed."
    )

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def check(self) -> None:
        """Fail fast on settings that must never reach production."""
        if self.is_production and self.secret_key.get_secret_value() == _DEVELOPMENT_SECRET:
            raise RuntimeError("RENSHI_SECRET_KEY must be set in production.")


@functools.cache
def get_settings() -> Settings:
    settings = Settings()
    settings.check()
    return settings
