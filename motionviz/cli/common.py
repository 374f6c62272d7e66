"""Helpers shared by the CLI verbs: ``--threads`` and the tqdm progress bar on stderr."""

from __future__ import annotations

import sys
from typing import Any, Callable

import torch
from tqdm import tqdm

from ..core.limits import whole_number

#: ``--threads`` accepts 1..MAX_THREADS
MAX_THREADS = 256


def set_threads(value: Any, interop: bool = False) -> None:
    """``--threads``: torch's CPU threads (a whole number in 1..256; None leaves torch's choice).
    ``interop``: the inter-op pool too (when torch still allows it)."""
    if value is None:
        return
    n = whole_number(value, "--threads", 1, MAX_THREADS)
    torch.set_num_threads(n)
    if interop:
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError:
            pass


def progress_bar(desc: str, enabled: bool = True, leave: bool = True) -> tuple[tqdm, Callable[..., None]]:
    """A tqdm bar on stderr and its ``progress(fraction, text="")`` callback: the bar only moves forward,
    ``text`` shows after it (60 characters at most).  ``enabled`` False: a silent bar; ``leave`` False: the
    bar goes when it is closed."""
    bar = tqdm(total=1000, desc=desc, file=sys.stderr, disable=not enabled, dynamic_ncols=True, leave=leave,
               bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")

    def progress(fraction: float, text: str = "") -> None:
        n = int(round(1000 * min(max(float(fraction), 0.0), 1.0)))
        if n > bar.n:
            bar.update(n - bar.n)
        if text:
            bar.set_postfix_str(text[:60], refresh=True)

    return bar, progress
