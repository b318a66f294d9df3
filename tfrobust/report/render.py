"""The report's document blocks (document.py) as Markdown and as self-contained HTML.

Blocks: ("h", level, text) | ("p", text) | ("ul", [text]) | ("table", head, rows) | ("img", file, caption).
"""

import base64
import html
import os
import re


def _md_cell(s):
  return str(s).replace("|", "\\|").replace("\n", " ")


def md_table(head, rows):
  return "\n".join(["| " + " | ".join(map(_md_cell, head)) + " |", "|" + "---|" * len(head)]
                   + ["| " + " | ".join(map(_md_cell, r)) + " |" for r in rows])


def to_markdown(doc):
  out = []
  for block in doc:
    kind = block[0]
    if kind == "h":
      out.append("#" * block[1] + " " + block[2])
    elif kind == "p":
      out.append(block[1])
    elif kind == "ul":
      out.append("\n".join(f"- {item}" for item in block[1]))
    elif kind == "table":
      out.append(md_table(block[1], block[2]))
    elif kind == "img":
      out.append(f"![{block[2]}]({block[1]})\n\n*{block[2]}*")
  return "\n\n".join(out) + "\n"


def _inline(text):
  s = html.escape(str(text))
  s = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", s)
  return re.sub(r"`(.+?)`", r"<code>\1</code>", s)


def to_html(doc, out_dir):
  """Self-contained HTML: figures embedded as base64 PNG."""
  body = []
  for block in doc:
    kind = block[0]
    if kind == "h":
      body.append(f"<h{block[1]}>{_inline(block[2])}</h{block[1]}>")
    elif kind == "p":
      body.append(f"<p>{_inline(block[1])}</p>")
    elif kind == "ul":
      body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block[1]) + "</ul>")
    elif kind == "table":
      head = "".join(f"<th>{_inline(h)}</th>" for h in block[1])
      rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in block[2])
      body.append(f"<table><tr>{head}</tr>{rows}</table>")
    elif kind == "img":
      with open(os.path.join(out_dir, block[1]), "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
      body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block[1])}">'
                  f"<figcaption>{_inline(block[2])}</figcaption></figure>")
  style = ("body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
           "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .5em;"
           "font-size:90%}img{max-width:100%}figcaption{font-style:italic}")
  return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>tfrobust study report</title>"
          f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
