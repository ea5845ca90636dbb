"""``rnncore inspect``: one pass of a model over a text, and the page of what it saw.

:func:`prepare_text` applies the limits (file size, characters analysed) and
drops characters the vocabulary lacks; :func:`write_report` traces the model
over the text in chunks (state carried, memory bounded by a chunk and the page)
and accumulates at once: the correlations of every unit with the text features
on the first half and on the held-out second half, the gate-saturation counts,
and, for the characters shown on the page (the start of the held-out half),
the values of ``tanh(c)`` and ``h``, the per-character loss and the top-5
predictions. It writes ``index.html``, ``saturation.png`` (with matplotlib) and
``cells.csv`` (the found units).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnncore import _validate
from rnncore.diagnostics.cells import Correlator, FoundCell, rank_cells, signal_columns
from rnncore.diagnostics.features import Feature, text_features
from rnncore.diagnostics.page import PageData, render_page
from rnncore.diagnostics.plots import saturation_png
from rnncore.errors import ArgumentError
from rnncore.models.tracing import iter_trace
from rnncore.train.rundir import check_output_dir

__all__ = ["MAX_FILE_BYTES", "Report", "prepare_text", "read_text", "write_report"]

MAX_FILE_BYTES = 32 * 2**20  # a larger file is refused, not read
MAX_PAGE_CHARS = 20_000  # the page holds 2*L*H bytes per character shown
SIGMOID_GATES = ("i", "f", "o", "r", "z")  # gates in (0, 1): their saturation is plotted


@dataclass
class Report:
    """What :func:`write_report` wrote and found."""

    out_dir: Path
    found: list[FoundCell]
    chars_analysed: int
    notes: list[str] = field(default_factory=list)


def read_text(path: str | os.PathLike) -> str:
    """The UTF-8 text of ``path``; an empty or too large file is an :class:`ArgumentError`."""
    p = Path(path)
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ArgumentError(
            f"{p}: {size} bytes is more than the {MAX_FILE_BYTES // 2**20} MiB that inspect "
            "reads; pass a part of it"
        )
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ArgumentError(f"{p}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    if not text:
        raise ArgumentError(f"{p}: the file is empty; inspect needs some text")
    return text


def prepare_text(text: str, vocab: Any, max_chars: int) -> tuple[str, list[str]]:
    """``(text to analyse, notes)``: unknown characters dropped, then the first
    ``max_chars`` kept; each change is described in a note."""
    if getattr(vocab, "kind", None) != "char":
        raise ArgumentError("inspect needs a character-level model (this one reads words)")
    max_chars = _validate.positive_int("max_chars", max_chars)
    notes = []
    known = set(vocab.symbols)
    unknown = sorted(set(text) - known)
    if unknown:
        count = sum(1 for c in text if c not in known)
        shown = " ".join(repr(c) for c in unknown[:40]) + (" ..." if len(unknown) > 40 else "")
        notes.append(
            f"{count} characters the model's vocabulary lacks were skipped "
            f"({len(unknown)} distinct: {shown})"
        )
        text = "".join(c for c in text if c in known)
    if len(text) > max_chars:
        notes.append(f"a sample was analysed: the first {max_chars} of {len(text)} characters")
        text = text[:max_chars]
    if len(text) < 4:
        raise ArgumentError(
            f"the text has {len(text)} characters the model knows; inspect needs at least 4"
        )
    return text, notes


def _parse_cell(cell: str | None, arrays: Mapping[str, np.ndarray]) -> str | None:
    """``"LAYER:UNIT"`` -> the page key of that unit's ``tanh(c)`` (or ``h``)."""
    if cell is None:
        return None
    L, _, _, H = arrays["h"].shape
    try:
        layer, unit = (int(v) for v in cell.split(":"))
    except ValueError:
        raise ArgumentError(f"cell must be LAYER:UNIT, e.g. 0:12, got {cell!r}") from None
    if not (0 <= layer < L and 0 <= unit < H):
        raise ArgumentError(f"cell {cell!r} is out of range: layers 0..{L - 1}, units 0..{H - 1}")
    return f"{'tanh(c)' if 'c' in arrays else 'h'}:{layer}:{unit}"


PAGE_MARKER = ".rnncore-inspect"
PAGE_FILES = ("index.html", "cells.csv", "saturation.png", PAGE_MARKER)


def check_page_chars(page_chars: Any) -> int:
    """``page_chars`` as an int in ``1..MAX_PAGE_CHARS``."""
    page_chars = _validate.positive_int("page_chars", page_chars)
    if page_chars > MAX_PAGE_CHARS:
        raise ArgumentError(f"page_chars must be at most {MAX_PAGE_CHARS}, got {page_chars}")
    return page_chars


def claim_page_dir(out_dir: str | os.PathLike, *, force: bool, what: str = "out_dir") -> Path:
    """Check that the page may be written into ``out_dir``, before any work:
    a new or empty directory, or an earlier page (its ``.rnncore-inspect``
    marker); any other under the rules of
    :func:`rnncore.train.rundir.check_output_dir`."""
    out = Path(out_dir)
    check_output_dir(
        out,
        owned=lambda name: name in PAGE_FILES,
        ours=lambda p: (p / PAGE_MARKER).is_file(),
        kind="rnncore inspect page",
        force=force,
        what=what,
    )
    return out


def write_report(
    model: Any,
    vocab: Any,
    text: str,
    out_dir: str | os.PathLike,
    *,
    force: bool = False,
    notes: list[str] | None = None,
    page_chars: int = 2000,
    cell: str | None = None,
    top: int = 5,
    extra: Mapping[str, Feature] | None = None,
    chunk_size: int = 1000,
    title: str = "rnncore inspect",
) -> Report:
    """Analyse ``text`` (already through :func:`prepare_text`) and write the page.

    Args:
        model, vocab: a character :class:`~rnncore.models.CharLM` and its vocabulary.
        out_dir: created if needed; gets ``index.html``, ``cells.csv`` and
            ``saturation.png`` (when matplotlib is installed and the cell has
            gates), and the marker ``.rnncore-inspect``. See
            :func:`claim_page_dir` for the directories it refuses.
        force: write into a non-empty directory that is not a page (its
            files are kept).
        page_chars: characters shown on the page, at most 20,000.
        cell: ``"LAYER:UNIT"`` shown first; default the best unit found.
        top: units kept per feature; extra: more features (``name -> f(text)``).
    """
    claim_page_dir(out_dir, force=force)  # before any work
    page_chars = check_page_chars(page_chars)
    notes = list(notes or [])
    feats = text_features(text, extra)
    names = list(feats)
    X = np.stack([feats[k] for k in names], axis=1)  # (T, F)
    ids = vocab.encode(text)  # (T,)
    T, half = len(text), len(text) // 2
    p0, p1 = half, min(T, half + page_chars)  # characters shown: start of the held-out half
    model.eval()
    corr: list[Correlator] = []
    labels: list[tuple[str, int, int]] = []
    left: dict[str, np.ndarray] = {}
    right: dict[str, np.ndarray] = {}
    shown: dict[str, list[np.ndarray]] = {}
    log_probs: list[np.ndarray] = []  # rows p0-1 .. p1-2: predictions of characters p0 .. p1-1
    initial = None
    t0 = 0
    for chunk in iter_trace(model, ids[None, :], chunk_size=chunk_size):
        a = chunk.arrays  # (L, T', 1, H) each
        if t0 == 0:
            initial = _parse_cell(cell, a)
        values, labels = signal_columns(a)  # (T', K)
        if not corr:
            corr = [Correlator(len(names), values.shape[1]) for _ in range(2)]
        n = values.shape[0]
        cut = min(max(half - t0, 0), n)
        if cut:
            corr[0].update(X[t0 : t0 + cut], values[:cut])
        if cut < n:
            corr[1].update(X[t0 + cut : t0 + n], values[cut:])
        for g in SIGMOID_GATES:
            if g in a:
                left[g] = left.get(g, 0) + (a[g][:, :, 0] < 0.1).sum(axis=1)  # (L, H)
                right[g] = right.get(g, 0) + (a[g][:, :, 0] > 0.9).sum(axis=1)
        lo, hi = max(p0, t0), min(p1, t0 + n)  # shown characters in this chunk
        if lo < hi:
            for name in ("c", "h"):
                if name in a:
                    v = a[name][:, lo - t0 : hi - t0, 0]  # (L, hi-lo, H)
                    shown.setdefault(name, []).append(np.tanh(v) if name == "c" else v)
        lo, hi = max(p0 - 1, t0), min(p1 - 1, t0 + n)
        if lo < hi:
            log_probs.append(chunk.log_probs[lo - t0 : hi - t0, 0])  # (hi-lo, V)
        t0 += n
    found = rank_cells(corr[0].correlation(), corr[1].correlation(), names, labels, top)

    lp = np.concatenate(log_probs)  # (P, V): the prediction of each shown character
    shown_ids = ids[p0:p1]
    loss = -lp[np.arange(len(shown_ids)), shown_ids]  # (P,)
    best = np.argsort(-lp, axis=1, kind="stable")[:, :5]  # (P, 5)
    symbols = vocab.symbols
    top5 = [[(symbols[j], float(np.exp(row[j]))) for j in b] for row, b in zip(lp, best)]
    values_shown = {
        ("tanh(c)" if k == "c" else k): np.concatenate(v, axis=1) for k, v in shown.items()
    }
    if initial is None:
        quote = [f for f in found if f.signal in values_shown and f.feature == "in_quote"]
        any_shown = [f for f in found if f.signal in values_shown]
        pick = (quote or any_shown or [None])[0]
        initial = (
            f"{pick.signal}:{pick.layer}:{pick.unit}" if pick else f"{next(iter(values_shown))}:0:0"
        )
    png = saturation_png({g: left[g] / T for g in left}, {g: right[g] / T for g in right})
    constant = [k for k in names if np.ptp(feats[k]) == 0]
    if constant:
        notes.append(
            f"features constant on this text, so no unit tracks them: {', '.join(constant)}"
        )
    notes.append(
        f"{T} characters analysed; units ranked on characters 0..{half - 1}, checked on "
        f"{half}..{T - 1}; the page shows characters {p0}..{p1 - 1}"
    )
    out = claim_page_dir(out_dir, force=force)  # again: the directory may have changed
    out.mkdir(parents=True, exist_ok=True)
    (out / PAGE_MARKER).write_text("rnncore inspect page\n", encoding="utf-8")
    if png is not None:
        (out / "saturation.png").write_bytes(png)
    with open(out / "cells.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["feature", "signal", "layer", "unit", "r", "r_held_out"])
        for c in found:
            w.writerow([c.feature, c.signal, c.layer, c.unit, f"{c.corr:.4f}", f"{c.held_out:.4f}"])
    page = PageData(title, text[p0:p1], values_shown, loss, top5, found, notes, png, initial)
    if not left:
        page.saturation_note = "a vanilla RNN has no gates"
    (out / "index.html").write_text(render_page(page), encoding="utf-8")
    return Report(out, found, T, notes)
