"""Which rows win when slices are committed together: newest fetch per account, identity and day.

Pure functions, no I/O. A slice claims every day of its footprint (and any day its rows hold): on
each claimed day its rows replace the rows of the same account and report identity, unless the
table, or another slice in the same commit, holds that day from a later fetch. Ties (the same
fetch committed again, e.g. a rerun) go to the slice, so a rerun rewrites identical rows. Between
two slices of one commit fetched at the same instant, the larger slice key wins, so the outcome
never depends on the order the slices were staged in.

An answer with no data (Ads `[]`, SP-API CANCELLED) leaves no row in the table to say when it was
fetched: it clears what is older than it in the table and in its own commit, but an older document
committed later would bring its rows back. The transform commits documents in the order they
arrived and a failed table commit fails every slice of that table together, so that order never
happens in a run (the tests hold both cases).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

Key = tuple[str, str, date]  # (account_id, identity_key, report_date)


@dataclass(frozen=True)
class Claim:
    """What one staged slice asks of a table: its days of one account and identity."""

    account_id: str
    identity_key: str
    days: frozenset[date]
    fetched_at: datetime
    slice_key: str

    def claimed(self) -> list[Key]:
        """The (account, identity, day) keys the slice claims."""
        return [(self.account_id, self.identity_key, d) for d in sorted(self.days)]


@dataclass
class Decision:
    """Per claim, the days it won and the days it lost; the keys whose table rows go."""

    won: list[set[date]] = field(default_factory=list)
    skipped: list[set[date]] = field(default_factory=list)  # a later fetch holds the day
    replaced: set[Key] = field(default_factory=set)  # keys a claim won that the table holds

    def replaced_by_account(self) -> dict[str, set[tuple[str, date]]]:
        """The replaced keys as account -> {(identity, day)}."""
        out: dict[str, set[tuple[str, date]]] = defaultdict(set)
        for account, identity, day in self.replaced:
            out[account].add((identity, day))
        return out


def decide(claims: Sequence[Claim], table_newest: Mapping[Key, datetime]) -> Decision:
    """Who wins each claimed key: the newest fetch among the claims and the table's rows."""
    best: dict[Key, int] = {}
    for i, claim in enumerate(claims):
        for key in claim.claimed():
            j = best.get(key)
            if j is None or (claim.fetched_at, claim.slice_key) > (claims[j].fetched_at,
                                                                   claims[j].slice_key):
                best[key] = i
    decision = Decision(won=[set() for _ in claims], skipped=[set() for _ in claims])
    for i, claim in enumerate(claims):
        for key in claim.claimed():
            held = table_newest.get(key)
            if best[key] == i and (held is None or held <= claim.fetched_at):
                decision.won[i].add(key[2])
                if held is not None:
                    decision.replaced.add(key)
            else:
                decision.skipped[i].add(key[2])
    return decision
