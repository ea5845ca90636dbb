"""The self-contained HTML page of ``rnncore inspect`` (no network, no scripts from
elsewhere: the data, the code and the images are inside the file).

The page shows the text character by character, coloured by one unit's value
(``tanh(c)`` or ``h`` of a layer, scaled from -1 blue to +1 red), with a
selector that lists the automatically found units first and then every unit of
every layer; the top-5 predictions and the loss of the character under the
cursor; the text coloured by per-character loss; the table of found units;
and the gate-saturation figure. The URL fragment ``#cell=SIGNAL:LAYER:UNIT``
selects a unit when the page opens (through the selector's change event).
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnncore.diagnostics.cells import FoundCell

__all__ = ["PageData", "render_page"]


@dataclass
class PageData:
    """What the page shows; ``P`` characters, ``L`` layers, ``H`` units."""

    title: str
    text: str  # (P,) characters shown
    values: dict[str, np.ndarray]  # signal ("tanh(c)", "h") -> (L, P, H) in [-1, 1]
    loss: np.ndarray  # (P,) nats: -log p(text[t] | what came before)
    top5: list[list[tuple[str, float]]]  # (P,) the model's 5 likeliest characters at t
    found: Sequence[FoundCell]
    notes: list[str]  # sentences shown above the text (skipped characters, sampling)
    saturation_png: bytes | None
    initial: str  # "signal:layer:unit" shown first
    saturation_note: str = "gate saturation plots need matplotlib, which is not installed"


def _b64(a: np.ndarray) -> str:
    q = np.clip(np.round(np.asarray(a, dtype=np.float64) * 127), -127, 127).astype(np.int8)
    return base64.b64encode(q.tobytes()).decode("ascii")


def _payload(d: PageData) -> dict[str, Any]:
    L, _, H = next(iter(d.values.values())).shape
    return {
        "text": d.text,
        "H": H,
        "L": L,
        "values": {s: [_b64(v[k]) for k in range(L)] for s, v in d.values.items()},
        "loss": [round(float(x), 3) for x in d.loss],
        "top5": [[[c, round(p, 3)] for c, p in row] for row in d.top5],
        "initial": d.initial,
    }


def _options(d: PageData) -> str:
    """The selector: found units that can be shown first, then every unit."""
    L, _, H = next(iter(d.values.values())).shape
    opts, seen = [], set()
    for f in d.found:
        key = f"{f.signal}:{f.layer}:{f.unit}"
        if f.signal not in d.values or key in seen:
            continue
        seen.add(key)
        label = (
            f"{f.feature}: {f.signal} layer {f.layer} unit {f.unit} "
            f"(r {f.corr:+.2f}, held-out {f.held_out_text('+.2f')})"
        )
        opts.append(f'<option value="{key}">{html.escape(label)}</option>')
    group = '<optgroup label="found automatically">' + "".join(opts) + "</optgroup>"
    rest = []
    for s in d.values:
        for k in range(L):
            items = "".join(
                f'<option value="{s}:{k}:{j}">{s} layer {k} unit {j}</option>' for j in range(H)
            )
            rest.append(f'<optgroup label="{s} layer {k}">{items}</optgroup>')
    return (group if opts else "") + "".join(rest)


def _table(found: Sequence[FoundCell]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(f.feature)}</td><td>{f.signal}</td><td>{f.layer}</td>"
        f"<td>{f.unit}</td><td>{f.corr:+.3f}</td><td>{f.held_out_text('+.3f')}</td></tr>"
        for f in found
    )
    head = "<tr><th>feature</th><th>signal</th><th>layer</th><th>unit</th><th>r</th>"
    return f"<table id='found'>{head}<th>r held-out</th></tr>{rows}</table>"


_STYLE = """
body{font-family:sans-serif;margin:1.5em;max-width:80em}
.txt{font-family:monospace;white-space:pre-wrap;line-height:1.5;border:1px solid #ccc;padding:.5em}
.txt span{cursor:default}#info{font-family:monospace;min-height:7em;background:#f6f6f6;padding:.4em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
.note{color:#a33}
"""

_SCRIPT = """
const D = JSON.parse(document.getElementById('data').textContent);
const T = D.text.length, H = D.H;
const vals = {};
for (const s in D.values) vals[s] = D.values[s].map(b => {
  const raw = atob(b), a = new Int8Array(raw.length);
  for (let i = 0; i < raw.length; i++) a[i] = raw.charCodeAt(i) << 24 >> 24;
  return a; });
function spans(id) {
  const box = document.getElementById(id), out = [];
  for (let t = 0; t < T; t++) {
    const s = document.createElement('span'); s.textContent = D.text[t]; s.dataset.t = t;
    box.appendChild(s); out.push(s); }
  return out; }
const cellSpans = spans('text'), lossSpans = spans('loss');
function colour(v) {  // v in [-1, 1]: blue .. white .. red
  const a = Math.min(Math.abs(v), 1).toFixed(3);
  return v >= 0 ? `rgba(220,40,40,${a})` : `rgba(40,90,220,${a})`; }
function show(key) {
  const [s, k, j] = key.split(':'); const a = vals[s][+k];
  for (let t = 0; t < T; t++) cellSpans[t].style.backgroundColor = colour(a[t * H + (+j)] / 127);
  document.getElementById('current').textContent = key; }
const maxLoss = Math.max(1e-9, ...D.loss);
for (let t = 0; t < T; t++)
  lossSpans[t].style.backgroundColor = `rgba(230,120,0,${(D.loss[t] / maxLoss).toFixed(3)})`;
function info(ev) {
  const t = ev.target.dataset.t; if (t === undefined) return;
  const row = D.top5[t].map(([c, p]) => `${JSON.stringify(c)} ${(100 * p).toFixed(1)}%`);
  document.getElementById('info').textContent =
    `char ${t}: ${JSON.stringify(D.text[t])}  loss ${D.loss[t].toFixed(2)} nats\\n` +
    `the model expected: ${row.join('  ')}`; }
document.getElementById('text').addEventListener('mouseover', info);
document.getElementById('loss').addEventListener('mouseover', info);
const sel = document.getElementById('cell');
sel.addEventListener('change', () => show(sel.value));
const m = /cell=([^&]+)/.exec(decodeURIComponent(location.hash));
sel.value = (m && [...sel.options].some(o => o.value === m[1])) ? m[1] : D.initial;
sel.dispatchEvent(new Event('change'));
"""


def render_page(d: PageData) -> str:
    """The whole page as one HTML string."""
    data = json.dumps(_payload(d), ensure_ascii=True).replace("</", "<\\/")
    notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in d.notes)
    if d.saturation_png is not None:
        img = base64.b64encode(d.saturation_png).decode("ascii")
        sat = f"<img id='saturation' alt='gate saturation' src='data:image/png;base64,{img}'>"
    else:
        sat = f"<p>({html.escape(d.saturation_note)})</p>"
    title = html.escape(d.title)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{_STYLE}</style></head><body>
<h1>{title}</h1>{notes}
<h2>A unit's value, character by character</h2>
<p>unit: <select id="cell">{_options(d)}</select> showing <code id="current"></code>
(blue -1, white 0, red +1). Hover a character for the model's top-5 guesses for it.</p>
<div id="text" class="txt"></div>
<pre id="info"></pre>
<h2>Loss per character (where the model is surprised)</h2>
<div id="loss" class="txt"></div>
<h2>Units that track a feature</h2>
<p>Ranked by |r| on the first half of the text; "r held-out" is the correlation on the
second half, which the ranking never saw.</p>
{_table(d.found)}
<h2>Gate saturation</h2>{sat}
<script type="application/json" id="data">{data}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
