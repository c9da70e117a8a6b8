"""Ingestion from a configuration: accounts, plans, ledger, runner, clients, wired together.

This is the embedded runtime's step 1-3 (`amzlake run`, `amzlake backfill`); the AWS runtime
calls the same planner and runner steps from its Lambda handlers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import TracebackType

import httpx

from amzlake.catalog.marketplaces import MARKETPLACES_BY_ID
from amzlake.catalog.vendor import REPORTING_TIMEZONE
from amzlake.clock import ScaledClock
from amzlake.config import AmzlakeConfig
from amzlake.errors import ConfigError, StaleEntry, StorageError
from amzlake.ingest import states
from amzlake.ingest.planner import PlannedSlice, ReportPlan, plan_backfill, plan_report
from amzlake.ingest.runner import Listener, Runner, RunResult, RunSettings, merge, resumable
from amzlake.ingest.states import SliceState
from amzlake.ratelimit import SharedBudget
from amzlake.secrets import CredentialChain
from amzlake.slices import Account, Source
from amzlake.sources.ads import AdsClient
from amzlake.sources.http import Timeouts
from amzlake.sources.lwa import LwaTokenProvider, TokenCache
from amzlake.sources.spapi import SpApiClient
from amzlake.storage.ledger import Ledger, LedgerEntry, open_ledger
from amzlake.storage.objects import ObjectStore, open_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClockTimer:
    """The http layer's Timer over the runner's clock, so rate limits and backoff share its time."""

    clock: ScaledClock

    def now(self) -> float:
        return self.clock.elapsed()

    async def sleep(self, seconds: float) -> None:
        await self.clock.sleep(seconds)


@dataclass
class ClientPool:
    """API clients per LWA app and region (Ads) or per account (SP-API), created on first use."""

    config: AmzlakeConfig
    credentials: CredentialChain
    clock: ScaledClock
    # On AWS: the rate budget the concurrent Lambda invocations share (aws/rate_budget.py).
    shared: SharedBudget | None = None
    # On AWS: access tokens the invocations of one Lambda container hand on (sources/lwa.py).
    token_cache: TokenCache | None = None
    _tokens: dict[tuple[str, str, str], LwaTokenProvider] = field(default_factory=dict)
    _ads: dict[tuple[str, str], AdsClient] = field(default_factory=dict)
    _spapi: dict[str, SpApiClient] = field(default_factory=dict)

    def _timeouts(self) -> Timeouts:
        t = self.config.run.http_timeout.total_seconds()
        return Timeouts(connect=min(10.0, t), read=t, write=t, pool=t)

    def _token_provider(self, app: str, refresh_ref: str, token_url: str) -> LwaTokenProvider:
        key = (app, refresh_ref, token_url)
        if key not in self._tokens:
            lwa = self.config.lwa[app]
            self._tokens[key] = LwaTokenProvider(
                token_url, lwa.client_id, self.credentials.resolve(str(lwa.client_secret)),
                self.credentials.resolve(refresh_ref), timer=ClockTimer(self.clock),
                timeouts=self._timeouts(), cache=self.token_cache,
            )
        return self._tokens[key]

    def ads_for(self, app: str, region: str) -> AdsClient:
        """The Ads client of `app` in `region`."""
        key = (app, region)
        if key not in self._ads:
            ads = self.config.ads
            if ads.refresh_token is None:
                raise ConfigError("ads.refresh_token: required when ads is enabled")
            hosts = self.config.endpoints.hosts(region)
            tokens = self._token_provider(app, str(ads.refresh_token), hosts.ads_lwa)
            self._ads[key] = AdsClient(hosts.ads, self.config.lwa[app].client_id, tokens,
                                       timer=ClockTimer(self.clock), timeouts=self._timeouts(),
                                       shared=self.shared)
        return self._ads[key]

    def ads(self, account: Account) -> AdsClient:
        return self.ads_for(account.lwa_app, account.region)

    def spapi(self, account: Account) -> SpApiClient:
        if account.account_id not in self._spapi:
            vendor = self.config.vendor
            configured = next((a for a in vendor.accounts
                               if a.selling_partner_id == account.account_id), None)
            if configured is None:
                raise ConfigError(f"vendor account {account.account_id} is not configured")
            hosts = self.config.endpoints.hosts(account.region)
            tokens = self._token_provider(account.lwa_app, str(configured.refresh_token),
                                          hosts.spapi_lwa)
            self._spapi[account.account_id] = SpApiClient(
                hosts.spapi, tokens, account=account.account_id, timer=ClockTimer(self.clock),
                timeouts=self._timeouts(), shared=self.shared)
        return self._spapi[account.account_id]

    def stats(self) -> dict[str, float]:
        """Calls, retries, throttles and server errors so far, and the seconds calls spent
        waiting for the rate limiter and in backoff (summed over calls), over every client."""
        total: dict[str, float] = {}
        for client in [*self._ads.values(), *self._spapi.values()]:
            for stat in client.http.stats().values():
                for name in ("calls", "retries", "throttled", "server_errors", "rate_wait",
                             "backoff_wait"):
                    total[name] = total.get(name, 0) + getattr(stat, name)
        return total

    def operation_stats(self) -> dict[str, dict[str, float]]:
        """Every counter of CallStats per operation (`api.operation`), summed over every client."""
        total: dict[str, dict[str, float]] = {}
        for client in [*self._ads.values(), *self._spapi.values()]:
            for name, stat in client.http.stats().items():
                into = total.setdefault(name, {})
                for key, value in stat.as_dict().items():
                    into[key] = into.get(key, 0) + value
        return dict(sorted(total.items()))

    async def aclose(self) -> None:
        """Close every client's connections."""
        for client in [*self._ads.values(), *self._spapi.values()]:
            await client.aclose()
        for tokens in self._tokens.values():
            await tokens.aclose()


async def discover_accounts(config: AmzlakeConfig, pool: ClientPool) -> list[Account]:
    """The accounts to pull: Ads profiles of the login (filtered as configured) and vendors."""
    out: list[Account] = []
    ads = config.ads
    if ads.enabled:
        for region in ads.regions:
            for p in await pool.ads_for(ads.lwa_app, region.value).list_profiles():
                if ads.profiles is not None and p.profile_id not in ads.profiles:
                    continue
                if ads.countries is not None and p.country_code not in ads.countries:
                    continue
                out.append(Account(Source.ADS, str(p.profile_id), region.value,
                                   p.marketplace_id or "", p.country_code, p.currency_code,
                                   p.timezone, ads.lwa_app))
        if ads.profiles is not None:
            missing = set(ads.profiles) - {int(a.account_id) for a in out if a.source is Source.ADS}
            if missing:
                raise ConfigError(f"ads.profiles: {sorted(missing)} not found among the login's "
                                  f"profiles in {', '.join(r.value for r in ads.regions)}")
    vendor = config.vendor
    if vendor.enabled:
        for a in vendor.accounts:
            mp = MARKETPLACES_BY_ID[a.marketplace_id]
            out.append(Account(Source.VENDOR, a.selling_partner_id, a.region.value,
                               a.marketplace_id, mp.country_code, mp.currency_code,
                               str(REPORTING_TIMEZONE), vendor.account_lwa_app(a)))
    return out


def build_plans(config: AmzlakeConfig, accounts: Iterable[Account]) -> list[ReportPlan]:
    """Every (account, report) the configuration asks for, with lookback and backfill start."""
    plans: list[ReportPlan] = []
    for account in accounts:
        if account.source is Source.ADS:
            for r in config.ads.planned_reports():
                plans.append(ReportPlan(account, r.spec, r.lookback_days, config.ads.backfill_start))
        else:
            configured = next(a for a in config.vendor.accounts
                              if a.selling_partner_id == account.account_id)
            for r in config.vendor.planned_reports(configured):
                plans.append(ReportPlan(account, r.spec, r.lookback_days,
                                        config.vendor.backfill_start))
    return plans


# A download takes minutes; a temp file or multipart upload a day old was left by a killed one.
ABANDONED_AFTER = timedelta(days=1)
_FINISHED = frozenset({SliceState.CURATED, SliceState.EMPTY, SliceState.CANCELLED,
                       SliceState.FAILED, SliceState.DOWNLOADED})


def clock_for(config: AmzlakeConfig) -> ScaledClock:
    """The run's clock: real time, or, when the endpoints are an amzlake emulator, its virtual
    clock (same now, same speed), so "yesterday" and every wait mean what the emulator means."""
    base = config.endpoints.base_url
    if base:
        try:
            answer = httpx.get(f"{base}/_emulator/clock", timeout=3.0)
            if answer.status_code == 200:
                body = answer.json()
                now = datetime.fromisoformat(body["now"])
                log.info("using the emulator's clock: %s, x%g", now.isoformat(), body["scale"])
                return ScaledClock(float(body["scale"]), now)
        except (httpx.HTTPError, ValueError, KeyError):
            pass  # not an emulator: Amazon's own hosts or a proxy in front of them
    return ScaledClock()


def run_owner() -> str:
    """A name for this run's leases: host, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


@dataclass(frozen=True)
class Prepared:
    """What a run is about to work: its accounts, what the planner asked for, the entries."""

    accounts: list[Account]
    planned: list[PlannedSlice]
    work: list[LedgerEntry]


@dataclass
class Ingestion:
    """Everything one `amzlake run` needs, opened from a configuration; close it when done."""

    config: AmzlakeConfig
    clock: ScaledClock
    ledger: Ledger
    store: ObjectStore
    pool: ClientPool
    owner: str = field(default_factory=run_owner)

    @classmethod
    def open(cls, config: AmzlakeConfig, clock: ScaledClock | None = None,
             credentials: CredentialChain | None = None) -> Ingestion:
        """Open the ledger and raw zone the configuration names."""
        clock = clock or ScaledClock()
        creds = credentials or CredentialChain.default(base_dir=config.base_dir)
        return cls(config, clock, open_ledger(config.storage.ledger_location),
                   open_store(config.storage.raw_location), ClientPool(config, creds, clock))

    async def aclose(self) -> None:
        await self.pool.aclose()
        self.ledger.close()

    async def __aenter__(self) -> Ingestion:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    def settings(self) -> RunSettings:
        """The runner's pacing from [run]."""
        run = self.config.run
        return RunSettings(
            download_concurrency=run.concurrency,
            create_concurrency=run.concurrency,
            poll_initial=run.poll_initial.total_seconds(),
            poll_factor=run.poll_factor,
            poll_max=run.poll_max.total_seconds(),
            max_wait=run.max_wait_for,
        )

    def plan(self, plans: Iterable[ReportPlan], now: datetime,
             backfill: tuple[date, date] | None = None) -> list[PlannedSlice]:
        """The slices the plans need now (or to fill `backfill`), from the ledger's history."""
        out: list[PlannedSlice] = []
        for p in plans:
            history = self.ledger.query(source=p.account.source.value,
                                        account_id=p.account.account_id,
                                        report_type=p.spec.report_type)
            if backfill is None:
                out += plan_report(p, now, history)
            else:
                out += plan_backfill(p, backfill[0], backfill[1], now, history)
        return out

    def record(self, planned: list[PlannedSlice], now: datetime) -> list[LedgerEntry]:
        """Put planned slices in the ledger; finished ones asked for again are replanned, and a
        failed one once its retry time (if it has one) has come."""
        entries = self.ledger.plan([p.slice for p in planned], now)
        out = []
        for entry in entries:
            if entry.state in _FINISHED:
                if entry.updated_at > now:
                    continue  # another run finished it after we planned: it is done
                if entry.state is SliceState.FAILED and not states.retry_due(entry, now):
                    continue  # e.g. a lost create's report may still show up: look later
                try:
                    entry = self.ledger.update(entry, states.replan(entry, now, force=True))
                except StaleEntry:
                    continue  # another run replanned it just now and works it
            out.append(entry)
        return out

    def sweep_raw_zone(self) -> int:
        """Remove what downloads killed mid-stream left in the raw zone a day or more ago (file
        and object times are real time, so the real clock); a failure only warns."""
        try:
            removed = self.store.sweep_abandoned(datetime.now(UTC) - ABANDONED_AFTER)
        except StorageError as exc:
            log.warning("could not sweep the raw zone's unfinished writes: %s", exc)
            return 0
        if removed:
            log.info("removed %d unfinished writes that killed downloads left in the raw zone",
                     removed)
        return removed

    async def prepare(self, backfill: tuple[date, date] | None = None) -> Prepared:
        """The run's accounts, its planned slices, and its work: the planned entries recorded in
        the ledger plus whatever an earlier run left live, without duplicates."""
        accounts = await discover_accounts(self.config, self.pool)
        now = self.clock.now()
        planned = self.plan(build_plans(self.config, accounts), now, backfill)
        entries = self.record(planned, now)
        live = [e for e in resumable(self.ledger)
                if any(a.source.value == e.source and a.account_id == e.account_id
                       for a in accounts)]
        return Prepared(accounts, planned, merge(entries, live))

    def runner(self, accounts: Iterable[Account], listener: Listener | None = None) -> Runner:
        """A runner over this ingestion's ledger, raw zone and clients for `accounts`."""
        return Runner(
            ledger=self.ledger, store=self.store, clients=self.pool, clock=self.clock,
            accounts={(a.source.value, a.account_id): a for a in accounts}, owner=self.owner,
            settings=self.settings(), listener=listener,
        )

    async def run(self, *, backfill: tuple[date, date] | None = None,
                  listener: Listener | None = None,
                  on_start: Callable[[list[LedgerEntry]], None] | None = None,
                  ) -> tuple[RunResult, list[PlannedSlice]]:
        """Plan, record and work every slice; resumes whatever an earlier run left live."""
        # On AWS the raw bucket's lifecycle rule aborts unfinished uploads; here the run does.
        await asyncio.to_thread(self.sweep_raw_zone)
        prepared = await self.prepare(backfill)
        runner = self.runner(prepared.accounts, listener)
        work, planned = prepared.work, prepared.planned
        if on_start is not None:
            on_start(work)
        result = await runner.run(work)
        return result, planned

