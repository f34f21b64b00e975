"""Settings, read from the environment with the prefix ``IMAGEGATE_``."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from imagegate.keys.network import parse_networks


class Settings(BaseSettings):
    """Every knob of the service. Each field is ``IMAGEGATE_<NAME>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="IMAGEGATE_", extra="ignore")

    data_dir: Path = Path("./imagegate-data")
    # Empty means a SQLite file inside data_dir.
    database_url: str = ""
    # PostgreSQL connections per process: up to pool_size + pool_overflow each. Keep the sum over
    # every API and worker process under the server's max_connections.
    database_pool_size: int = Field(default=10, ge=1)
    database_pool_overflow: int = Field(default=10, ge=0)
    # Empty means the address the server listens on (http://host:port).
    public_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    # One log line per request from `imagegate serve` (uvicorn's access log).
    access_log: bool = True
    # HMAC key for API-key hashes; empty means a random secret kept in data_dir/secret.key.
    secret_key: str = ""

    # Simulator: one delay for every speed overrides the per-speed defaults.
    simulator_delay: float | None = None
    simulator_delays: dict[str, float] = Field(
        default_factory=lambda: {"TURBO": 2.0, "BALANCED": 4.0, "QUALITY": 6.0}
    )

    # Worker: how many jobs one process runs at once, how often it polls (a safety net: new jobs
    # wake workers at once), and how long a worker may miss heartbeats (one every quarter of it)
    # before its jobs are given to another.
    worker_concurrency: int = Field(default=32, ge=1)
    worker_poll_interval: float = Field(default=0.5, gt=0)
    job_stall_seconds: float = Field(default=8.0, gt=0)
    job_max_attempts: int = Field(default=5, ge=1)
    # Failed and cancelled jobs are kept this long for `imagegate jobs list`, then deleted.
    job_retention_days: float = Field(default=7.0, gt=0)
    # A job running longer than this (a provider that never answers) is a failed attempt.
    job_timeout: float = Field(default=600.0, gt=0)

    # Callbacks: delay before each attempt, counted from the previous one (the first from the
    # task's end); "0,180,600" is the reference's policy: immediately, +3 min, +10 min.
    callback_retry_delays: Annotated[tuple[float, ...], NoDecode] = (0.0, 180.0, 600.0)
    callback_timeout: float = Field(default=10.0, gt=0)
    callback_allow_private: bool = False
    callback_concurrency: int = Field(default=256, ge=1)

    # Access policy: requests per minute per key unless the key sets its own; where the counters
    # live (async+memory:// in one process, async+redis://host:6379 shared by several).
    rate_limit_per_minute: int = Field(default=600, ge=1)
    # Empty: in this process, unless redis_url is set (then shared through Redis).
    rate_limit_storage: str = ""
    # Scale-out: redis://host:6379/0, shared by every API process for rate limits.
    redis_url: str = ""
    # Proxies whose X-Forwarded-For is believed (comma-separated IPs or CIDRs).
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()

    # Upstream providers. With no credentials the simulator serves every model; with Ideogram's
    # key or Replicate's token set, that provider does (Ideogram first when both are set).
    ideogram_api_key: SecretStr = SecretStr("")
    ideogram_base_url: str = "https://api.ideogram.ai"
    ideogram_max_in_flight: int = Field(default=10, ge=1)  # per process; Ideogram allows ~10
    replicate_api_token: SecretStr = SecretStr("")
    replicate_base_url: str = "https://api.replicate.com"
    # {speed} becomes turbo|balanced|quality; without it the speed is sent as an input field.
    replicate_model: str = "ideogram-ai/ideogram-v4"
    replicate_max_in_flight: int = Field(default=50, ge=1)
    replicate_poll_interval: float = Field(default=1.0, gt=0)
    # Catalogue model -> ordered provider names (simulator, ideogram, replicate), as JSON:
    # {"ideogram-v4": ["ideogram", "replicate"]}. Unset models use the default above.
    routes: dict[str, list[str]] = Field(default_factory=dict)
    # One upstream call (a generation, a poll, an image download) may take this long.
    upstream_timeout: float = Field(default=120.0, gt=0)
    # A generation may take this long in all, polling included, before it counts as timed out.
    upstream_deadline: float = Field(default=300.0, gt=0)
    # Retryable failures (timeouts, 429, 5xx) are retried this many times per provider, with
    # exponential backoff from upstream_backoff seconds, before failing over to the next one.
    upstream_retries: int = Field(default=2, ge=0)
    upstream_backoff: float = Field(default=1.0, ge=0)
    # A Retry-After longer than this is not waited for: the next provider is tried instead.
    upstream_max_retry_after: float = Field(default=60.0, ge=0)
    # This many failures in a row open a provider's circuit; it is probed again after cooldown.
    circuit_failure_threshold: int = Field(default=5, ge=1)
    circuit_cooldown: float = Field(default=30.0, gt=0)
    # Downloaded images: at most this many bytes and pixels (decompression bombs).
    upstream_image_max_bytes: int = Field(default=40 * 1024 * 1024, ge=1024)
    upstream_image_max_pixels: int = Field(default=40_000_000, ge=1)

    # The console (/console): who may sign up (open: anyone; invite: with an operator's link;
    # closed: only accounts an operator makes), and the credits a self-made account starts with.
    signup: Literal["open", "invite", "closed"] = "invite"
    signup_credits: int = Field(default=0, ge=0)
    # The first operator user, made on the very first start with a one-time link to set a password.
    admin_email: str = "admin@localhost"
    # A console session ends after this many days without a visit (and at most 30 days).
    console_session_days: float = Field(default=14.0, gt=0)
    # Failed sign-ins allowed per email and per client address in 15 minutes.
    login_failures_per_email: int = Field(default=5, ge=1)
    login_failures_per_address: int = Field(default=20, ge=1)
    # Keys' last_used_at is written in batches this often, not once per request.
    key_usage_flush_seconds: float = Field(default=10.0, gt=0)

    # Buying credits (console > Billing): packs as credits:price in the operator's currency,
    # e.g. "500:2.50,2000:10,10000:45"; Stripe Checkout is on when both Stripe secrets are set.
    topup_packs: Annotated[tuple[tuple[int, Decimal], ...], NoDecode] = ()
    currency: str = "usd"
    stripe_api_key: SecretStr = SecretStr("")
    stripe_webhook_secret: SecretStr = SecretStr("")
    stripe_api_base: str = ""  # empty: Stripe's own API (tests point it at a loopback fake)
    # Redemption attempts allowed per account and per client address in 15 minutes.
    redeem_attempts_per_account: int = Field(default=10, ge=1)
    redeem_attempts_per_address: int = Field(default=30, ge=1)

    # Operations. GET /metrics on the API's port answers only "Authorization: Bearer <token>";
    # empty: not served there. metrics_port > 0 also serves /metrics, unauthenticated, on a port
    # of its own in every serve and worker process (bind it where only Prometheus reaches).
    metrics_token: SecretStr = SecretStr("")
    metrics_port: int = Field(default=0, ge=0, le=65535)
    # text: human lines; json: one JSON object per line, with request_id and task_id fields.
    log_format: Literal["text", "json"] = "text"
    # Images: empty keeps them as files in data_dir/images (one machine); s3://bucket/prefix
    # keeps them in an S3-compatible bucket shared by every API and worker process.
    storage_url: str = ""
    s3_endpoint_url: str = ""  # empty: AWS; e.g. http://minio:9000 for another S3 store
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr = SecretStr("")
    s3_secret_access_key: SecretStr = SecretStr("")
    # proxy: the API streams each image from the bucket; redirect: 307 to a presigned URL.
    s3_serve: Literal["proxy", "redirect"] = "proxy"
    # Images older than this are deleted (hourly); their URLs answer 404. None keeps them.
    image_retention_days: float | None = Field(default=None, gt=0)
    # On SIGTERM: running jobs get this long to finish before they are handed back; the API
    # finishes its in-flight requests within it.
    shutdown_grace: float = Field(default=30.0, ge=0)
    # Upstream image URLs (and their redirects) may reach private addresses (tests, a model
    # server on the operator's own network); off, they fail the task like any bad image.
    upstream_allow_private: bool = False

    max_body_bytes: int = Field(default=65536, ge=1024)
    # POST /openai/v1/images/generations waits this long for its images; after that it answers
    # 202 with the tasks still running (openai_api/router.py). Below the usual proxy timeout
    # (60 s) and the SDK's (600 s): a client that gives up and retries pays again.
    openai_max_wait: float = Field(default=50.0, gt=0, le=300)
    # Credits given to the demo account created on the very first start of `imagegate serve`.
    demo_credits: int = Field(default=1000, ge=0)

    @field_validator("callback_retry_delays", mode="before")
    @classmethod
    def _split_delays(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            value = tuple(float(part) for part in parts)
        if not value or any(delay < 0 for delay in value):
            raise ValueError("give one or more non-negative delays in seconds, e.g. 0,180,600")
        return value

    @field_validator("topup_packs", mode="before")
    @classmethod
    def _parse_packs(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        packs = []
        for part in (p.strip() for p in value.split(",") if p.strip()):
            credits, _, price = part.partition(":")
            try:
                pack = (int(credits), Decimal(price))
            except (ValueError, ArithmeticError):
                raise ValueError(
                    f"not a pack: {part!r}; write credits:price, e.g. 500:2.50"
                ) from None
            if pack[0] < 1 or not pack[1] > 0:
                raise ValueError(f"a pack needs credits >= 1 and a price > 0: {part!r}")
            packs.append(pack)
        return tuple(packs)

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise ValueError("a three-letter ISO currency code, e.g. usd")
        return value.lower()

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        parse_networks(value)
        return value

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, value: str) -> str:
        if value and not re.fullmatch(r"s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[^?#]*)?", value):
            raise ValueError("leave it empty (files in the data dir) or write s3://bucket/prefix")
        return value

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'imagegate.db').resolve()}"

    @property
    def resolved_public_url(self) -> str:
        """Where clients fetch images. Set IMAGEGATE_PUBLIC_URL when serving other machines: a
        wildcard bind address is no address to give out, so this falls back to loopback."""
        if self.public_url:
            return self.public_url
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def resolved_rate_limit_storage(self) -> str:
        if self.rate_limit_storage:
            return self.rate_limit_storage
        return f"async+{self.redis_url}" if self.redis_url else "async+memory://"

    def simulator_delay_for(self, speed: str) -> float:
        if self.simulator_delay is not None:
            return self.simulator_delay
        return self.simulator_delays.get(speed, 0.0)
