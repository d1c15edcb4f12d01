"""Count what minilib's public API does with bad input: ``python -m tools.fuzz_api [--calls N] [--out FILE]``.

Makes bad calls drawn from :mod:`tools.bad_inputs` (by default every (API, argument, bad value) there once, each
in a seeded random context), each in a forked child under a memory cap (RLIMIT_AS: what the process uses plus
``--memory-mb``) and a time limit, and prints the outcomes by API area: ``clear`` (a ValueError/TypeError from
minilib that names the argument) and ``ok`` (an empty batch or a valid value that works as torch's) pass;
``unnamed``, ``internal``, ``memory``, ``silent``, ``refused``, ``wrong`` and ``timeout`` fail (see
:mod:`tools.bad_inputs`). ``--out`` writes every call and its outcome as JSON. The same ``--seed`` gives the
same calls. Exit status 0 whatever the outcomes (it measures; ``tests/test_bad_input_fuzz.py`` is the gate).
"""
from __future__ import annotations

import os

# one thread per child: the children run side by side on a small machine, and a forked OpenMP pool can hang
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse        # noqa: E402
import collections     # noqa: E402
import json            # noqa: E402
import random          # noqa: E402
import select          # noqa: E402
import signal          # noqa: E402
import sys             # noqa: E402
import time            # noqa: E402

from tools import bad_inputs as bi      # noqa: E402

MIN_CALLS = 800


def plan(calls: int | None, seed: int, areas=None) -> list:
    """The cases to run: every (family, argument, bad value) once in a seeded order (``calls`` None), or a seeded
    sample of ``calls`` of them (repeated in new contexts when ``calls`` is larger than the space)."""
    draw = bi.RandomDraw(random.Random(seed))
    space = bi.space(bi.families(areas))
    if calls is None:
        chosen = list(space)
    else:
        chosen = []
        while len(chosen) < calls:
            chosen += draw.random.sample(space, min(len(space), calls - len(chosen)))
    return [bi.draw_case(draw, family, argument, index) for family, argument, index in chosen]


def _child(case: bi.Case, write_fd: int, seconds: float, headroom_mb: int) -> None:
    """In the forked child: quiet, capped, one call, the record down the pipe, and out without cleanup."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        record = bi.run_in_process(case, seconds=seconds, headroom_mb=headroom_mb)
        payload = json.dumps(record, default=repr).encode()
    except BaseException as error:           # the child must never return into the parent's code
        payload = json.dumps({"status": "raised", "type": type(error).__name__, "message": str(error)[:500],
                              "where": "tools/fuzz_api.py", "value_or_type_error": False,
                              "memory_error": isinstance(error, MemoryError)}).encode()
    try:
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(payload)
    finally:
        bi.remove_scratch()
        os._exit(0)


def _finish(pid: int, chunks: list, timed_out: bool) -> dict:
    """The child's record, or what its exit says when it left none."""
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if timed_out:
        return {"status": "timeout", "message": "killed after the time limit"}
    if os.WIFSIGNALED(status):
        return {"status": "killed", "message": f"the child died of {signal.Signals(os.WTERMSIG(status)).name}"}
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return {"status": "killed", "message": f"the child left no record (exit status {status})"}


def run_forked(cases: list, *, jobs: int = 1, seconds: float = 20, headroom_mb: int = 1024, progress=None) -> list:
    """Run every case in its own forked child, ``jobs`` at a time; returns the records in the order of ``cases``."""
    records: list = [None] * len(cases)
    running: dict = {}            # read fd -> [index, pid, chunks, deadline]
    queue = collections.deque(enumerate(cases))
    done = 0
    while queue or running:
        while queue and len(running) < jobs:
            index, case = queue.popleft()
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                _child(case, write_fd, seconds, headroom_mb)
            os.close(write_fd)
            running[read_fd] = [index, pid, [], time.monotonic() + seconds + 10]
        now = time.monotonic()
        wait = max(0.0, min(entry[3] for entry in running.values()) - now)
        ready, _, _ = select.select(list(running), [], [], wait)
        for fd in ready:
            chunk = os.read(fd, 1 << 16)
            if chunk:
                running[fd][2].append(chunk)
                continue
            index, pid, chunks, _ = running.pop(fd)
            os.close(fd)
            records[index] = _finish(pid, chunks, timed_out=False)
            done += 1
            if progress:
                progress(done, len(cases))
        for fd in [fd for fd, entry in running.items() if entry[3] < time.monotonic()]:
            index, pid, chunks, _ = running.pop(fd)
            os.close(fd)
            records[index] = _finish(pid, chunks, timed_out=True)
            done += 1
    return records


def tally(cases: list, records: list) -> list:
    """One JSON-ready row per call: the case, its context, its outcome and what the call said."""
    rows = []
    for case, record in zip(cases, records):
        rows.append({"area": case.area, "api": case.family.api, "argument": case.argument, "value": case.bad.label,
                     "expect": case.expect, "context": dict(vars(case.context)), "outcome": bi.classify(case, record),
                     **{key: record[key] for key in ("status", "type", "message", "where", "non_finite", "problem")
                        if record.get(key) is not None}})
    return rows


def table(rows: list) -> str:
    """Outcomes by area, and totals, as a fixed-width table."""
    counts = collections.defaultdict(collections.Counter)
    for row in rows:
        counts[row["area"]][row["outcome"]] += 1
    columns = list(bi.OUTCOMES)
    width = max(len(area) for area in bi.AREAS) + 2
    lines = [f"{'area':<{width}}" + "".join(f"{name:>9}" for name in columns) + f"{'calls':>8}{'failing':>9}"]
    total = collections.Counter()
    for area in bi.AREAS:
        if area not in counts:
            continue
        total.update(counts[area])
        lines.append(_line(area, counts[area], columns, width))
    lines.append(_line("total", total, columns, width))
    calls = sum(total.values())
    passing = sum(total[name] for name in bi.PASSING)
    lines.append(f"{calls} calls: {passing} ({100 * passing / max(calls, 1):.0f} %) pass, "
                 f"{calls - passing} fail; silent with NaN/inf output: "
                 f"{sum(1 for row in rows if row['outcome'] == 'silent' and row.get('non_finite'))}")
    return "\n".join(lines)


def _line(area, counter, columns, width):
    calls = sum(counter.values())
    failing = calls - sum(counter[name] for name in bi.PASSING)
    return f"{area:<{width}}" + "".join(f"{counter[name]:>9}" for name in columns) + f"{calls:>8}{failing:>9}"


def failures(rows: list, limit: int) -> str:
    """Up to ``limit`` failing calls per area, one line each."""
    lines, shown = [], collections.Counter()
    for row in rows:
        if row["outcome"] in bi.PASSING or shown[row["area"]] >= limit:
            continue
        shown[row["area"]] += 1
        said = row.get("problem") or f"{row.get('type', '')}: {row.get('message', '')}".strip(": ")
        lines.append(f"  {row['outcome']:<8} {row['area']}: {row['api']}({row['argument']}={row['value']})"
                     f" -> {said[:150]}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.fuzz_api", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=None,
                        help=f"how many calls (default: every bad value of every argument once; at least {MIN_CALLS})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the order and the contexts (default 0)")
    parser.add_argument("--areas", nargs="+", choices=bi.AREAS, help="only these API areas")
    parser.add_argument("--jobs", type=int, default=1, help="children at a time (default 1)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per call (default 20)")
    parser.add_argument("--memory-mb", type=int, default=1024,
                        help="address space a child may add to what it holds at the fork (default 1024 MiB)")
    parser.add_argument("--failures", type=int, default=0, metavar="K", help="list up to K failing calls per area")
    parser.add_argument("--out", help="write every call and its outcome to this JSON file")
    args = parser.parse_args(argv)
    if args.calls is not None and args.calls < 1:
        parser.error(f"--calls={args.calls} must be >= 1")
    # imported once here, not in each child: the children share the loaded modules
    import minilib.torch        # noqa: F401
    import minilib.training     # noqa: F401
    import minilib.data.readers  # noqa: F401
    cases = plan(args.calls, args.seed, args.areas)
    if args.calls is None and args.areas is None and len(cases) < MIN_CALLS:
        parser.error(f"only {len(cases)} bad calls are defined; at least {MIN_CALLS} are wanted")
    started = time.monotonic()

    def progress(done, total):
        if sys.stderr.isatty() and (done % 50 == 0 or done == total):
            print(f"\r{done}/{total} calls", end="\n" if done == total else "", file=sys.stderr, flush=True)

    records = run_forked(cases, jobs=args.jobs, seconds=args.timeout, headroom_mb=args.memory_mb, progress=progress)
    rows = tally(cases, records)
    print(table(rows))
    print(f"seed {args.seed}, {len(bi.space(bi.families(args.areas)))} distinct bad calls defined, "
          f"{time.monotonic() - started:.0f} s")
    if args.failures:
        print(failures(rows, args.failures))
    if args.out:
        summary = collections.defaultdict(collections.Counter)
        for row in rows:
            summary[row["area"]][row["outcome"]] += 1
        with open(args.out, "w", encoding="utf-8") as out:
            json.dump({"seed": args.seed, "calls": len(rows), "outcomes": {k: dict(v) for k, v in summary.items()},
                       "totals": dict(collections.Counter(row["outcome"] for row in rows)), "cases": rows},
                      out, indent=1, default=repr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
