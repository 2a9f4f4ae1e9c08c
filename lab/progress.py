"""Step-by-step progress with timings, as `lab up` and `lab down` print it."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Step:
    title: str
    detail: str = ""
    seconds: float = 0.0
    changed: bool = False  # the step had to create, start or repair something

    def note(self, detail: str, *, changed: bool = False) -> None:
        """The one-line outcome printed when the step ends."""
        self.detail = detail
        self.changed = self.changed or changed


@dataclass
class Progress:
    out: TextIO = field(default_factory=lambda: sys.stdout)
    steps: list[Step] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @contextmanager
    def step(self, title: str) -> Iterator[Step]:
        step = Step(title)
        print(f"==> {title}", file=self.out, flush=True)
        began = time.monotonic()
        try:
            yield step
        except BaseException:
            step.seconds = time.monotonic() - began
            print(f"    FAILED after {step.seconds:.1f}s", file=self.out, flush=True)
            raise
        step.seconds = time.monotonic() - began
        self.steps.append(step)
        detail = f": {step.detail}" if step.detail else ""
        outcome = "done" if step.changed else "ok, unchanged"
        print(f"    {outcome} {step.seconds:.1f}s{detail}", file=self.out, flush=True)

    def line(self, text: str) -> None:
        print(f"    {text}", file=self.out, flush=True)

    @property
    def changed(self) -> list[str]:
        return [step.title for step in self.steps if step.changed]

    @property
    def total(self) -> float:
        return time.monotonic() - self.started
