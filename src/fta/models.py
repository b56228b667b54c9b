"""Imports every domain's models so the metadata knows all tables."""

from fta.access.models import UsageEvent, UsagePeriod
from fta.accounts.models import (
    AuthSession,
    PasswordResetRequest,
    PersonalToken,
    RecoveryCode,
    Tenant,
    User,
)
from fta.audit.models import AuditChainHead, AuditEvent
from fta.billing.alerts.models import BillingAlert
from fta.billing.invoices.models import Invoice, InvoiceCounter, InvoiceLine
from fta.billing.paypal.models import Payment, PayPalCatalogEntry, PayPalEvent, Subscription
from fta.bots.eur_rates import EurRate
from fta.bots.models import Bot, BotLog, BotTrade
from fta.jobs.market_pairs import MarketPair
from fta.jobs.models import Job, JobArchive, JobLogChunk, JobResult
from fta.mail.models import OutboxMail
from fta.market_data.candle_cache import CandleCacheEntry
from fta.market_data.recorded import RecordedCandles
from fta.plans.models import Plan
from fta.strategies.models import Strategy, StrategyVersion

__all__ = [
    "AuditChainHead",
    "AuditEvent",
    "AuthSession",
    "BillingAlert",
    "Bot",
    "BotLog",
    "BotTrade",
    "CandleCacheEntry",
    "EurRate",
    "Invoice",
    "InvoiceCounter",
    "InvoiceLine",
    "Job",
    "JobArchive",
    "JobLogChunk",
    "JobResult",
    "MarketPair",
    "OutboxMail",
    "PasswordResetRequest",
    "PayPalCatalogEntry",
    "PayPalEvent",
    "Payment",
    "PersonalToken",
    "Plan",
    "RecordedCandles",
    "RecoveryCode",
    "Strategy",
    "StrategyVersion",
    "Subscription",
    "Tenant",
    "UsageEvent",
    "UsagePeriod",
    "User",
]
