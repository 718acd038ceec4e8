"""Settings per component (pydantic-settings, `SIAGA_` env vars), composed per stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.topics import DEFAULT_PREFIX, Topics
from services.common import locate
from services.common.datapack import DataPack, resolve_pack
from services.common.locate import NotConfigured as NotConfigured


class HomeSettings(BaseSettings):
    """Where a running `siaga up` keeps its state and which regency's data pack is used."""

    model_config = SettingsConfigDict(env_prefix="SIAGA_")

    home: Path = Field(default=Path(".siaga"), description="State folder of the embedded stack")
    data_dir: Path | None = Field(
        default=None,
        description="Another regency's data pack (regions/, facilities/, landmarks.csv); "
        "default: Batang's, built in",
    )

    @property
    def stack_file(self) -> Path:
        """`stack.json` written by `siaga up` with the connection details."""
        return self.home / "stack.json"

    @property
    def spool_dir(self) -> Path:
        """Reports the broker has not acknowledged yet (`siaga report`'s durable spool)."""
        return self.home / "spool"

    def spooled(self) -> bool:
        """Whether a report waits in the spool (cheap: every command asks)."""
        return locate.spooled(self.spool_dir)

    def pack(self) -> DataPack:
        """The regency's data pack: SIAGA_DATA_DIR's when set, else the built-in Batang one."""
        return resolve_pack(self.data_dir)

    def read_stack(self) -> dict[str, Any]:
        """The contents of `stack.json`, or {} when no stack is running here."""
        return locate.read_stack(self.home)


class KafkaSettings(BaseSettings):
    """How to reach the broker; `bootstrap` falls back to `stack.json` of a running stack."""

    model_config = SettingsConfigDict(env_prefix="SIAGA_KAFKA_")

    bootstrap: str | None = Field(default=None, description="host:port[,host:port...]")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = Field(default=None, description="Client certificate (mTLS)")
    ssl_keyfile: Path | None = Field(default=None, description="Its private key (mTLS)")
    partitions: int = Field(default=6, ge=1, description="Partitions of topics we create")
    replication_factor: int = Field(default=1, ge=1)
    fetch_max_wait_ms: int = Field(default=20, ge=0, description="Broker wait for a fetch")
    batch_timeout_ms: int = Field(
        default=5,
        ge=0,
        description="How long an empty poll waits for records; FastStream then sleeps as "
        "long again, so a record arriving then waits up to this much more",
    )
    top_up_ms: int = Field(
        default=15,
        ge=0,
        description="Wait for what arrived while a busy stage handled its last batch (0: off)",
    )
    max_batch: int = Field(default=500, ge=1, description="Records per consumer batch")
    session_timeout_ms: int = Field(
        default=10_000,
        ge=2_000,
        description="A stage's consumer that sends no heartbeat for this long leaves its "
        "group (Tansu holds every rebalance half this long; under `siaga up` no group is "
        "joined: see `assignment_file`)",
    )
    linger_ms: int = Field(default=2, ge=0, description="Producer wait to fill a batch")
    producer_batch_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        le=1_000_000,  # a batch must stay within a Kafka broker's default message.max.bytes
        description="Largest record batch a producer builds for one partition: a burst is "
        "sent as a few large batches, not one per 16 KiB (aiokafka's default), and each fetch "
        "from the embedded broker costs by the batches the partition holds",
    )
    assignment_file: Path | None = Field(
        default=None,
        description="Set by `siaga up` for each process: the partitions it reads, given by its "
        "supervisor and followed as they change, instead of joining the stage's consumer "
        "group (services/common/assignment.py)",
    )


class TopicSettings(BaseSettings):
    """Topic naming: `SIAGA_TOPIC_PREFIX` lets several regencies share one cluster."""

    model_config = SettingsConfigDict(env_prefix="SIAGA_TOPIC_")

    prefix: str = Field(default=DEFAULT_PREFIX, pattern=r"^[A-Za-z0-9._-]{1,100}$")

    def topics(self) -> Topics:
        """The topic names for this prefix."""
        return Topics(prefix=self.prefix)


class DatabaseSettings(BaseSettings):
    """How to reach PostgreSQL; `url` falls back to `stack.json` of a running stack."""

    model_config = SettingsConfigDict(env_prefix="SIAGA_DATABASE_")

    url: str | None = Field(default=None, description="postgresql://user:pass@host:port/db")
    pool_min: int = Field(default=1, ge=0)
    pool_max: int = Field(default=5, ge=1)
    sslmode: str | None = Field(default=None, description="disable/require/verify-full")
    stage_roles: bool = Field(
        default=True,
        description="Each stage connects as its own role (`<role_prefix>_<stage>`), which "
        "migrations create with rights on that stage's schema only",
    )
    role_prefix: str = Field(default="siaga", pattern=r"^[a-z][a-z0-9_]{0,30}$")
    role_password: SecretStr | None = Field(
        default=None,
        description="Password migrations give the stage roles, used in the URLs derived for "
        "them; without it the roles have none (trust or certificate authentication)",
    )
    enricher_url: str | None = Field(default=None, description="The enricher's own URL")
    triage_url: str | None = Field(default=None, description="Triage's own URL")
    dispatcher_url: str | None = Field(default=None, description="The dispatcher's own URL")
    tracker_url: str | None = Field(default=None, description="The tracker's own URL")
    projector_url: str | None = Field(default=None, description="The projector's own URL")
    reader_url: str | None = Field(default=None, description="Read-only URL of CLI look-ups")

    def role(self, who: str) -> str:
        """The database role of a stage (or `reader`)."""
        return f"{self.role_prefix}_{who}"


class HttpSettings(BaseSettings):
    """`SIAGA_HTTP_*`: each stage's health, readiness and metrics endpoint."""

    model_config = SettingsConfigDict(env_prefix="SIAGA_HTTP_")

    enabled: bool = Field(default=True, description="Serve /healthz, /readyz and /metrics")
    host: str = Field(default="127.0.0.1", description="Address to listen on (0.0.0.0 in pods)")
    port: int = Field(
        default=0, ge=0, le=65535, description="Port; 0 picks a free one (logged and in stack.json)"
    )


class StackSettings(BaseSettings):
    """`SIAGA_STACK_*`: how `siaga up` runs and supervises its stage processes."""

    model_config = SettingsConfigDict(env_prefix="SIAGA_STACK_")

    replicas: int = Field(
        default=1, ge=1, le=8, description="Processes of every stage (`siaga up --replicas`)"
    )
    restart_backoff_s: float = Field(
        default=0.5, gt=0, description="Wait before restarting a stage that died; doubles"
    )
    restart_backoff_max_s: float = Field(
        default=10.0, gt=0, description="The longest wait before a restart"
    )
    max_failures: int = Field(
        default=5,
        ge=1,
        description="A stage that dies this often within `failure_window_s` stops the stack",
    )
    failure_window_s: float = Field(
        default=60.0, gt=0, description="The window in which `max_failures` are counted"
    )
    ready_timeout_s: float = Field(
        default=120.0, gt=0, description="How long `siaga up` waits for every stage to consume"
    )


class InboxSettings(BaseSettings):
    """`SIAGA_INBOX_*`: how long a stage remembers what it processed (services/common/inbox.py)."""

    model_config = SettingsConfigDict(env_prefix="SIAGA_INBOX_")

    retention_days: float = Field(
        default=7.0,
        gt=0,
        description="Keep a processed message's row this long: at least the topics' retention "
        "(Kafka's default is 7 days), so any redelivered record still finds its row",
    )
    prune_interval_s: float = Field(
        default=60.0, gt=0, description="How often each stage prunes its inbox"
    )
    prune_batch: int = Field(
        default=10_000, ge=1, description="Rows deleted at most per prune (one short transaction)"
    )


class GcSettings(BaseSettings):
    """`SIAGA_GC_*`: the garbage collector of a long-running stage process."""

    model_config = SettingsConfigDict(env_prefix="SIAGA_GC_")

    young_threshold: int = Field(
        default=20_000,
        ge=0,
        description="Allocations between young collections (Python 3.11's default is 700; "
        "0 keeps Python's defaults and does not freeze the start-up heap)",
    )


class CommonSettings(BaseModel):
    """Settings every process needs, composed of the component settings above."""

    home: HomeSettings = Field(default_factory=HomeSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topic: TopicSettings = Field(default_factory=TopicSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    gc: GcSettings = Field(default_factory=GcSettings)
    inbox: InboxSettings = Field(default_factory=InboxSettings)
    stack: StackSettings = Field(default_factory=StackSettings)

    @property
    def topics(self) -> Topics:
        """Topic names of this deployment."""
        return self.topic.topics()

    def kafka_bootstrap(self) -> str:
        """The broker address from the environment, else from the running stack."""
        found = self.kafka.bootstrap or self.home.read_stack().get("kafka_bootstrap")
        if not found:
            raise NotConfigured(
                "no broker: set SIAGA_KAFKA_BOOTSTRAP or start the stack with `siaga up`"
            )
        return str(found)

    def database_url(self) -> str:
        """The database URL from the environment, else from the running stack."""
        found = self.database.url or self.home.read_stack().get("database_url")
        if not found:
            raise locate.no_database()
        return str(found)

    def database_url_for(self, who: str | None) -> str:
        """The URL a stage (or `reader`) connects with; None means the administrator's URL.

        A URL set for that stage wins; otherwise, with stage roles on, the administrator's
        URL with the stage's role (and `role_password`) in place of its user.
        """
        admin = self.database_url()
        if who is None:
            return admin
        own = getattr(self.database, f"{who}_url", None)
        if own:
            return str(own)
        if not self.database.stage_roles:
            return admin
        password = self.database.role_password
        if password is None and not self.database.url:
            # `siaga up`'s own PostgreSQL asks every role for a password: the one it gave
            # the stage roles is in stack.json beside the URL it came from.
            found = self.home.read_stack().get("database_role_password")
            password = SecretStr(str(found)) if found else None
        return locate.with_role(
            admin,
            role=self.database.role(who),
            password=None if password is None else password.get_secret_value(),
        )


def on_database(server_url: str, name: str) -> str:
    """`server_url` with its database replaced by `name`; a URL without a host (a local
    socket named in its query) keeps its `//`."""
    parts = urlsplit(server_url)
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}/{name}{query}"
