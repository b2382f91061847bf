#!/usr/bin/env python3
"""Compare ticksync's exchange calendars with exchange-calendars (PyPI), day by day.

Run by hand, not in CI (it needs a Python package the project does not ship):

    python3 -m venv /tmp/ecal && /tmp/ecal/bin/pip install exchange-calendars==4.13.2
    export PATH="$PWD/node_modules/.bin:$PATH"   # bun on PATH
    /tmp/ecal/bin/python scripts/calendars/check.py [CODE ...] [--from 2000] [--to 2035]

For each market it runs scripts/calendars/dump.ts (our calendar, through its exported API), builds
the exchange-calendars calendar of the market's MIC, and compares every weekday: trading or not,
half day (early close) or not, the session's open and close instants (UTC), and its break (a lunch
break: exchange-calendars' break_start and break_end, at most one a day, against ours). A difference fails
the run (exit 1) unless scripts/calendars/known-differences.json lists it with a reason (by date, or
by a range of dates, from..until, for one kind: a change of hours the market file does not date);
an entry there that no longer matches a difference fails it too, so the file cannot go stale.

A market with no exchange (MIC XXXX: FX, CRYPTO) is compared with exchange-calendars' "24/7"
calendar when it trades every day, else its "24/5" one (see their_calendar). Both are UTC days
00:00-24:00: the instants are compared only for a market whose sessions are UTC days too (CRYPTO);
for FX (17:00 New York to 17:00) only which days are sessions, and half days, are compared.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KNOWN = os.path.join(HERE, "known-differences.json")
KINDS = ("session", "half-day", "open", "close", "break")

try:
    import exchange_calendars as xcals
    import pandas as pd
except ImportError:
    sys.exit("exchange_calendars is not installed: python3 -m venv /tmp/ecal && "
             "/tmp/ecal/bin/pip install exchange-calendars==4.13.2, then run with /tmp/ecal/bin/python")


def ours(market: str, first: int, last: int, dump_file: str | None) -> list[dict]:
    """Our calendar's answer for every weekday, from dump.ts (or a file it wrote)."""
    if dump_file is not None:
        with open(dump_file, encoding="utf-8") as f:
            text = f.read()
    else:
        cmd = ["bun", os.path.join(HERE, "dump.ts"), market, str(first), str(last)]
        text = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    days = [json.loads(line) for line in text.splitlines() if line.strip()]
    days = [d for d in days if d["market"] == market]
    if not days:
        sys.exit(f"dump.ts printed no days for {market}")
    return days


def theirs(mic: str, first: int, last: int) -> tuple[object, dt.date, dt.date, str | None]:
    """The exchange-calendars calendar over the years asked; the widest it accepts if it refuses them."""
    start, end = f"{first}-01-01", f"{last}-12-31"
    try:
        return xcals.get_calendar(mic, start=start, end=end), dt.date(first, 1, 1), dt.date(last, 12, 31), None
    except ValueError as e:  # a range beyond the calendar's bounds: compare what it has
        cal = xcals.get_calendar(mic)
        lo = max(dt.date(first, 1, 1), cal.first_session.date())
        hi = min(dt.date(last, 12, 31), cal.last_session.date())
        return cal, lo, hi, f"exchange-calendars refused {start}..{end} ({e}); compared {lo}..{hi}"


def iso_utc(ts) -> str:
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.000Z")


def their_days(cal, lo: dt.date, hi: dt.date) -> dict[str, dict]:
    sched = cal.schedule.loc[str(lo):str(hi)]
    early = {d.date().isoformat() for d in cal.early_closes}
    has_breaks = "break_start" in sched.columns
    return {
        day.date().isoformat(): {
            "open": iso_utc(row["open"]),
            "close": iso_utc(row["close"]),
            "half": day.date().isoformat() in early,
            "breaks": [{"from": iso_utc(row["break_start"]), "to": iso_utc(row["break_end"])}]
            if has_breaks and not pd.isna(row["break_start"]) else [],
        }
        for day, row in sched.iterrows()
    }


def describe(d: dict | None) -> str:
    if d is None or not d.get("trading", True):
        return "closed"
    breaks = "".join(f" break {b['from']}..{b['to']}" for b in d.get("breaks", []))
    return f"{d.get('openUtc', d.get('open'))}..{d.get('closeUtc', d.get('close'))}" + (" half day" if d.get("half") else "") + breaks


def compare(our_days: list[dict], their: dict[str, dict], lo: dt.date, hi: dt.date) -> tuple[int, int, int, list[dict]]:
    """Weekdays compared, sessions ours/theirs, and every (date, kind) that differs."""
    diffs: list[dict] = []
    compared = sessions_ours = 0
    seen = set()
    for d in our_days:
        date = d["date"]
        if not lo.isoformat() <= date <= hi.isoformat():
            continue
        compared += 1
        seen.add(date)
        sessions_ours += d["trading"]
        t = their.get(date)
        both = f"ours {describe(d)}; exchange-calendars {describe(t)}"
        if d["trading"] != (t is not None):
            diffs.append({"date": date, "kind": "session", "both": both})
            continue
        if t is None:
            continue
        if d["half"] != t["half"]:
            diffs.append({"date": date, "kind": "half-day", "both": both})
        if d["openUtc"] != t["open"]:
            diffs.append({"date": date, "kind": "open", "both": both})
        if d["closeUtc"] != t["close"]:
            diffs.append({"date": date, "kind": "close", "both": both})
        if d.get("breaks", []) != t["breaks"]:
            diffs.append({"date": date, "kind": "break", "both": both})
    # dump.ts prints weekdays only: a session exchange-calendars has on a weekend is a difference too.
    for date in sorted(set(their) - seen):
        diffs.append({"date": date, "kind": "session", "both": f"ours closed (weekend); exchange-calendars {describe(their[date])}"})
    return compared, sessions_ours, len(their), diffs


def load_known(path: str) -> dict[str, list[dict]]:
    with open(path, encoding="utf-8") as f:
        known = json.load(f)
    for mic, entries in known.items():
        if mic.startswith("_"):
            continue
        for e in entries:
            dated = bool(e.get("date")) != bool(e.get("from") and e.get("until"))
            if e.get("kind") not in KINDS or not dated or not e.get("reason") or not e.get("source"):
                sys.exit(f"{path}: {mic} entry {e} needs a date (or from and until), kind ({', '.join(KINDS)}), reason and source")
    return known


def their_calendar(m: dict) -> tuple[str, str | None]:
    """The exchange-calendars name to compare a market with, and why instants are not compared (None: they are)."""
    if m["mic"] != "XXXX":
        return m["mic"], None
    name = "24/7" if len(m["weekdays"]) == 7 else "24/5"
    if m["timeZone"] == "UTC" and m["open"] == ["00:00", "24:00"]:
        return name, None
    return name, (f"{name} has UTC days 00:00-24:00, ours {m['open'][0]}-{m['open'][1]} {m['timeZone']}: "
                  "open and close instants differ by design and are not compared; sessions and half days are")


def check_market(market: str, m: dict, args, known: list[dict]) -> bool:
    mic, skip_instants = their_calendar(m)
    cal, lo, hi, refused = theirs(mic, args.first, args.last)
    compared, sessions_ours, sessions_theirs, diffs = compare(ours(market, args.first, args.last, args.dump), their_days(cal, lo, hi), lo, hi)
    if skip_instants:
        diffs = [d for d in diffs if d["kind"] not in ("open", "close")]

    def known_for(date: str, kind: str) -> int | None:
        """The index of the entry that lists this difference: its date, or a range holding it."""
        for i, e in enumerate(known):
            if e["kind"] == kind and (e.get("date") == date or e.get("from", "~") <= date <= e.get("until", "")):
                return i
        return None

    used: set[int] = set()
    print(f"== {market} ({mic}) {lo}..{hi}, exchange-calendars {xcals.__version__}")
    if refused:
        print(f"   note: {refused}")
    if skip_instants:
        print(f"   note: {skip_instants}")
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for d in diffs:
        by_kind[d["kind"]].append(d)
    unexplained = 0
    in_ranges: dict[int, list[str]] = defaultdict(list)
    for kind in KINDS:
        for d in by_kind.get(kind, []):
            i = known_for(d["date"], kind)
            k = known[i] if i is not None else None
            if i is not None:
                used.add(i)
            else:
                unexplained += 1
            if k is not None and "from" in k:
                in_ranges[i].append(d["date"])  # one line per range below, not one per day
                continue
            tag = f"known: {k['reason']}" if k else "DIFFERS"
            print(f"   {kind:8} {d['date']}  {d['both']}  [{tag}]")
    for i, dates_in in in_ranges.items():
        e = known[i]
        print(f"   {e['kind']:8} {e['from']}..{e['until']}  {len(dates_in)} days, {dates_in[0]}..{dates_in[-1]}  [known: {e['reason']}]")
    stale = [e for i, e in enumerate(known) if i not in used]
    for e in stale:
        when = e.get("date") or f"{e['from']}..{e['until']}"
        print(f"   STALE known difference {when} {e['kind']}: no longer differs; remove it from known-differences.json")
    dates = len({d["date"] for d in diffs})
    print(f"   days compared {compared}; sessions ours {sessions_ours}, exchange-calendars {sessions_theirs}; "
          f"days differing {dates} ({len(diffs)} differences: {len(diffs) - unexplained} known, {unexplained} unexplained)")
    return unexplained == 0 and not stale


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("markets", nargs="*", help="ticksync market codes (default: every market of the registry)")
    p.add_argument("--from", dest="first", type=int, default=2000)
    p.add_argument("--to", dest="last", type=int, default=2035)
    p.add_argument("--dump", help="read our calendar from this dump.ts output instead of running bun")
    p.add_argument("--known", default=KNOWN)
    args = p.parse_args()
    known = load_known(args.known)
    markets = json.loads(subprocess.run(
        ["bun", "-e", "import { MARKETS } from './src/domain/markets/index.ts'; console.log(JSON.stringify(Object.fromEntries(MARKETS.map((m) => "
                      "[m.code, { mic: m.mic, timeZone: m.timeZone, weekdays: m.tradingWeekdays ?? ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'], open: [m.phases.open.from, m.phases.open.to] }]))))"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    ok = True
    for market in args.markets or list(markets):
        if market not in markets:
            sys.exit(f"unknown market {market}: expected one of {', '.join(markets)}")
        m = markets[market]
        # known-differences.json is keyed by the calendar compared with: the MIC, or 24/7 and 24/5.
        ok = check_market(market, m, args, known.get(their_calendar(m)[0], [])) and ok
    print("OK: every difference is explained" if ok else "FAIL: unexplained or stale differences above")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
