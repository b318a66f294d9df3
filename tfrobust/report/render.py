"""The report's document blocks (document.py) as Markdown and as self-contained HTML.

Blocks: ("h", level, text) | ("p", text) | ("ul", [text]) | ("table", head, rows) | ("img", file, caption).
"""

import base64
import html
import os
import re

from tfrobust.report import answer


_EXCLUDED_LINK = "[see excluded](#excluded-trials)"  # GitHub's anchor of the "Excluded trials" heading


def _md_text(s):
  return str(s).replace("see excluded", _EXCLUDED_LINK)


def _md_cell(s):
  return _md_text(s).replace("|", "\\|").replace("\n", " ")


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
      out.append(_md_text(block[1]))
    elif kind == "ul":
      out.append("\n".join(f"- {_md_text(item)}" for item in block[1]))
    elif kind == "table":
      out.append(md_table(block[1], block[2]))
    elif kind == "img":
      out.append(f"![{block[2]}]({block[1]})\n\n*{block[2]}*")
  return "\n\n".join(out) + "\n"


VERDICT_COLOURS = answer.VERDICT_COLOURS
_VERDICT = re.compile("|".join(re.escape(v) for v in sorted(VERDICT_COLOURS, key=len, reverse=True)))


def anchor(title):
  """The id of a heading: lower case, runs of other characters as one hyphen ("Excluded trials" ->
  "excluded-trials")."""
  return re.sub(r"[^0-9a-zα-ω]+", "-", str(title).lower()).strip("-")


def _inline(text):
  s = html.escape(str(text))
  s = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", s)
  s = re.sub(r"`(.+?)`", r"<code>\1</code>", s)
  return s.replace("see excluded", f'<a href="#{anchor("Excluded trials")}">see excluded</a>')


def _cell(text):
  """A table cell; a cell that is a verdict (bold or not, with a parenthesis after it) gets its colour."""
  m = _VERDICT.match(re.sub(r"^\*\*", "", str(text)))
  style = f' style="background:{VERDICT_COLOURS[m.group(0)]}33"' if m else ""
  return f"<td{style}>{_inline(text)}</td>"


def to_html(doc, out_dir):
  """Self-contained HTML: a table of contents of the level-2 headings, verdict cells coloured, figures embedded
  as base64 PNG (opens offline)."""
  body, toc = [], []
  for block in doc:
    kind = block[0]
    if kind == "h":
      ident = anchor(block[2])
      body.append(f'<h{block[1]} id="{ident}">{_inline(block[2])}</h{block[1]}>')
      if block[1] == 2:
        toc.append(f'<li><a href="#{ident}">{_inline(block[2])}</a></li>')
    elif kind == "p":
      body.append(f"<p>{_inline(block[1])}</p>")
    elif kind == "ul":
      body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in block[1]) + "</ul>")
    elif kind == "table":
      head = "".join(f"<th>{_inline(h)}</th>" for h in block[1])
      rows = "".join("<tr>" + "".join(_cell(c) for c in r) + "</tr>" for r in block[2])
      body.append(f"<table><tr>{head}</tr>{rows}</table>")
    elif kind == "img":
      with open(os.path.join(out_dir, block[1]), "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
      body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block[1])}">'
                  f"<figcaption>{_inline(block[2])}</figcaption></figure>")
  if toc:  # after the title and the lines under it, before the first section
    first = next(i for i, b in enumerate(body) if b.startswith("<h2"))
    body.insert(first, '<nav><b>Contents</b><ul class="toc">' + "".join(toc) + "</ul></nav>")
  style = ("body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
           "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .5em;"
           "font-size:90%}img{max-width:100%}figcaption{font-style:italic}"
           "nav{border:1px solid #ccc;padding:.5em 1em;margin:1em 0}ul.toc{columns:2;margin:.3em 0}")
  return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>tfrobust study report</title>"
          f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
