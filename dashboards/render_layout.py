#!/usr/bin/env python3
"""Draws each dashboard's panel layout (gridPos, 24 columns) as an SVG in docs/img/, for docs/dashboards.md.
Run: python3 dashboards/render_layout.py"""
import glob
import html
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
COL, ROW = 40, 24
COLORS = {"stat": "#2f6f4f", "timeseries": "#2d4f7c", "table": "#6b4f2d", "row": "#444444"}

for path in sorted(glob.glob(os.path.join(HERE, "*.json"))):
    d = json.load(open(path))
    panels = [p for p in d["panels"]]
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels) * ROW + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{24 * COL}" height="{height}" font-family="sans-serif">',
           f'<rect width="100%" height="100%" fill="#111217"/>',
           f'<text x="8" y="24" fill="#ddd" font-size="18">{html.escape(d["title"])}</text>']
    for p in panels:
        g = p["gridPos"]
        x, y, w, h = g["x"] * COL + 2, g["y"] * ROW + 36, g["w"] * COL - 4, g["h"] * ROW - 4
        color = COLORS.get(p["type"], "#555")
        out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="4" fill="{color}" stroke="#888"/>')
        label = f'{p["title"]} [{p["type"]}]'
        out.append(f'<text x="{x + 6}" y="{y + 16}" fill="#fff" font-size="12">{html.escape(label)}</text>')
    out.append("</svg>")
    name = os.path.splitext(os.path.basename(path))[0]
    target = os.path.join(HERE, "..", "docs", "img", f"{name}.svg")
    with open(target, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote", os.path.relpath(target))
