// Click a header of a table.sortable to sort by that column (numbers as numbers; "–" last).
document.addEventListener("click", function (ev) {
  var th = ev.target.closest("table.sortable th");
  if (!th) return;
  var table = th.closest("table"), body = table.tBodies[0], col = th.cellIndex;
  var asc = !th.classList.contains("asc");
  table.querySelectorAll("th").forEach(function (h) { h.classList.remove("asc", "desc"); });
  th.classList.add(asc ? "asc" : "desc");
  var key = function (row) {
    var cell = row.cells[col], raw = (cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent).trim();
    var n = parseFloat(raw.replace("±", " ").split(" ")[0]);
    return isNaN(n) ? raw.toLowerCase() : n;
  };
  var rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = key(a), y = key(b);
    if (x === y) return 0;
    if (x === "–" || x === "") return 1;
    if (y === "–" || y === "") return -1;
    if (typeof x !== typeof y) return typeof x === "number" ? -1 : 1;
    return (x < y ? -1 : 1) * (asc ? 1 : -1);
  });
  rows.forEach(function (r) { body.appendChild(r); });
});
