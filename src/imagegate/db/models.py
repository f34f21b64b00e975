"""Tables. Times are Unix seconds (float) so both backends compare them the same way."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """Key/value facts about this installation (e.g. that the demo account was created)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Account(Base):
    __tablename__ = "accounts"
    # The database itself refuses a negative balance, whatever path the UPDATE comes from.
    __table_args__ = (CheckConstraint("credits >= 0", name="ck_accounts_credits_non_negative"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Cached balance; always equal to the sum of the account's ledger entries.
    credits: Mapped[int] = mapped_column(BigInteger, default=0)
    banned: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    # Standard Webhooks signing secret (whsec_...); made on first use, rotatable by the operator.
    webhook_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Account events (account.low_balance) are POSTed here, signed, when set.
    webhook_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    # A console banner and one account.low_balance event when the balance falls below this;
    # notified is set when the event is sent and cleared when the balance is back above.
    low_balance_threshold: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    low_balance_notified: Mapped[bool] = mapped_column(Boolean, default=False)
    # Prices multiplied by this plan's ratio (billing/plans.py); None: list prices.
    price_plan: Mapped[str | None] = mapped_column(
        ForeignKey("price_plans.name", name="fk_accounts_price_plan"), nullable=True
    )


class CatalogEntry(Base):
    """A model offered (catalog/__init__.py's CatalogModel is its value)."""

    __tablename__ = "models"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean)
    prices: Mapped[dict[str, int]] = mapped_column(JSON)
    sizes: Mapped[list[str]] = mapped_column(JSON)
    reports: Mapped[str] = mapped_column(String(200))
    providers: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    upstream: Mapped[dict[str, Any]] = mapped_column(JSON)
    queue: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class CatalogState(Base):
    """One row: ``version`` is bumped with every change to the models (catalog/cache.py)."""

    __tablename__ = "catalog_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class PricePlan(Base):
    """Prices multiplied by ``ratio`` (a decimal, as text: exact) for the accounts on it."""

    __tablename__ = "price_plans"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    ratio: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the key, for people to tell keys apart; not a secret.
    prefix: Mapped[str] = mapped_column(String(16))
    last4: Mapped[str] = mapped_column(String(4), default="")  # shown as sk-abc…wxyz
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|disabled|deleted
    created_at: Mapped[float] = mapped_column(Float)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Access policy; None (or an empty list) means no restriction of that kind.
    allowed_ips: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)  # IPs and CIDRs
    rate_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)  # requests/minute
    hourly_limit: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # credits
    daily_limit: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    total_limit: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    models: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)


class LedgerEntry(Base):
    """Append-only. A task has at most one charge and one refund (unique task_id, kind)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("task_id", "kind", name="uq_ledger_task_kind"),
        # A payment or a code credits once: (stripe, cs_...) or (code, <code id>) is unique.
        UniqueConstraint("source", "reference", name="uq_ledger_source_reference"),
        Index("ix_ledger_account_id_id", "account_id", "id"),  # the console's ledger pages
        Index("ix_ledger_account_created", "account_id", "created_at"),  # spend per day
    )
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    # Checked at commit on PostgreSQL (migration 0012): a create takes no lock of its own on
    # the account's row for it.
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", deferrable=True, initially="DEFERRED")
    )
    key_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))  # top_up|adjustment|charge|refund
    amount: Mapped[int] = mapped_column(BigInteger)  # signed: charges are negative
    task_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)
    # Where credits came from, for receipts: stripe (reference: the Checkout Session id),
    # code (the redemption code's id), operator (an admin top-up or adjustment); else None.
    source: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reference: Mapped[str | None] = mapped_column(String(255), nullable=True)


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_account_created", "account_id", "created_at"),
        Index("ix_tasks_key_created", "key_id", "created_at"),  # spend windows
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # Checked at commit on PostgreSQL (migration 0012), like the ledger's.
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", deferrable=True, initially="DEFERRED")
    )
    key_id: Mapped[str] = mapped_column(String(36))
    model: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # TaskStatus
    input: Mapped[dict[str, Any]] = mapped_column(JSON)
    callback_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    price: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    completed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    output_urls: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    # output.metadata.model, as the model reported it when the task was created.
    reported_model: Mapped[str | None] = mapped_column(String(200), nullable=True)


class IdempotencyKey(Base):
    """A create's Idempotency-Key (tasks/idempotency.py), written with the task it made."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)
    account_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[float] = mapped_column(Float)


class Job(Base):
    """A unit of queue work: a kind and JSON args (ids, never objects)."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_fetch", "status", "queue", "run_at"),)
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    queue: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    args: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # todo|doing|done|failed
    run_at: Mapped[float] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(default=0)
    worker_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    heartbeat_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # failed, cancelled


class Callback(Base):
    """The notification of a task's end to its callback_url: one per task."""

    __tablename__ = "callbacks"
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id"), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    event: Mapped[str] = mapped_column(String(32))  # task.completed | task.failed
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    next_attempt_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


class CallbackAttempt(Base):
    __tablename__ = "callback_attempts"
    __table_args__ = (UniqueConstraint("task_id", "number", name="uq_callback_attempt"),)
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    task_id: Mapped[str] = mapped_column(ForeignKey("callbacks.task_id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    attempted_at: Mapped[float] = mapped_column(Float)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_attempt_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class ProviderCircuit(Base):
    """A provider's circuit breaker, shared by every process: consecutive failures, and until
    when the circuit is open (no work sent; None: closed)."""

    __tablename__ = "provider_circuits"
    provider: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    opened_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    updated_at: Mapped[float] = mapped_column(Float)


class User(Base):
    """A person who signs in to the console; belongs to one account, as a member or operator."""

    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # stored lower-cased
    # Argon2id; None until the person sets one through a one-time link.
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    role: Mapped[str] = mapped_column(String(16))  # member|operator
    status: Mapped[str] = mapped_column(String(16))  # active|disabled
    created_at: Mapped[float] = mapped_column(Float)


class ConsoleSession(Base):
    """A signed-in browser. The cookie holds a random token; only its SHA-256 is stored, so
    deleting the row (logout, password change, disable) ends the session for good."""

    __tablename__ = "console_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the token
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)


class UserToken(Base):
    """A one-time link: set a password (first operator, reset) or sign up by invitation."""

    __tablename__ = "user_tokens"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the token
    purpose: Mapped[str] = mapped_column(String(16))  # password|invite
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    # An invitation to join this account (None: the invitee gets an account of their own).
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), nullable=True)
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class CheckoutSession(Base):
    """A Stripe Checkout Session this server created: the pack it sells is recorded here, so a
    webhook credits what was sold, never what an event's metadata claims."""

    __tablename__ = "checkout_sessions"
    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # Stripe's cs_...
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    credits: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)  # in the currency's minor unit (cents)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))  # open|paid|expired
    created_at: Mapped[float] = mapped_column(Float)
    paid_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    payment_intent: Mapped[str | None] = mapped_column(String(255), nullable=True)


class PaymentEvent(Base):
    """A Stripe event about money already credited (charge.refunded, charge.dispute.created):
    recorded for the account's ledger page and the operator; debiting is the operator's call."""

    __tablename__ = "payment_events"
    id: Mapped[str] = mapped_column(String(255), primary_key=True)  # Stripe's evt_...
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(255))  # the charge or dispute
    amount: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # minor unit
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)


class CodeBatch(Base):
    """Redemption codes made together by an operator: each worth ``credits``, once."""

    __tablename__ = "code_batches"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    credits: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class RedemptionCode(Base):
    """One code, stored only as its SHA-256 (codes carry >= 128 random bits); single use."""

    __tablename__ = "redemption_codes"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the code
    batch_id: Mapped[str] = mapped_column(ForeignKey("code_batches.id"), index=True)
    hint: Mapped[str] = mapped_column(String(16))  # the code's last characters, for people
    redeemed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    account_id: Mapped[str | None] = mapped_column(ForeignKey("accounts.id"), nullable=True)
