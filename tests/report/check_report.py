#!/usr/bin/env python3
"""Checks an `nmformer report` page against the run directory it was made from.

usage: check_report.py REPORT.html RUN_DIR [--notes N]

Parses the page with html.parser (no script, no event handler, no external resource) and each
inline <svg> with xml.etree (well-formed XML), then compares every section with the inputs it
was drawn from: points, bars, lines and timeline spans are counted, their positions checked to
follow the values, and the values printed in tables and labels read back. Exits 1 listing what
is wrong. Expected counts are computed here from the inputs, independently of the C code.
"""
import glob
import html.parser
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"
failures = []


def fail(msg):
    failures.append(msg)


class Page(html.parser.HTMLParser):
    """Section ids, table cells, notes; flags anything active."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections, self.notes, self.rows = [], [], {}
        self.stack, self.table, self.row, self.cell = [], None, None, None
        self.note = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "iframe", "object", "embed", "link", "img", "foreignobject"):
            fail(f"active or external element <{tag}>")
        for k, v in attrs:
            if k.lower().startswith("on"):
                fail(f"event handler attribute {k} on <{tag}>")
            if k.lower() in ("src", "href") and v and not v.startswith("#"):
                fail(f"external resource {k}={v!r} on <{tag}>")
        if tag == "section":
            self.sections.append(a.get("id"))
        if tag == "table":
            self.table = a.get("id")
            self.rows[self.table] = []
        if tag == "tr" and self.table:
            self.row = []
        if tag in ("td", "th") and self.row is not None:
            self.cell = ""
        if tag == "p" and "note" in (a.get("class") or "").split():
            self.note = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append(self.cell.strip())
            self.cell = None
        if tag == "tr" and self.row is not None:
            self.rows[self.table].append(self.row)
            self.row = None
        if tag == "table":
            self.table = None
        if tag == "p" and self.note is not None:
            self.notes.append(self.note)
            self.note = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data
        if self.note is not None:
            self.note += data


def svgs(text):
    """Every inline <svg> as an Element (well-formedness checked here), keyed by class."""
    out = []
    for m in re.finditer(r"<svg\b.*?</svg>", text, re.S):
        try:
            out.append(ET.fromstring(m.group(0)))
        except ET.ParseError as e:
            fail(f"an <svg> is not well-formed XML: {e}")
    return out


def by_class(elems, cls):
    return [e for e in elems if cls in (e.get("class") or "").split()]


def all_of(root, tag, cls=None):
    return [e for e in root.iter(SVG + tag) if cls is None or cls in (e.get("class") or "").split()]


def shown(name):
    """A name as the page shows it: control characters (XML forbids them) as U+FFFD."""
    return "".join("\ufffd" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in name)


def same_order(values, pixels, flip):
    """Pixel positions must order like the values (flip: y grows downwards)."""
    for i in range(len(values)):
        for j in range(len(values)):
            dv, dp = values[i] - values[j], pixels[i] - pixels[j]
            if flip:
                dp = -dp
            if abs(dv) > 1e-9 * max(1, abs(values[i])) and abs(dp) > 0.11 and (dv > 0) != (dp > 0):
                return False
    return True


def check_candidates(run, page, charts):
    s = json.load(open(os.path.join(run, "summary.json")))
    cands = s["candidates"]
    held = {}
    ts = os.path.join(run, "train_summary.json")
    if os.path.exists(ts):
        held = {c["model"]: c.get("heldout_accuracy") for c in json.load(open(ts))["candidates"]}
    if "candidates" not in page.sections:
        return fail("no candidates section")
    sc = by_class(charts, "scatter")
    if len(sc) != 1:
        return fail(f"{len(sc)} scatter charts, want 1")
    pts = all_of(sc[0], "circle", "pt")
    if len(pts) != len(cands):
        fail(f"scatter: {len(pts)} points, want {len(cands)}")
    else:
        xs = [float(p.get("cx")) for p in pts]
        ys = [float(p.get("cy")) for p in pts]
        if not same_order([c["bytes"] for c in cands], xs, False):
            fail("scatter: x does not follow bytes")
        if not same_order([c["accuracy"] for c in cands], ys, True):
            fail("scatter: y does not follow accuracy")
        for p, c in zip(pts, cands):
            tip = p.find(SVG + "title").text
            if shown(c["model"]) not in tip or f"{100 * c['accuracy']:.2f}%" not in tip:
                fail(f"scatter tooltip {tip!r} lacks {c['model']!r} / its accuracy")
    rows = page.rows.get("candidates-table", [])
    head, body = (rows[0], rows[1:]) if rows else ([], [])
    if len(body) != len(cands):
        return fail(f"table: {len(body)} rows, want {len(cands)}")
    col = {name: i for i, name in enumerate(head)}
    for r, c in zip(body, cands):
        want = {"candidate": shown(c["model"]), "test accuracy": f"{100 * c['accuracy']:.2f}%",
                "stored bytes": f"{c['bytes']:.0f}"}
        if "latency_ms" in c:
            want["latency ms"] = f"{c['latency_ms']:.4f}"
            want["speed-up"] = f"{c['speedup']:.2f}\u00d7"
        if held.get(c["model"]) is not None:
            want["held-out accuracy"] = f"{100 * held[c['model']]:.2f}%"
        for k, v in want.items():
            if k not in col or r[col[k]] != v:
                fail(f"table row {r}: {k} should be {v!r}")
    return len(cands)


def check_bars(charts, cls, names, values, fmt):
    ch = by_class(charts, cls)
    if len(ch) != 1:
        return fail(f"{len(ch)} '{cls}' charts, want 1")
    bars = all_of(ch[0], "rect", "bar")
    if len(bars) != len(values):
        return fail(f"{cls}: {len(bars)} bars, want {len(values)}")
    heights = [float(b.get("height")) for b in bars]
    scale = [h / v for h, v in zip(heights, values) if v > 0]
    if scale and max(scale) - min(scale) > 0.02 * max(scale) + 0.2 / max(values):
        fail(f"{cls}: bar heights {heights} not proportional to {values}")
    labels = [t.text for t in all_of(ch[0], "text", "value")]
    for v in values:
        if fmt(v) not in labels:
            fail(f"{cls}: no value label {fmt(v)!r} in {labels}")
    ticks = [t.text for t in all_of(ch[0], "text", "tick")]
    for n in names:
        if n not in ticks:
            fail(f"{cls}: no band named {n!r}")


def check_latency(run, page, charts):
    cands = [c for c in json.load(open(os.path.join(run, "summary.json")))["candidates"] if "latency_ms" in c]
    if "latency" not in page.sections:
        return fail("no latency section")
    check_bars(charts, "latency", [shown(c["model"]) for c in cands], [c["latency_ms"] for c in cands],
               lambda v: f"{v:.4f}")
    check_bars(charts, "speedup", [shown(c["model"]) for c in cands], [c["speedup"] for c in cands],
               lambda v: f"{v:.2f}\u00d7")


def read_logs(run):
    """series key (file, stage index or name) -> dict(loss=[(step, v)], acc=..., heldout=..., stage)"""
    series = {}
    for path in sorted(glob.glob(os.path.join(run, "*.jsonl"))):
        name = os.path.basename(path)[:-6]
        last = -1
        with open(path, "rb") as f:
            for raw in f:
                if not raw.strip():
                    continue
                r = json.loads(raw.decode("utf-8", "replace"))
                key = (name, f"#{int(r['stage_index'])}" if "stage_index" in r else r["stage"])
                s = series.setdefault(key, {"loss": [], "acc": [], "heldout": [], "stage": None})
                s["stage"] = r["stage"]
                if r.get("stage_done"):
                    continue
                step = r["global_step"]
                if step <= last:  # a resumed run repeats steps: the later records win
                    for tkey, t in series.items():
                        if tkey[0] != name:
                            continue
                        for k in ("loss", "acc", "heldout"):
                            while t[k] and t[k][-1][0] >= step:
                                t[k].pop()
                last = step
                for k, src in (("loss", "loss"), ("acc", "acc"), ("heldout", "heldout_acc")):
                    if src in r:
                        s[k].append((step, r[src]))
    return series


def polyline_points(p):
    return [tuple(map(float, xy.split(","))) for xy in p.get("points").split()]


def check_training(run, page, charts):
    series = read_logs(run)
    if "training" not in page.sections:
        return fail("no training section")
    files = {k[0] for k in series}
    for kind, cls, scale in (("loss", "loss", 1), ("acc", "accuracy", 100)):
        ch = by_class(charts, cls)
        if len(ch) != 1:
            fail(f"{len(ch)} '{cls}' charts, want 1")
            continue
        lines = all_of(ch[0], "polyline", "series")
        want = [s for s in series.values() if s[kind]]
        if len(lines) != len(want):
            fail(f"{cls}: {len(lines)} lines, want {len(want)} (one per stage)")
            continue
        allv, ally = [], []
        for line, s in zip(lines, want):
            pts = polyline_points(line)
            if len(pts) != len(s[kind]):
                fail(f"{cls}: line {line.get('data-series')!r} has {len(pts)} points, want {len(s[kind])}")
                continue
            allv += [scale * v for _, v in s[kind]]
            ally += [y for _, y in pts]
            if not same_order([st for st, _ in s[kind]], [x for x, _ in pts], False):
                fail(f"{cls}: x of {line.get('data-series')!r} does not follow the steps")
        if not same_order(allv, ally, True):
            fail(f"{cls}: y does not follow the logged values")
        if kind == "acc":
            dots = all_of(ch[0], "circle", "heldout")
            nheld = sum(len(s["heldout"]) for s in series.values())
            if len(dots) != nheld:
                fail(f"accuracy: {len(dots)} held-out dots, want {nheld}")
    legend = by_class(charts, "legend-block")
    names = [t.text for t in legend[0].iter(SVG + "text")] if legend else []
    for (f, _), s in series.items():
        want = shown(f"{f}: {s['stage']}" if len(files) > 1 else s["stage"])
        if want not in names:
            fail(f"legend lacks {want!r} (has {names})")


def check_sta(run, page, charts, text):
    sims = [p for p in glob.glob(os.path.join(run, "sim*.json")) if not p.endswith(".trace.json")]
    # the page shows them in the order of summary.json's candidates, the others by file name
    order = []
    if os.path.exists(os.path.join(run, "summary.json")):
        order = [c["model"] for c in json.load(open(os.path.join(run, "summary.json")))["candidates"]]

    def rank(p):
        pat = json.load(open(p))["model"]["pattern"]
        pat = "dense" if pat == "dense/mixed" else pat
        return (order.index(pat) if pat in order else len(order), os.path.basename(p))
    sims.sort(key=rank)
    if "sta" not in page.sections:
        return fail("no sta section")
    timelines = by_class(charts, "timeline")
    traced = [p for p in sims if os.path.exists(p[:-5] + ".trace.json")]
    if len(timelines) != len(traced):
        return fail(f"{len(timelines)} timelines, want {len(traced)}")
    labels, times = [], []
    for p in sims:
        d = json.load(open(p))
        pat = d["model"]["pattern"]
        labels.append("dense" if pat == "dense/mixed" else pat)
        times.append(d["total"]["time_ms"])
        if f"{d['total']['time_ms']:.4f} ms" not in text:
            fail(f"{os.path.basename(p)}: total {d['total']['time_ms']:.4f} ms not in the page")
    if len(sims) > 1:
        check_bars(charts, "sta", labels, times, lambda v: f"{v:.4f}")
    for tl, p in zip(timelines, traced):
        ev = json.load(open(p[:-5] + ".trace.json"))["traceEvents"]
        units = {e["tid"]: e["args"]["name"] for e in ev if e.get("ph") == "M" and e.get("pid") == 0}
        # drawn row by row (unit by unit), each row in trace order
        spans = sorted((e for e in ev if e.get("ph") == "X" and e.get("pid") == 0), key=lambda e: e["tid"])
        rects = all_of(tl, "rect", "span")
        if len(rects) != len(spans):
            fail(f"{os.path.basename(p)}: {len(rects)} timeline bars, want {len(spans)}")
            continue
        for tid, unit in units.items():
            want = sum(1 for e in spans if e["tid"] == tid)
            got = sum(1 for r in rects if r.get("data-unit") == unit)
            if want != got:
                fail(f"{os.path.basename(p)}: {got} bars on {unit!r}, want {want}")
        rows = [t.text for t in all_of(tl, "text", "row-label")]
        if rows != [units[t] for t in sorted(units)]:
            fail(f"{os.path.basename(p)}: rows {rows}, want {[units[t] for t in sorted(units)]}")
        # bars sit where the events are: x follows ts, width follows dur (above the 0.4 px floor)
        for tid in units:
            row = [(e, r) for e, r in zip(spans, rects) if e["tid"] == tid]
            if not same_order([e["ts"] for e, _ in row], [float(r.get("x")) for _, r in row], False):
                fail(f"{os.path.basename(p)}: bar x on {units[tid]!r} does not follow the event times")
        k = [float(r.get("width")) / e["dur"] for r, e in zip(rects, spans) if float(r.get("width")) > 1]
        if k and max(k) - min(k) > 0.01 * max(k) + 0.02 * max(k):
            fail(f"{os.path.basename(p)}: bar widths not proportional to durations")
        for r, e in zip(rects, spans):
            if r.get("data-op") != e["name"]:
                fail(f"{os.path.basename(p)}: bar {r.get('data-op')!r}, want {e['name']!r}")
                break


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    report, run = args[0], args[1]
    want_notes = int(args[args.index("--notes") + 1]) if "--notes" in args else None
    raw = open(report, "rb").read()
    text = raw.decode("utf-8")  # strict: the page must be valid UTF-8
    page = Page()
    page.feed(text)
    page.close()
    charts = svgs(text)
    if not text.startswith("<!DOCTYPE html>"):
        fail("not an HTML5 document")
    if os.path.exists(os.path.join(run, "summary.json")):
        if check_candidates(run, page, charts):
            if any("latency_ms" in c for c in json.load(open(os.path.join(run, "summary.json")))["candidates"]):
                check_latency(run, page, charts)
    elif "candidates" in page.sections or "latency" in page.sections:
        fail("candidate sections without summary.json")
    if glob.glob(os.path.join(run, "*.jsonl")):
        check_training(run, page, charts)
    elif "training" in page.sections:
        fail("training section without a log")
    if [p for p in glob.glob(os.path.join(run, "sim*.json")) if not p.endswith(".trace.json")]:
        check_sta(run, page, charts, text)
    elif "sta" in page.sections:
        fail("sta section without a simulation")
    if want_notes is not None and len(page.notes) != want_notes:
        fail(f"{len(page.notes)} notes, want {want_notes}: {page.notes}")
    for f in failures:
        print("check_report: " + f, file=sys.stderr)
    print(f"check_report: {report}: sections {page.sections}, {len(charts)} charts, "
          f"{len(page.notes)} notes, {len(failures)} problems", file=sys.stderr)
    sys.exit(1 if failures else 0)


main()
