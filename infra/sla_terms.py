"""The commercial terms of a care plan: service credits, the support time bank, the fee.

The tier's credit table and time bank plus the client's optional monthly fee
become plan values here (with amounts where the fee is known, else percentages
only). `credit_for` is the one place a period's uptime is turned into a credit and
`month_credit` the one place a month's credits (several sites, several
causes) are added up under the cap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from infra.spec import Credits, Fee, TimeBank


@dataclass(frozen=True)
class FeePlan:
    monthly: float
    currency: str


@dataclass(frozen=True)
class CreditBandPlan:
    below_percent: float
    credit_percent: float
    credit_amount: float | None


@dataclass(frozen=True)
class CreditPlan:
    bands: tuple[CreditBandPlan, ...]
    cap_percent: float
    cap_amount: float | None
    claim: str
    currency: str | None


@dataclass(frozen=True)
class TimeBankPlan:
    included_minutes_per_month: int
    rollover_months: int


@dataclass(frozen=True)
class Credit:
    """What one period's uptime earns: the band reached (None: no credit) and its value."""

    band: CreditBandPlan | None
    percent: float
    amount: float | None


def _amount(fee: Fee | None, percent: float) -> float | None:
    return None if fee is None else round(fee.monthly * percent / 100, 2)


def fee_plan(fee: Fee | None) -> FeePlan | None:
    return None if fee is None else FeePlan(round(fee.monthly, 2), fee.currency)


def credit_plan(credits: Credits, fee: Fee | None) -> CreditPlan:
    return CreditPlan(
        bands=tuple(CreditBandPlan(b.below, b.percent, _amount(fee, b.percent)) for b in credits.bands),
        cap_percent=credits.cap,
        cap_amount=_amount(fee, credits.cap),
        claim=credits.claim,
        currency=fee.currency if fee else None,
    )


def time_bank_plan(bank: TimeBank) -> TimeBankPlan:
    return TimeBankPlan(bank.per_month // 60, bank.rollover_months)


def credit_for(plan: CreditPlan, uptime_percent: float) -> Credit:
    """The credit a period's uptime earns: the lowest band it fell below, at most the cap."""
    reached = [band for band in plan.bands if uptime_percent < band.below_percent]
    if not reached:
        return Credit(None, 0.0, 0.0 if plan.cap_amount is not None else None)
    band = min(reached, key=lambda b: b.below_percent)
    percent = min(band.credit_percent, plan.cap_percent)
    amount = None
    if band.credit_amount is not None and plan.cap_amount is not None:
        amount = min(band.credit_amount, plan.cap_amount)
    return Credit(band, percent, amount)


def month_credit(plan: CreditPlan, credits: Iterable[Credit]) -> Credit:
    """A month's credits added up, never more than the cap (band: the lowest band any of them reached)."""
    credits = list(credits)
    reached = [c.band for c in credits if c.band is not None]
    band = min(reached, key=lambda b: b.below_percent) if reached else None
    percent = min(sum(c.percent for c in credits), plan.cap_percent)
    amounts = [c.amount for c in credits]
    amount = None
    if plan.cap_amount is not None and all(a is not None for a in amounts):
        amount = round(min(sum(a for a in amounts if a is not None), plan.cap_amount), 2)
    return Credit(band, percent, amount)
