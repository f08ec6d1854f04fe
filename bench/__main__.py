"""Run every benchmark module (or the named ones) and print each figure with its ratio."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

import bench
from bench.env import BenchEnv, Result

_SKIP = {"env"}


def modules(selected: list[str] | None = None) -> list[Any]:
    names = sorted(
        m.name
        for m in pkgutil.iter_modules(bench.__path__)
        if not m.name.startswith("_") and m.name not in _SKIP
    )
    if selected:
        unknown = set(selected) - set(names)
        if unknown:
            raise SystemExit(f"unknown benchmarks: {', '.join(sorted(unknown))} (known: {names})")
        names = [n for n in names if n in selected]
    return [importlib.import_module(f"bench.{n}") for n in names]


def ratio(result: Result, by_name: dict[tuple[str, str], Result]) -> str:
    if result.baseline is None:
        return "baseline"
    base = by_name.get((result.group, result.baseline))
    if base is None or base.value == 0:
        return "?"
    r = result.value / base.value
    return f"{r:.2f}x {result.baseline}"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


async def main(selected: list[str] | None, quick: bool, out: Path | None) -> int:
    env = BenchEnv(quick=quick)
    results: list[Result] = []
    console = Console()
    for module in modules(selected):
        started = time.perf_counter()
        console.print(f"[bold]{module.__name__}[/bold]: {module.__doc__ or ''}".strip())
        got: list[Result] = await module.run(env)
        results += got
        console.print(f"  done in {time.perf_counter() - started:.1f}s")
    by_name = {(r.group, r.name): r for r in results}
    table = Table("group", "benchmark", "value", "ratio", "notes")
    for r in results:
        table.add_row(r.group, r.name, f"{r.value:,.1f} {r.unit}", ratio(r, by_name), r.notes)
    console.print(table)
    if out is not None:
        payload = [{**msgspec.to_builtins(r), "ratio": ratio(r, by_name)} for r in results]
        await asyncio.to_thread(_write, out, json.dumps(payload, indent=2) + "\n")
        console.print(f"written to {out}")
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("only", nargs="*", help="benchmark modules to run (default: all)")
    p.add_argument("--quick", action="store_true", help="tiny workloads: checks the code runs")
    p.add_argument("--out", type=Path, default=Path("artifacts/bench.json"))
    a = p.parse_args()
    sys.exit(asyncio.run(main(a.only or None, a.quick, a.out)))
