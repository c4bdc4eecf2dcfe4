"""The one settings object. Every setting is read from ``CAREDESK_*`` environment variables
(nested with ``__``, e.g. ``CAREDESK_TELEGRAM__TOKEN``) or a ``.env`` file. Each channel's section
(``settings.telegram``) is the ``config_model`` its connector declares in the registry."""

from __future__ import annotations

import ipaddress
import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, SecretStr, create_model, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from connectors import CONNECTORS
from connectors.zalo_zns import ZnsConfig

#: the source checkout; data/ ships there (training data, FAQ, bot texts, demo shop)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: data/ of the checkout when running from one (editable install), else ./data (e.g. the Docker image)
DEFAULT_DATA_DIR = PROJECT_ROOT / "data" if (PROJECT_ROOT / "data").is_dir() else Path("data")

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "admin", "password", "secret", "caredesk"}


class AdminSettings(BaseModel):
    """The first admin account, created at start when no agent has this email."""

    email: str = "admin@caredesk.local"
    password: SecretStr = SecretStr("changeme")
    name: str = "Admin"


class NLUSettings(BaseModel):
    """Where models live and which backend parses."""

    models_dir: Path = Path("var/models")
    rasa_url: str = ""
    rasa_timeout_s: float = 5.0


class ShopSettings(BaseModel):
    """The shop CareDesk serves."""

    name: str = "Bếp Việt Demo"
    timezone: str = "Asia/Ho_Chi_Minh"
    default_locale: str = "vi"


class BotSettings(BaseModel):
    """Conversation engine knobs."""

    fallbacks_before_handoff: int = 2


class CareSettings(BaseModel):
    """After-delivery care: when each proactive message goes out."""

    rating_delay_s: int = 86400
    usage_tips_delay_s: int = 3 * 86400
    check_in_delay_s: int = 7 * 86400
    #: the NPS survey ("would you recommend the shop, 0–10") this many days after delivery
    nps_day: int = Field(default=30, ge=1, le=365)
    #: send the NPS survey after delivery (on ``nps_day``) / after a conversation is resolved
    nps_after_delivery: bool = True
    nps_after_resolved: bool = False
    #: a customer with no purchase in this many days counts as churned (retention report)
    churn_days: int = Field(default=180, ge=7, le=3650)
    #: no proactive messages in this local-time window ("HH:MM-HH:MM"); empty turns quiet hours off
    quiet_hours: str = "21:00-08:00"
    check_interval_s: float = 5.0
    #: which channel a care step tries first, then next when one cannot reach the customer (no linked
    #: chat, outside the chat's window, refused): "chat" (the customer's linked chats), "zns" (Zalo ZNS
    #: to the order's phone) and "email"; a channel that is unknown or not configured is skipped
    channel_order: Annotated[list[str], NoDecode] = ["chat", "zns", "email"]

    @field_validator("channel_order", mode="before")
    @classmethod
    def _channel_list(cls, value: object) -> object:
        return _listed(value, "CAREDESK_CARE__CHANNEL_ORDER")


class CampaignSettings(BaseModel):
    """Campaigns (``helpdesk/campaigns/``): the platforms' limits on promotions."""

    #: promotion messages ("tin truyền thông") one Zalo OA follower may receive a month, counted from the
    #: 1st (Vietnam time): Zalo's OA package sets it (Basic 1, Advanced or trial 4, Premium 6)
    zalo_promotion_monthly_quota: int = Field(default=1, ge=0, le=100)
    #: how often the sender looks for recipients whose turn came
    check_interval_s: float = 5.0


class SLASettings(BaseModel):
    """The periodic SLA check (warnings at 80% of a target, breaches)."""

    check_interval_s: float = 5.0


class WorkerSettings(BaseModel):
    """Where messages are processed.

    ``inline``: in the serving process. ``process``: in a child process the server starts and
    watches, at a lower CPU priority, so webhooks are acknowledged fast however busy the bot is.
    ``external``: in a separate ``caredesk worker`` service, the jobs going through Redis (the
    production compose file). ``auto``: ``process`` under ``caredesk serve``, ``worker`` under
    ``caredesk worker``, ``inline`` elsewhere (an app built in code).
    ``child`` and ``broker_path`` are set by the server for its child; not for hand use.
    """

    mode: Literal["auto", "inline", "process", "external", "worker", "child"] = "auto"
    #: how much lower the child's CPU priority is (Unix nice increment; 0 keeps it equal)
    nice: int = 10
    #: run the child in Linux's SCHED_IDLE scheduling class instead: it then gets a processor only when
    #: nothing else wants one, so webhooks never wait for the bot's work (bench/attachments_bench.py: a
    #: burst of photos then raised the text acks' p99 1.01-1.21x, at nice 10 1.22-1.40x), but anything
    #: else keeping the processors busy (a database, a backup, another service) holds the bot's answers
    #: back as long as it does. Off: for a machine that serves CareDesk alone
    idle_class: bool = False
    #: chats processed at the same time by one worker (one chat's messages always one at a time)
    concurrency: int = 16
    broker_path: str = ""
    #: ``caredesk worker`` serves /healthz, /readyz and /metrics on this port (0: none)
    http_port: int = 0
    #: the address it listens on (all interfaces, so that a container's healthcheck and Prometheus
    #: reach it; /metrics answers only as the serving process's does, see MetricsSettings)
    http_host: str = "0.0.0.0"
    #: a message whose turn fails this many times for a reason of its own is parked for an admin
    max_attempts: int = 5
    #: first and longest pause before trying a failed turn again (doubling in between); a turn that
    #: failed because the database or Redis was away is tried again for as long as it takes
    retry_base_s: float = 0.5
    retry_max_s: float = 30.0
    #: external mode (Redis Streams): a job another worker read and has not finished after this long
    #: (that worker was killed) is taken over by the others
    claim_idle_s: float = 15.0
    #: a job whose work fails this many deliveries for a reason of its own is parked for an admin
    max_job_deliveries: int = 5
    #: the jobs stream keeps about this many entries (handled ones included) before trimming
    stream_maxlen: int = 100_000
    #: a chat's lock across worker replicas expires this long after its holder stopped renewing it
    lock_ttl_s: float = 10.0


class MetricsSettings(BaseModel):
    """Who may read ``/metrics`` (``CAREDESK_METRICS__...``). Without a token: clients on loopback or
    a private network (RFC 1918, link-local, IPv6 unique-local), as CAREDESK_TRUSTED_PROXIES
    names the client; a request a proxy forwards that is not trusted is refused. With a token: only
    requests with ``Authorization: Bearer <token>``, from anywhere."""

    token: SecretStr = SecretStr("")


class IntegrationSettings(BaseModel):
    """The shop's own systems (order system) calling CareDesk."""

    api_key: SecretStr = SecretStr("")


class OutboxSettings(BaseModel):
    """Retries of outgoing messages."""

    max_attempts: int = 8
    base_backoff_s: float = 1.0
    max_backoff_s: float = 300.0
    pump_interval_s: float = 0.5


class LimitsSettings(BaseModel):
    """How much a client may send (``CAREDESK_LIMITS__...``): request bodies by route, web chat
    frames, JSON nesting. A route that takes files declares its own, larger, limit."""

    #: platform webhooks: their events are a few kilobytes
    webhook_body_bytes: int = 1024 * 1024
    #: every other route (the JSON API)
    api_body_bytes: int = 1024 * 1024
    #: the training data and order imports (their own checks allow 20 MB and 5 MB files), with room
    #: for the multipart form around the file
    import_body_bytes: int = 21 * 1024 * 1024
    #: one web chat socket frame (the server closes the socket on a larger one)
    webchat_frame_bytes: int = 64 * 1024
    #: deepest nesting of a JSON body or frame (CareDesk's own documents need fewer than ten levels)
    json_max_depth: int = 64


class StorageSettings(BaseModel):
    """Where attachments (photos, files, voice) are kept (``CAREDESK_STORAGE__...``).

    ``url`` empty: files under ``local_dir`` on this host. ``s3://bucket/prefix``: any S3-compatible
    object store (``endpoint_url`` for one that is not AWS, e.g. MinIO), so that no replica depends
    on another's disk."""

    url: str = ""
    local_dir: Path = Path("var/attachments")
    endpoint_url: str = ""
    access_key_id: SecretStr = SecretStr("")
    secret_access_key: SecretStr = SecretStr("")
    region: str = "us-east-1"
    #: the largest file CareDesk takes in or sends, whatever the channel allows
    max_bytes: int = 25 * 1024 * 1024
    #: attachments of conversations resolved longer ago than this are deleted (0: kept for ever)
    retention_days: int = 0
    #: this server's address as platforms and visitors reach it (e.g. https://care.example.com), for
    #: the signed links of files sent by address; empty: no platform-reachable links
    public_base_url: str = ""
    #: how long a signed link to a file stays valid
    link_ttl_s: int = 3600
    #: a download that fails for a passing reason is tried this many times before it is given up
    fetch_attempts: int = 5
    #: downloads a worker runs at once (``CAREDESK_STORAGE__DOWNLOAD_LANES``). Decoding and
    #: re-encoding photos is CPU work: on 2 shared cores, 1 kept the text webhooks' acks quickest
    #: during a burst and stored the burst as fast as 4 (bench/attachments_bench.py); with more cores,
    #: or slow platform CDNs, more lanes fetch a burst sooner
    download_lanes: int = Field(1, ge=1, le=64)


def _listed(value: object, name: str) -> object:
    """A list setting given as a JSON list or as comma-separated values (anything else as it is)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{name} is not a valid JSON list: {exc}") from None
    return [part for part in (piece.strip() for piece in text.split(",")) if part]


class Settings(BaseSettings):
    """All of CareDesk's configuration."""

    model_config = SettingsConfigDict(
        env_prefix="CAREDESK_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    environment: Literal["development", "production", "test"] = "development"
    #: where ``caredesk serve`` listens (``--host``/``--port`` win) and where ``caredesk chat`` looks
    #: for it when no ``caredesk serve`` of this directory announced itself
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    database_url: str = "sqlite:///var/caredesk.db"
    #: connections each process keeps open to PostgreSQL, and how many more it opens for a peak (closed
    #: again when handed back: opening one costs more CPU than the statements of a message). Every
    #: replica may hold pool_size + max_overflow: keep replicas x that under the server's max_connections.
    database_pool_size: int = Field(20, ge=1)
    database_max_overflow: int = Field(10, ge=0)
    redis_url: str = ""
    secret_key: SecretStr = SecretStr("changeme")
    #: earlier secret keys, still accepted for opening what they sealed while a rotation is under way
    #: (JSON list or comma-separated); everything new is sealed with ``secret_key``
    secret_key_previous: Annotated[list[SecretStr], NoDecode] = []
    token_ttl_s: int = 12 * 3600
    data_dir: Path = DEFAULT_DATA_DIR
    log_level: str = "INFO"
    #: ``json``: one JSON object a line on stderr (for a log collector); ``text``: for a terminal;
    #: ``auto``: json in production, text elsewhere
    log_format: Literal["auto", "json", "text"] = "auto"
    #: a stall of the event loop at least this long is logged as a warning (see core.looplag)
    loop_lag_warn_ms: int = 250
    #: reverse proxies (IPs or CIDRs) whose X-Forwarded-For names the client; from the environment
    #: as a JSON list or comma-separated. Empty: the connecting address is the client.
    trusted_proxies: Annotated[list[str], NoDecode] = []

    #: the server's VAPID key pair for Web Push (P-256, base64url: the 32-byte private scalar; the public
    #: key may be given to check it). Empty: a pair is made at the first start and kept in the database,
    #: shared by every replica.
    vapid_private_key: SecretStr = SecretStr("")
    vapid_public_key: str = ""
    #: the contact in the VAPID JWT (``mailto:`` or https URL); empty: ``mailto:`` the admin's email
    vapid_subject: str = ""

    admin: AdminSettings = AdminSettings()
    nlu: NLUSettings = NLUSettings()
    shop: ShopSettings = ShopSettings()
    bot: BotSettings = BotSettings()
    outbox: OutboxSettings = OutboxSettings()
    care: CareSettings = CareSettings()
    campaigns: CampaignSettings = CampaignSettings()
    sla: SLASettings = SLASettings()
    worker: WorkerSettings = WorkerSettings()
    integration: IntegrationSettings = IntegrationSettings()
    limits: LimitsSettings = LimitsSettings()
    metrics: MetricsSettings = MetricsSettings()
    storage: StorageSettings = StorageSettings()
    #: Zalo Notification Service: template messages by phone for care (``CAREDESK_ZNS__*``)
    zns: ZnsConfig = ZnsConfig()

    # The channels' sections are not written out above: ``Settings(...)`` builds an instance of a
    # subclass that has one more field per connector in the registry (see ``with_channel_sections``).
    def __new__(cls, *args: Any, **kwargs: Any) -> Settings:
        return super().__new__(with_channel_sections(cls))

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_list(cls, value: object) -> object:
        value = _listed(value, "CAREDESK_TRUSTED_PROXIES")
        if isinstance(value, list):
            for entry in value:
                try:
                    ipaddress.ip_network(str(entry).strip(), strict=False)
                except ValueError:
                    raise ValueError(f"CAREDESK_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR "
                                     "network") from None
            value = [str(entry).strip() for entry in value]
        return value

    @field_validator("port", mode="before")
    @classmethod
    def _port_of_service_link(cls, value: object) -> object:
        # Kubernetes sets CAREDESK_PORT=tcp://10.0.0.7:8000 for a service named "caredesk": its port
        if isinstance(value, str) and value.startswith("tcp://") and value.rpartition(":")[2].isdigit():
            return value.rpartition(":")[2]
        return value

    @field_validator("secret_key_previous", mode="before")
    @classmethod
    def _key_list(cls, value: object) -> object:
        return _listed(value, "CAREDESK_SECRET_KEY_PREVIOUS")

    @model_validator(mode="after")
    def _refuse_placeholder_secrets_in_production(self) -> Settings:
        if self.environment != "production":
            return self
        problems = []
        if self.secret_key.get_secret_value().lower() in PLACEHOLDER_SECRETS or len(
            self.secret_key.get_secret_value()
        ) < 16:
            problems.append("CAREDESK_SECRET_KEY must be set to a random value of at least 16 characters")
        if self.admin.password.get_secret_value().lower() in PLACEHOLDER_SECRETS:
            problems.append("CAREDESK_ADMIN__PASSWORD must not be a placeholder")
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self


#: the classes ``with_channel_sections`` made, by (base class, the registry's sections)
_SECTIONED: dict[tuple[type, tuple[tuple[str, type[BaseModel]], ...]], type] = {}


def with_channel_sections(base: type[Settings]) -> type[Settings]:
    """``base`` with a field per registered channel that declares settings (``CAREDESK_<NAME>__*``).

    Built when settings are made rather than at import, so a channel added to the registry later (a
    test's) has its section too."""
    if base in _SECTIONED.values():
        return base
    sections = tuple((name, cls.config_model) for name, cls in CONNECTORS.items() if cls.config_model is not None)
    key = (base, sections)
    if key not in _SECTIONED:
        clashes = sorted(name for name, _ in sections if name in base.model_fields)
        if clashes:  # a channel's section would silently replace one of CareDesk's own
            raise ValueError(f"channel names {clashes} are taken by CareDesk's own settings")
        fields: dict[str, Any] = {name: (model, Field(default_factory=model)) for name, model in sections}
        _SECTIONED[key] = create_model(base.__name__, __base__=base, __module__=base.__module__,
                                       __doc__=base.__doc__, **fields)
    return _SECTIONED[key]


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
