#!/usr/bin/env python3
"""Agreement of `mtp prepare` with `mapillary_tools process` (PROTOCOLS §2.5).

For each scenario folder written by `mtp dev gen-photos --scenario <name>`, runs
`mapillary_tools process <folder> --skip_process_errors` and
`mtp prepare <folder> --dry-run --json`, then compares:

  kept       which files each keeps;
  dropped    which files each drops, and why (mapillary_tools' error type mapped to our code);
  sequences  how the kept files are split into sequences (as sets: indices may differ);
  times      the capture time sent for each kept file (±1 ms: ours are integer ms);
  headings   the heading sent for each kept file (±0.5°);
  positions  the position sent for each kept file (±2 cm).

The `gpx` scenario's photos have no position: both tools geotag them from its track.gpx
(mapillary_tools `--geotag_source gpx`, mtp `--gpx`).

Prints a Markdown table (one row per scenario) and then every difference with its files.
Differences listed in KNOWN are reported as "intended"; any other makes the exit status 1.

Usage: bench/agreement.py --mtp target/release/mtp --mly .venv-mly/bin/mapillary_tools
       [--work target/bench-data/scenarios] [scenario ...]
Standard library only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SCENARIOS = [
    "walk",
    "time-gap",
    "distance-gap",
    "duplicates",
    "too-fast",
    "null-island",
    "cap",
    "zigzag",
    "zigzag-start",
    "identical-times",
    "cameras",
    "no-heading",
    "mixed",
    "gpx",
]

# mapillary_tools error type -> our left_out code.
ERROR_CODES = {
    "MapillaryDuplicationError": "duplicate",
    "MapillaryNullIslandError": "null_island",
    "MapillaryCaptureSpeedTooFastError": "sequence_too_fast",
    "MapillaryZigZagError": "zigzag_outlier",
    "MapillaryGeoTaggingError": "no_position",
    "MapillaryOutsideGPXTrackError": "outside_gpx",
}

# (scenario, aspect) -> why the difference is intended (documented on
# mtp_core::plan::plan_sequences, "Differences from mapillary_tools"). In `mixed`, a
# difference is intended when it lies in the subfolders of scenarios listed here.
_ZIGZAG_START = (
    "zig-zag check from photo 2 (ref = max(i - 5, 0)) in sequences of any length; "
    "mapillary_tools 0.14.7 checks from photo 5 and skips sequences under 6 photos, so it "
    "keeps the glitch and its 100 m rule uploads it as a 1-photo sequence"
)
KNOWN: dict[tuple[str, str], str] = {
    ("zigzag-start", "kept"): _ZIGZAG_START,
    ("zigzag-start", "dropped"): _ZIGZAG_START,
    ("zigzag-start", "sequences"): _ZIGZAG_START,
}

DESC = "mapillary_image_description.json"
ASPECTS = ("kept", "dropped", "sequences", "times", "headings", "positions")

# What mapillary_tools must do with each fixture for the scenario to exercise its rule:
# (sorted sequence sizes, {drop code: count}). Checked so that "agree" is never vacuous.
EXPECTED: dict[str, tuple[list[int], dict[str, int]]] = {
    "walk": ([100], {}),
    "time-gap": ([30, 60], {}),
    "distance-gap": ([30, 60], {}),
    "duplicates": ([33], {"duplicate": 7}),
    "too-fast": ([20, 20], {"sequence_too_fast": 20}),
    "null-island": ([28], {"null_island": 2}),
    "cap": ([100, 500, 500, 1000], {}),
    "zigzag": ([57], {"zigzag_outlier": 3}),
    "zigzag-start": ([1, 1, 2, 2, 2, 27], {}),
    "identical-times": ([30], {}),
    "cameras": ([20, 20, 20], {}),
    "no-heading": ([1, 20], {}),
    "gpx": ([60], {}),
}


def expected(scenario: str) -> tuple[list[int], dict[str, int]] | None:
    if scenario == "mixed":
        sizes: list[int] = []
        drops: dict[str, int] = {}
        for sc, (sz, dr) in EXPECTED.items():
            if sc == "gpx":  # not one of mixed's parts: it needs its track
                continue
            sizes += sz
            for k, v in dr.items():
                drops[k] = drops.get(k, 0) + v
        return sorted(sizes), drops
    return EXPECTED.get(scenario)


def fixture_ok(scenario: str, mly: "Outcome") -> bool:
    """Whether mapillary_tools' result has the expected shape and unique times per sequence."""
    exp = expected(scenario)
    if exp is None:
        return True
    drops: dict[str, int] = {}
    for code in mly.dropped.values():
        drops[code] = drops.get(code, 0) + 1
    unique_times = all(len({mly.time_ms[f] for f in s}) == len(s) for s in mly.sequences)
    return sorted(len(s) for s in mly.sequences) == exp[0] and drops == exp[1] and unique_times


def gpx_of(folder: Path) -> Path | None:
    """The track a scenario's photos are geotagged from, if it has one."""
    track = folder / "track.gpx"
    return track if track.exists() else None


def run_mly(mly: str, folder: Path) -> list[dict]:
    desc = folder / DESC
    desc.unlink(missing_ok=True)
    env = dict(os.environ, TZ="UTC")
    track = gpx_of(folder)
    geotag = ["--geotag_source", "gpx", "--geotag_source_path", str(track)] if track else []
    r = subprocess.run(
        [mly, "process", str(folder), "--skip_process_errors", *geotag],
        env=env,
        capture_output=True,
        text=True,
    )
    if r.returncode != 0 or not desc.exists():
        sys.exit(f"mapillary_tools failed on {folder} ({r.returncode}):\n{r.stderr[-3000:]}")
    out = json.loads(desc.read_text())
    desc.unlink()
    return out


def run_mtp(mtp: str, folder: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="mtp-agree-") as data:
        env = dict(os.environ, TZ="UTC", MTP_DATA_DIR=data)
        r = subprocess.run(
            [mtp, "prepare", str(folder), "--dry-run", "--json",
             *(["--gpx", str(gpx_of(folder))] if gpx_of(folder) else [])],
            env=env,
            cwd=data,
            capture_output=True,
            text=True,
        )
    # Exit 2 = nothing can be uploaded: still a plan to compare.
    if r.returncode not in (0, 2):
        sys.exit(f"mtp prepare failed on {folder} ({r.returncode}):\n{r.stderr[-3000:]}")
    return json.loads(r.stdout)["plan"]


def mly_time_ms(s: str) -> int:
    t = dt.datetime.strptime(s, "%Y_%m_%d_%H_%M_%S_%f").replace(tzinfo=dt.timezone.utc)
    return round(t.timestamp() * 1000)


class Outcome:
    """What one tool did with a folder, keyed by file name (unique per scenario folder)."""

    def __init__(self) -> None:
        self.sequences: list[list[str]] = []
        self.dropped: dict[str, str] = {}
        self.time_ms: dict[str, int] = {}
        self.heading: dict[str, float | None] = {}
        self.pos: dict[str, tuple[float, float]] = {}

    @property
    def kept(self) -> set[str]:
        return {f for s in self.sequences for f in s}


def from_mly(descs: list[dict]) -> Outcome:
    o = Outcome()
    seqs: dict[str, list[str]] = {}
    for d in descs:
        name = Path(d["filename"]).name
        if "error" in d:
            t = d["error"]["type"]
            o.dropped[name] = ERROR_CODES.get(t, t)
            continue
        seqs.setdefault(d["MAPSequenceUUID"], []).append(name)
        o.time_ms[name] = mly_time_ms(d["MAPCaptureTime"])
        o.heading[name] = (d.get("MAPCompassHeading") or {}).get("TrueHeading")
        o.pos[name] = (d["MAPLatitude"], d["MAPLongitude"])
    o.sequences = list(seqs.values())
    return o


def from_mtp(plan: dict) -> Outcome:
    o = Outcome()
    for s in plan["sequences"]:
        o.sequences.append([p["file_name"] for p in s["photos"]])
        for p in s["photos"]:
            o.time_ms[p["file_name"]] = p["captured_at"]
            o.heading[p["file_name"]] = p["heading"]
            o.pos[p["file_name"]] = (p["lat"], p["lon"])
    for lo in plan["left_out"]:
        o.dropped[lo["file_name"]] = lo["code"]
    return o


def compact(names) -> str:
    """`a_00001.jpg a_00002.jpg a_00003.jpg a_00007.jpg` -> `a_00001..00003, a_00007`."""
    items = sorted(names)
    out: list[str] = []
    run: list[tuple[str, int, str]] = []

    def flush() -> None:
        if not run:
            return
        p, a, _ = run[0]
        _, b, s = run[-1]
        width = len(s)
        out.append(f"{p}{a:0{width}d}" + (f"..{b:0{width}d}" if b != a else ""))
        run.clear()

    for n in items:
        m = re.fullmatch(r"(.*?)(\d+)\.jpg", n)
        if not m:
            flush()
            out.append(n)
            continue
        p, num = m.group(1), m.group(2)
        if run and run[-1][0] == p and run[-1][1] + 1 == int(num):
            run.append((p, int(num), num))
        else:
            flush()
            run.append((p, int(num), num))
    flush()
    if len(out) > 12:
        out = out[:12] + [f"… ({len(items)} files)"]
    return ", ".join(out) if out else "—"


def compare(mly: Outcome, mtp: Outcome) -> dict[str, list[str]]:
    """Differences per aspect, as lines of text (empty list: agree)."""
    diff: dict[str, list[str]] = {a: [] for a in ASPECTS}
    only_mly, only_mtp = mly.kept - mtp.kept, mtp.kept - mly.kept
    if only_mly:
        diff["kept"].append(f"kept only by mapillary_tools: {compact(only_mly)}")
    if only_mtp:
        diff["kept"].append(f"kept only by mtp: {compact(only_mtp)}")
    by_reason: dict[tuple[str | None, str | None], list[str]] = {}
    for f in set(mly.dropped) | set(mtp.dropped):
        a, b = mly.dropped.get(f), mtp.dropped.get(f)
        if a != b:
            by_reason.setdefault((a, b), []).append(f)
    for (a, b), files in sorted(by_reason.items(), key=lambda kv: str(kv[0])):
        diff["dropped"].append(f"mapillary_tools {a or 'keeps'} / mtp {b or 'keeps'}: {compact(files)}")
    a_seqs = {frozenset(s) for s in mly.sequences}
    b_seqs = {frozenset(s) for s in mtp.sequences}
    if a_seqs != b_seqs:
        for s in sorted(a_seqs - b_seqs, key=min):
            diff["sequences"].append(f"only mapillary_tools has the sequence {compact(s)} ({len(s)})")
        for s in sorted(b_seqs - a_seqs, key=min):
            diff["sequences"].append(f"only mtp has the sequence {compact(s)} ({len(s)})")
    both = mly.kept & mtp.kept
    bad_t = sorted(f for f in both if abs(mly.time_ms[f] - mtp.time_ms[f]) > 1)
    for f in bad_t[:8]:
        diff["times"].append(f"{f}: mapillary_tools {mly.time_ms[f]} ms, mtp {mtp.time_ms[f]} ms")
    if len(bad_t) > 8:
        diff["times"].append(f"… {len(bad_t)} files in all")

    def hdiff(a: float | None, b: float | None) -> float:
        if a is None or b is None:
            return 0.0 if a is b else 360.0
        d = abs(a - b) % 360.0
        return min(d, 360.0 - d)

    bad_h = sorted(f for f in both if hdiff(mly.heading[f], mtp.heading[f]) > 0.5)
    for f in bad_h[:8]:
        diff["headings"].append(f"{f}: mapillary_tools {mly.heading[f]}, mtp {mtp.heading[f]}")
    if len(bad_h) > 8:
        diff["headings"].append(f"… {len(bad_h)} files in all")

    def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
        dy = (a[0] - b[0]) * 111_320.0
        dx = (a[1] - b[1]) * 111_320.0 * math.cos(math.radians(a[0]))
        return math.hypot(dx, dy)

    bad_p = sorted(f for f in both if metres(mly.pos[f], mtp.pos[f]) > 0.02)
    for f in bad_p[:8]:
        diff["positions"].append(f"{f}: {metres(mly.pos[f], mtp.pos[f]):.3f} m apart")
    if len(bad_p) > 8:
        diff["positions"].append(f"… {len(bad_p)} files in all")
    return diff


def part_prefix(scenario: str) -> str:
    """File name prefix of a scenario's photos (`mtp dev gen-photos`), also inside `mixed`."""
    return scenario.replace("-", "") + "_"


def restrict(o: Outcome, prefix: str) -> Outcome:
    """The part of an outcome about files named `prefix*` (one subfolder of `mixed`)."""
    r = Outcome()
    r.sequences = [s for s in ([f for f in s if f.startswith(prefix)] for s in o.sequences) if s]
    r.dropped = {f: c for f, c in o.dropped.items() if f.startswith(prefix)}
    r.time_ms = {f: t for f, t in o.time_ms.items() if f.startswith(prefix)}
    r.heading = {f: h for f, h in o.heading.items() if f.startswith(prefix)}
    r.pos = {f: p for f, p in o.pos.items() if f.startswith(prefix)}
    return r


def known(sc: str, aspect: str, mly: Outcome, mtp: Outcome) -> list[str] | None:
    """Why a difference in `aspect` is intended (one reason per scenario), or None."""
    if sc != "mixed":
        return [KNOWN[(sc, aspect)]] if (sc, aspect) in KNOWN else None
    reasons: list[str] = []
    for part in SCENARIOS:
        if part == "mixed":
            continue
        pre = part_prefix(part)
        if not compare(restrict(mly, pre), restrict(mtp, pre))[aspect]:
            continue
        if (part, aspect) not in KNOWN:
            return None
        reasons.append(f"{part}: {KNOWN[(part, aspect)]}")
    return reasons or None


def generate(mtp: str, work: Path, scenario: str) -> Path:
    folder = work / scenario
    if folder.exists():
        shutil.rmtree(folder)
    subprocess.run(
        [mtp, "dev", "gen-photos", str(folder), "--scenario", scenario],
        check=True,
        capture_output=True,
    )
    return folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mtp", default="target/release/mtp")
    ap.add_argument("--mly", default=".venv-mly/bin/mapillary_tools")
    ap.add_argument("--work", default="target/bench-data/scenarios", type=Path)
    ap.add_argument("scenarios", nargs="*", default=SCENARIOS)
    args = ap.parse_args()
    args.mtp = str(Path(args.mtp).resolve())
    args.mly = str(Path(args.mly).absolute())
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)

    aspects = ASPECTS
    rows, details, unexpected = [], [], 0
    seen: set[tuple[str, str]] = set()
    for sc in args.scenarios:
        folder = generate(args.mtp, args.work, sc)
        mly = from_mly(run_mly(args.mly, folder))
        mtp = from_mtp(run_mtp(args.mtp, folder))
        diff = compare(mly, mtp)
        cells = []
        for a in aspects:
            why = known(sc, a, mly, mtp) if diff[a] else None
            if not diff[a]:
                cells.append("agree")
            elif why:
                cells.append("intended")
            else:
                cells.append("**differ**")
                unexpected += 1
            new = 0
            for line in diff[a]:
                # `mixed` repeats its parts' differences: list only new ones.
                if sc == "mixed" and (a, line) in seen:
                    continue
                seen.add((a, line))
                details.append(f"- {sc} / {a}: {line}")
                new += 1
            if new:
                details.extend(f"  intended: {reason}" for reason in why or [])
        total = len(mly.kept) + len(mly.dropped)
        count = lambda o: f"{len(o.sequences)} / {len(o.kept)} / {len(o.dropped)}"  # noqa: E731
        fixture = "ok" if fixture_ok(sc, mly) else "**unexpected**"
        if fixture != "ok":
            unexpected += 1
            details.append(f"- {sc}: the fixture no longer exercises its rule: mapillary_tools gave "
                           f"sequences {sorted(len(s) for s in mly.sequences)}, drops {mly.dropped}")
        rows.append(f"| {sc} | {total} | {fixture} | {count(mly)} | {count(mtp)} | "
                    + " | ".join(cells) + " |")

    print("| scenario | photos | rule hit | mapillary_tools seq / kept / dropped | "
          "mtp seq / kept / dropped | " + " | ".join(aspects) + " |")
    print("|---|---:|---|---|---|" + "---|" * len(aspects))
    print("\n".join(rows))
    print()
    if details:
        print("Differences:")
        print("\n".join(details))
    else:
        print("No differences.")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
