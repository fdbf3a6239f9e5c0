"""The report page's style sheet and script (inline: the page needs no network)."""

CSS = """
:root { --ink: #1d232a; --muted: #5b6570; --line: #d8dde3; --band: #f4f6f8;
        --accent: #b3261e; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); margin: 0; }
header { padding: 1.2rem 2rem .6rem; border-bottom: 1px solid var(--line); }
header h1 { margin: 0 0 .3rem; font-size: 1.45rem; }
header p { margin: .2rem 0; color: var(--muted); }
nav { padding: .4rem 2rem; background: var(--band); position: sticky; top: 0;
      z-index: 2; border-bottom: 1px solid var(--line); }
nav a { margin-right: 1rem; color: var(--ink); text-decoration: none; }
nav a:hover { text-decoration: underline; }
main { padding: 0 2rem 3rem; max-width: 1400px; }
section { margin-top: 1.6rem; }
h2 { font-size: 1.15rem; border-bottom: 1px solid var(--line); padding-bottom: .2rem; }
p.note { color: var(--muted); margin: .3rem 0 .6rem; }
.scroll { overflow: auto; max-height: 70vh; border: 1px solid var(--line); }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: .22rem .55rem; border-bottom: 1px solid var(--line);
         text-align: left; white-space: nowrap; }
td.num, th.num { text-align: right; }
thead th { position: sticky; top: 0; background: #fff; z-index: 1; }
table.sortable thead th { cursor: pointer; user-select: none; }
table.sortable thead th[aria-sort="ascending"]::after { content: " \\25B2"; }
table.sortable thead th[aria-sort="descending"]::after { content: " \\25BC"; }
tr.required td:nth-child(2) { font-weight: 600; }
.filter { margin: .3rem 0 .5rem; padding: .3rem .5rem; width: 18rem;
          border: 1px solid var(--line); border-radius: 4px; font: inherit; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; max-width: 100%; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: .9rem; }
.better { color: #1b6e20; font-weight: 600; }
.worse { color: var(--accent); }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace;
            font-size: .88rem; }
pre { background: var(--band); padding: .6rem; overflow-x: auto;
      white-space: pre-wrap; word-break: break-all; }
details { margin: .4rem 0; }
"""

# Sorting: click a header (numbers compare as numbers, empty cells last);
# filtering: rows whose text does not contain the query are hidden.
JS = r"""
(function () {
  function key(cell) {
    var v = cell.textContent;
    var n = parseFloat(v);
    return (v !== "" && isFinite(v)) ? n : v.toLowerCase();
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) {
          h.removeAttribute("aria-sort");
        });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col]), y = key(b.cells[col]);
          if (x === y) return 0;
          if (x === "") return 1;
          if (y === "") return -1;
          if (typeof x !== typeof y) return typeof x === "number" ? -1 : 1;
          return (x < y ? -1 : 1) * (asc ? 1 : -1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  document.querySelectorAll("input.filter").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    var count = document.getElementById(input.getAttribute("data-count"));
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase(), shown = 0;
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        var hit = q === "" || row.textContent.toLowerCase().indexOf(q) >= 0;
        row.hidden = !hit;
        if (hit) shown += 1;
      });
      if (count) count.textContent = shown;
    });
  });
})();
"""
