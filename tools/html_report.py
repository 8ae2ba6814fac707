"""``rdb-inspect report``: one self-contained HTML page about an RDB file.

The page needs no network: CSS, a few lines of JavaScript (tooltips,
sortable tables) and the charts are inline, and the charts are SVG drawn
here, so they show even with scripts disabled.  It holds:

* summary cards (keys, estimated Redis 7.0 memory, serialized size, TTLs);
* a squarified treemap of the estimated memory by key prefix (two levels:
  the top prefixes, and their children nested inside);
* memory and key counts by type and by encoding after a load (bar charts);
* a histogram of the remaining TTLs;
* the biggest keys (sortable table), the databases, aux fields and
  function libraries.

Data comes from one streaming pass (:func:`collect`) with bounded memory:
the prefix tree folds small children, the top keys are a heap.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from ambry.persistence.rdb import Aux, End, Event, FunctionLibrary, Header, Key

from .memory_model import LoadConfig, estimate
from .rdb_inspect_stats import TTL_BUCKETS, PrefixTree, TopN, human_bytes, ttl_bucket

__all__ = ["ReportData", "collect", "render", "squarify"]

PALETTE: Final = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
                  "#ff9da7", "#9c755f", "#bab0ac", "#86bcb6", "#d37295"]
TYPE_COLORS: Final = {"string": "#4e79a7", "list": "#f28e2b", "set": "#59a14f", "zset": "#e15759",
                      "hash": "#76b7b2", "stream": "#b07aa1", "module": "#9c755f"}


@dataclass
class ReportData:
    """Everything the page shows, gathered in one pass over the file."""

    file: str
    now_ms: int
    rdb_version: int | None = None
    aux: list[tuple[bytes, bytes]] = field(default_factory=list)
    functions: list[FunctionLibrary] = field(default_factory=list)
    checksum: str = "not reached"
    keys: int = 0
    memory: int = 0
    serialized: int = 0
    expires: int = 0
    by_type: dict[str, list[int]] = field(default_factory=dict)  # [keys, memory, serialized]
    by_encoding: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # [keys, memory]
    dbs: dict[int, list[int]] = field(default_factory=dict)  # [keys, memory, expires]
    ttl: list[int] = field(default_factory=lambda: [0] * len(TTL_BUCKETS))
    top: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    tree: PrefixTree | None = None


def collect(events: Iterable[Event], path: str, flt: Any, cfg: LoadConfig, *, now_ms: int,
            sep: bytes = b":", depth: int = 2, top: int = 30, group_ids: bool = True) -> ReportData:
    """Aggregate the file's keys (those ``flt`` accepts) for the report."""
    from .rdb_inspect import _checksum_status  # the same wording as the other commands

    d = ReportData(path, now_ms)
    tree = d.tree = PrefixTree(sep, depth, 64, group_ids=group_ids)
    best = TopN[dict[str, Any]](top)
    limit = getattr(flt, "limit", None)
    for ev in events:
        t = type(ev)
        if t is Key:
            assert isinstance(ev, Key)
            if not flt(ev):
                continue
            m = estimate(ev, cfg)
            d.keys += 1
            d.memory += m.memory
            d.serialized += ev.size
            row = d.by_type.setdefault(ev.type, [0, 0, 0])
            row[0] += 1
            row[1] += m.memory
            row[2] += ev.size
            enc = d.by_encoding.setdefault((ev.type, m.encoding), [0, 0])
            enc[0] += 1
            enc[1] += m.memory
            db = d.dbs.setdefault(ev.db, [0, 0, 0])
            db[0] += 1
            db[1] += m.memory
            if ev.expire_ms is not None:
                d.expires += 1
                db[2] += 1
                d.ttl[ttl_bucket(ev.expire_ms, now_ms)] += 1
            tree.add(ev.key, m.memory)
            if best.would_take(m.memory):
                best.add(m.memory, {"db": ev.db, "key": ev.key, "type": ev.type, "encoding": m.encoding,
                                    "memory": m.memory, "elements": m.elements, "expire_ms": ev.expire_ms})
            if limit is not None and d.keys >= limit:
                break
        elif t is Aux:
            d.aux.append((ev.key, ev.value))  # type: ignore[union-attr]
        elif t is FunctionLibrary:
            d.functions.append(ev)  # type: ignore[arg-type]
        elif t is Header:
            d.rdb_version = ev.version  # type: ignore[union-attr]
        elif t is End:
            d.checksum = _checksum_status(ev)  # type: ignore[arg-type]
    d.top = best.items()
    return d


# -- layout -------------------------------------------------------------------------------------


def _worst(row: list[float], side: float) -> float:
    s = sum(row)
    return max(max(row) * side * side / (s * s), s * s / (side * side * min(row)))


def squarify(values: list[float], x: float, y: float, w: float, h: float) -> list[tuple[float, float, float, float]]:
    """Squarified treemap (Bruls, Huizing, van Wijk): rectangles for the
    positive ``values`` (sorted largest first) filling the box, rows laid
    along the shorter side while that keeps the aspect ratios improving."""
    total = sum(values)
    if total <= 0 or w <= 0 or h <= 0:
        return [(x, y, 0.0, 0.0) for _ in values]
    scale = w * h / total
    areas = [v * scale for v in values]
    rects: list[tuple[float, float, float, float]] = []
    i = 0
    n = len(areas)
    while i < n:
        side = min(w, h)
        row = [areas[i]]
        i += 1
        while i < n and _worst(row + [areas[i]], side) <= _worst(row, side):
            row.append(areas[i])
            i += 1
        s = sum(row)
        if w >= h:
            t = s / h if h else 0.0
            yy = y
            for a in row:
                rh = a / t if t else 0.0
                rects.append((x, yy, t, rh))
                yy += rh
            x += t
            w -= t
        else:
            t = s / w if w else 0.0
            xx = x
            for a in row:
                rw = a / t if t else 0.0
                rects.append((xx, y, rw, t))
                xx += rw
            y += t
            h -= t
    return rects


# -- rendering ----------------------------------------------------------------------------------


def _e(s: str) -> str:
    return html.escape(s, quote=True)


def _k(b: bytes) -> str:
    return b.decode("utf-8", "backslashreplace")


def _pct(part: float, total: float) -> str:
    return f"{part * 100 / total:.1f}%" if total else "0%"


def _treemap(d: ReportData, width: int = 1100, height: int = 520) -> str:
    """Two-level treemap of the prefix tree as SVG."""
    tree = d.tree
    assert tree is not None
    total = tree.root.memory
    out = [f'<svg id="treemap" class="chart" viewBox="0 0 {width} {height}" width="100%" '
           f'role="img" aria-label="Estimated memory by key prefix" xmlns="http://www.w3.org/2000/svg">']
    if total <= 0:
        out.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="empty">no keys</text></svg>')
        return "".join(out)
    tops = [c for c in tree.children_of(tree.root) if c.memory > 0][:40]
    rects = squarify([c.memory for c in tops], 0, 0, width, height)
    for idx, (node, (x, y, w, h)) in enumerate(zip(tops, rects, strict=True)):
        color = PALETTE[idx % len(PALETTE)]
        name = _k(node.name)
        tip = f"{name}\n{human_bytes(node.memory)} ({_pct(node.memory, total)}), {node.keys:,} keys"
        out.append(f'<g class="tm-group" data-prefix="{_e(name)}">')
        out.append(f'<rect class="tm-node tm-top" x="{x:.2f}" y="{y:.2f}" width="{w:.2f}" height="{h:.2f}" '
                   f'fill="{color}" data-tip="{_e(tip)}"><title>{_e(tip)}</title></rect>')
        label_h = 16 if h > 40 and w > 60 else 0
        kids = [c for c in tree.children_of(node) if c.memory > 0][:60]
        if kids and w > 24 and h > 24 + label_h:
            pad = 2
            sub = squarify([c.memory for c in kids], x + pad, y + pad + label_h, w - 2 * pad, h - 2 * pad - label_h)
            for kid, (sx, sy, sw, sh) in zip(kids, sub, strict=True):
                if sw < 0.5 or sh < 0.5:
                    continue
                kname = name + _k(kid.name) if not kid.folded else name + "(other)"
                ktip = f"{kname}\n{human_bytes(kid.memory)} ({_pct(kid.memory, total)}), {kid.keys:,} keys"
                out.append(f'<rect class="tm-node tm-child" x="{sx:.2f}" y="{sy:.2f}" width="{sw:.2f}" '
                           f'height="{sh:.2f}" fill="{color}" fill-opacity="0.55" stroke="#fff" '
                           f'stroke-width="0.7" data-tip="{_e(ktip)}"><title>{_e(ktip)}</title></rect>')
                if sw > 70 and sh > 18:
                    out.append(f'<text class="tm-label" x="{sx + 4:.2f}" y="{sy + 13:.2f}">'
                               f'{_e(_clip(_k(kid.name), sw))}</text>')
        if label_h:
            out.append(f'<text class="tm-title" x="{x + 4:.2f}" y="{y + 13:.2f}">'
                       f'{_e(_clip(name + " " + human_bytes(node.memory), w))}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def _clip(text: str, width: float) -> str:
    n = max(int(width / 7), 1)
    return text if len(text) <= n else text[:max(n - 1, 1)] + "\u2026"


def _hbars(chart_id: str, label: str, rows: Sequence[tuple[str, float, str, str]], width: int = 520) -> str:
    """Horizontal bar chart: (name, value, value text, color) per row."""
    bar_h = 22
    height = max(bar_h * len(rows) + 10, 40)
    top = max((r[1] for r in rows), default=0) or 1
    out = [f'<svg id="{chart_id}" class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'aria-label="{_e(label)}" xmlns="http://www.w3.org/2000/svg">']
    if not rows:
        out.append('<text x="10" y="24" class="empty">no keys</text>')
    for i, (name, value, text, color) in enumerate(rows):
        y = 5 + i * bar_h
        w = (width - 250) * value / top
        tip = f"{name}: {text}"
        out.append(f'<text x="0" y="{y + 15}" class="bar-label">{_e(_clip(name, 130))}</text>')
        out.append(f'<rect class="bar" x="140" y="{y + 2}" width="{max(w, 1):.2f}" height="{bar_h - 6}" '
                   f'fill="{color}" data-tip="{_e(tip)}"><title>{_e(tip)}</title></rect>')
        out.append(f'<text x="{144 + w:.2f}" y="{y + 15}" class="bar-value">{_e(text)}</text>')
    out.append("</svg>")
    return "".join(out)


def _histogram(d: ReportData, width: int = 1100, height: int = 260) -> str:
    counts = d.ttl
    top = max(counts) or 1
    n = len(counts)
    slot = (width - 40) / n
    out = [f'<svg id="ttl-histogram" class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
           f'aria-label="Keys by remaining TTL" xmlns="http://www.w3.org/2000/svg">']
    base = height - 40
    for i, c in enumerate(counts):
        h = (base - 20) * c / top
        x = 20 + i * slot
        label = TTL_BUCKETS[i][0]
        tip = f"{label}: {c:,} keys"
        out.append(f'<rect class="hist-bar" x="{x + 6:.2f}" y="{base - h:.2f}" width="{slot - 12:.2f}" '
                   f'height="{max(h, 0.5):.2f}" fill="{"#e15759" if i == 0 else "#4e79a7"}" data-tip="{_e(tip)}">'
                   f'<title>{_e(tip)}</title></rect>')
        out.append(f'<text x="{x + slot / 2:.2f}" y="{base - h - 5:.2f}" text-anchor="middle" '
                   f'class="bar-value">{c:,}</text>')
        out.append(f'<text x="{x + slot / 2:.2f}" y="{base + 18}" text-anchor="middle" class="bar-label">'
                   f'{_e(label)}</text>')
    out.append(f'<line x1="20" y1="{base}" x2="{width - 20}" y2="{base}" stroke="#888"/>')
    out.append("</svg>")
    return "".join(out)


def _time(ms: int | None) -> str:
    if ms is None:
        return "-"
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms / 1000))
    except (OverflowError, OSError, ValueError):
        return str(ms)


def _rows_top(d: ReportData) -> Iterator[str]:
    for rank, (_, it) in enumerate(d.top, 1):
        yield (f'<tr><td data-v="{rank}">{rank}</td><td class="key">{_e(_k(it["key"]))}</td>'
               f'<td>{it["type"]}</td><td>{it["encoding"]}</td>'
               f'<td data-v="{it["memory"]}">{human_bytes(it["memory"])}</td>'
               f'<td data-v="{it["elements"]}">{it["elements"]:,}</td><td data-v="{it["db"]}">{it["db"]}</td>'
               f'<td data-v="{it["expire_ms"] or 0}">{_time(it["expire_ms"])}</td></tr>')


CSS: Final = """
:root{--fg:#1d232a;--muted:#5b6673;--line:#d9dee5;--bg:#f6f8fa}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 -apple-system,"Segoe UI",Roboto,"DejaVu Sans",
Arial,sans-serif;color:var(--fg);background:var(--bg)}
header{background:#1d232a;color:#fff;padding:18px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#b8c1cc}main{padding:20px 28px;max-width:1200px;margin:auto}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin:0 0 18px}
h2{font-size:16px;margin:0 0 10px}.cards{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:18px}
.card{flex:1 1 150px;background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px 14px}
.card b{display:block;font-size:20px}.card span{color:var(--muted);font-size:12px}
.two{display:grid;grid-template-columns:1fr 1fr;gap:18px}@media(max-width:900px){.two{grid-template-columns:1fr}}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line)}
th{cursor:pointer;user-select:none;background:#fafbfc}td.key{font-family:monospace;word-break:break-all}
.chart{display:block}.tm-title{font-size:12px;font-weight:600;fill:#fff;pointer-events:none}
.tm-label{font-size:11px;fill:#10151a;pointer-events:none}.tm-node:hover{fill-opacity:1;stroke:#000}
.bar-label{font-size:12px;fill:#333}.bar-value{font-size:11px;fill:#555}.empty{fill:#888}
#tip{position:fixed;pointer-events:none;background:rgba(20,24,28,.92);color:#fff;padding:6px 9px;
border-radius:5px;font-size:12px;white-space:pre;display:none;z-index:9}
.muted{color:var(--muted)}code{font-size:12px}
"""

JS: Final = """
(function(){
  var tip=document.getElementById('tip');
  document.addEventListener('mousemove',function(e){
    var t=e.target.closest?e.target.closest('[data-tip]'):null;
    if(!t){tip.style.display='none';return;}
    tip.textContent=t.getAttribute('data-tip');tip.style.display='block';
    tip.style.left=(e.clientX+14)+'px';tip.style.top=(e.clientY+14)+'px';
  });
  document.querySelectorAll('table.sortable').forEach(function(tb){
    tb.querySelectorAll('th').forEach(function(th,i){
      th.addEventListener('click',function(){
        var body=tb.tBodies[0],rows=Array.prototype.slice.call(body.rows);
        var asc=th.getAttribute('data-dir')!=='asc';th.setAttribute('data-dir',asc?'asc':'desc');
        rows.sort(function(a,b){
          var x=a.cells[i],y=b.cells[i],xv=x.getAttribute('data-v'),yv=y.getAttribute('data-v');
          var r=(xv!==null&&yv!==null)?(parseFloat(xv)-parseFloat(yv)):x.textContent.localeCompare(y.textContent);
          return asc?r:-r;});
        rows.forEach(function(r){body.appendChild(r);});
      });
    });
  });
  var n=document.querySelectorAll('#treemap .tm-node').length;
  var s=document.getElementById('js-status');
  if(s){s.textContent='interactive: '+n+' treemap cells';}
  document.documentElement.setAttribute('data-ready','1');
})();
"""


def render(d: ReportData) -> str:
    """The report page."""
    title = f"RDB report: {d.file}"
    aux = {_k(k): _k(v) for k, v in d.aux}
    cards = [
        (f"{d.keys:,}", "keys"),
        (human_bytes(d.memory), "estimated memory (Redis 7.0)"),
        (human_bytes(d.serialized), "serialized key records"),
        (f"{d.expires:,}", f"keys with a TTL ({d.ttl[0]:,} expired)"),
        (str(d.rdb_version), f"RDB version (redis-ver {aux.get('redis-ver', '?')})"),
        (d.checksum, "checksum"),
    ]
    type_rows = [(t, r[1], f"{human_bytes(r[1])} ({_pct(r[1], d.memory)})", TYPE_COLORS.get(t, "#888"))
                 for t, r in sorted(d.by_type.items(), key=lambda kv: -kv[1][1])]
    count_rows = [(t, r[0], f"{r[0]:,} keys", TYPE_COLORS.get(t, "#888"))
                  for t, r in sorted(d.by_type.items(), key=lambda kv: -kv[1][0])]
    enc_rows = [(f"{t} / {e}", r[1], f"{human_bytes(r[1])}, {r[0]:,} keys", TYPE_COLORS.get(t, "#888"))
                for (t, e), r in sorted(d.by_encoding.items(), key=lambda kv: -kv[1][1])]
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{_e(title)}</title>",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<style>{CSS}</style></head><body>",
        f'<header><h1>{_e(title)}</h1><p>Generated by rdb-inspect on {_time(d.now_ms)} UTC. '
        f'Memory figures estimate what Redis 7.0 would use after loading this file. '
        f'<span id="js-status"></span></p></header><main>',
        '<div class="cards" id="cards">',
    ]
    for big, small in cards:
        parts.append(f'<div class="card"><b>{_e(big)}</b><span>{_e(small)}</span></div>')
    parts.append("</div>")
    assert d.tree is not None
    parts.append('<section id="prefixes"><h2>Memory by key prefix</h2>'
                 f'<p class="muted">Separator <code>{_e(_k(d.tree.sep))}</code>, {d.tree.depth} level(s). '
                 'Hover a cell for its size.</p>' + _treemap(d) + "</section>")
    parts.append('<div class="two"><section><h2>Memory by type</h2>' + _hbars("by-type", "Memory by type", type_rows)
                 + '</section><section><h2>Keys by type</h2>' + _hbars("keys-by-type", "Keys by type", count_rows)
                 + "</section></div>")
    parts.append('<section><h2>Memory by type and encoding</h2>'
                 + _hbars("by-encoding", "Memory by encoding", enc_rows, width=1100) + "</section>")
    no_ttl = d.keys - d.expires
    parts.append(f'<section><h2>Remaining TTL</h2><p class="muted">{d.expires:,} keys expire, '
                 f'{no_ttl:,} have no TTL; measured from {_time(d.now_ms)} UTC.</p>' + _histogram(d) + "</section>")
    parts.append('<section><h2>Biggest keys</h2><table id="top-keys" class="sortable"><thead><tr>'
                 "<th>#</th><th>key</th><th>type</th><th>encoding</th><th>memory</th><th>elements</th>"
                 "<th>db</th><th>expires (UTC)</th></tr></thead><tbody>")
    parts.extend(_rows_top(d))
    parts.append("</tbody></table></section>")
    parts.append('<div class="two"><section><h2>Databases</h2><table id="dbs" class="sortable"><thead><tr>'
                 "<th>db</th><th>keys</th><th>memory</th><th>with TTL</th></tr></thead><tbody>")
    for db, r in sorted(d.dbs.items()):
        parts.append(f'<tr><td data-v="{db}">{db}</td><td data-v="{r[0]}">{r[0]:,}</td>'
                     f'<td data-v="{r[1]}">{human_bytes(r[1])}</td><td data-v="{r[2]}">{r[2]:,}</td></tr>')
    parts.append("</tbody></table></section><section><h2>Aux fields</h2><table id=\"aux\"><tbody>")
    for k, v in aux.items():
        parts.append(f"<tr><td>{_e(k)}</td><td class=\"key\">{_e(v)}</td></tr>")
    parts.append("</tbody></table>")
    if d.functions:
        parts.append('<h2 style="margin-top:14px">Function libraries</h2><ul id="functions">')
        for lib in d.functions:
            parts.append(f"<li>{_e(lib.name or '?')} ({_e((lib.engine or '?').upper())}, "
                         f"{len(lib.code):,} bytes)</li>")
        parts.append("</ul>")
    parts.append("</section></div></main><div id=\"tip\"></div>")
    parts.append(f"<script>{JS}</script></body></html>\n")
    return "".join(parts)
