// Saves each answer as it is given (the server commits before it answers) and drives the
// keyboard: j/k or arrows move between rows, 1/0/- (samples) or 1-4 (patterns) answer,
// c comments (patterns), n/p change unit.
"use strict";
(function () {
  const unit = document.getElementById("unit");
  if (!unit) return;
  const rows = Array.from(document.querySelectorAll(".row"));
  const error = document.getElementById("error");
  let current = 0;

  function showProgress() {
    const done = rows.filter(r => r.classList.contains("saved")).length;
    const el = document.getElementById("unit-progress");
    if (el) el.textContent = `answered ${done} / ${rows.length} here`;
  }

  function focusRow(i) {
    if (!rows.length) return;
    current = Math.max(0, Math.min(rows.length - 1, i));
    rows.forEach((r, j) => r.classList.toggle("current", j === current));
    rows[current].focus({preventScroll: false});
    rows[current].scrollIntoView({block: "nearest"});
  }

  // A row's saves go one after another: a later answer (a comment added after the score) must
  // never be overtaken on the wire by an earlier one, since the server keeps the latest it stores.
  const pending = new WeakMap();
  function save(row, score) {
    const body = {unit: unit.dataset.unit, item: row.dataset.item, score: score};
    if (row.dataset.kind === "review") body.comment = row.querySelector("textarea").value;
    const next = (pending.get(row) || Promise.resolve()).then(() => send(row, body));
    pending.set(row, next);
    return next;
  }

  async function send(row, body) {
    const status = row.querySelector(".status");
    status.textContent = "saving…";
    row.classList.remove("saved", "failed");
    try {
      const res = await fetch("/api/score", {method: "POST", headers: {"Content-Type": "application/json"},
                                             body: JSON.stringify(body), credentials: "same-origin"});
      const answer = await res.json();
      if (!res.ok) throw new Error(answer.error || res.statusText);
      row.classList.add("saved");
      status.textContent = "saved";
      error.hidden = true;
    } catch (e) {
      row.classList.add("failed");
      status.textContent = "not saved";
      error.textContent = "Not saved: " + e.message;
      error.hidden = false;
    }
    showProgress();
  }

  // Leave the page only once every save in flight is acknowledged (leaving would abort them).
  function go(link) {
    if (link) Promise.all(rows.map(r => pending.get(r))).then(() => { location.href = link.href; });
  }

  function choose(row, value) {
    const input = row.querySelector(`input[type=radio][value="${value}"]`);
    if (!input) return false;
    input.checked = true;
    save(row, Number(value));
    return true;
  }

  rows.forEach((row, i) => {
    row.addEventListener("click", () => { current = i; rows.forEach((r, j) => r.classList.toggle("current", j === i)); });
    row.querySelectorAll("input[type=radio]").forEach(input =>
      input.addEventListener("change", () => save(row, Number(input.value))));
    const number = row.querySelector("input[type=number]");
    if (number) number.addEventListener("change", () => {
      const v = Number(number.value);
      if (number.value === "" || !Number.isInteger(v) || v < 0 || v > 100) {
        error.textContent = `${row.dataset.item} is an integer from 0 to 100`; error.hidden = false; return;
      }
      save(row, v);
    });
    const text = row.querySelector("textarea");
    if (text) text.addEventListener("change", () => {
      const checked = row.querySelector("input[type=radio]:checked");
      if (checked) save(row, Number(checked.value));
      else { error.textContent = "Rate this part (1-4) before its comment is saved."; error.hidden = false; }
    });
  });

  document.addEventListener("keydown", ev => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const tag = ev.target.tagName;
    if (tag === "TEXTAREA" || (tag === "INPUT" && ev.target.type !== "radio")) {
      if (ev.key === "Escape") { ev.target.blur(); focusRow(current); }
      if (ev.key === "Enter" && tag === "INPUT") { ev.target.dispatchEvent(new Event("change")); focusRow(current + 1); ev.preventDefault(); }
      return;
    }
    const row = rows[current];
    const review = document.body.dataset.mode === "patterns";
    let handled = true;
    if (ev.key === "j" || ev.key === "ArrowDown") focusRow(current + 1);
    else if (ev.key === "k" || ev.key === "ArrowUp") focusRow(current - 1);
    else if (ev.key === "n") go(document.getElementById("nextunit"));
    else if (ev.key === "p") go(document.getElementById("prev"));
    else if (row && row.dataset.kind === "holistic" && /^[0-9]$/.test(ev.key)) {
      const input = row.querySelector("input"); input.focus(); input.value = ""; handled = false;
    }
    else if (row && !review && row.dataset.kind === "checklist" && (ev.key === "1" || ev.key === "0" || ev.key === "-")) {
      choose(row, ev.key === "-" ? "-1" : ev.key); focusRow(current + 1);
    }
    else if (row && review && /^[1-4]$/.test(ev.key)) choose(row, ev.key);
    else if (row && review && ev.key === "c") row.querySelector("textarea").focus();
    else handled = false;
    if (handled) ev.preventDefault();
  });

  focusRow(Math.max(0, rows.findIndex(r => !r.classList.contains("saved"))));
  showProgress();
})();
