// score-bench view: renders the runs embedded in #data. No network, no libraries; DOM built with textContent
// only, so no sample text is ever parsed as HTML.
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("data").textContent);
  var PAGE_SIZE = 20;
  var LABELS = { acc_t1: "Accuracy@t1", acc_t2: "Accuracy@t2", delta: "Δ(t1,t2)", delta_i2c: "Δ i→c",
    delta_c2i: "Δ c→i", p_i2c_given_i: "P(i→c | wrong at t1)", p_c2i_given_c: "P(c→i | right at t1)" };
  var CELLS = [["c2c", "c→c"], ["c2i", "c→i"], ["i2c", "i→c"], ["i2i", "i→i"]];
  var state = { run: null, cell: null, search: "", page: 0 };

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function key(s) { return s.id + "\u0000" + s.sample; }
  function transition(sample) {
    if (!sample || sample.attempts.length < 2) return null;
    return (sample.attempts[0].correct ? "c" : "i") + "2" + (sample.attempts[1].correct ? "c" : "i");
  }

  // Units shared by the runs, in the first run's order, then any others' extra units.
  var index = DATA.runs.map(function (run) {
    var map = new Map();
    run.samples.forEach(function (s) { map.set(key(s), s); });
    return map;
  });
  var units = [], seen = new Set();
  DATA.runs.forEach(function (run) {
    run.samples.forEach(function (s) {
      var k = key(s);
      if (!seen.has(k)) { seen.add(k); units.push({ key: k, id: s.id, sample: s.sample }); }
    });
  });
  var counts = index.map(function (map) {
    var c = { c2c: 0, c2i: 0, i2c: 0, i2i: 0 };
    map.forEach(function (s) { var t = transition(s); if (t) c[t] += 1; });
    return c;
  });

  function fmt(v) { return v === null || v === undefined ? "n/a" : Number(v).toFixed(3); }

  function overview() {
    var box = document.getElementById("overview");
    document.getElementById("runs-summary").textContent =
      DATA.runs.length + " run(s), " + units.length + " (problem, sample) units";
    DATA.runs.forEach(function (run, r) {
      var card = el("div", "run-card");
      card.appendChild(el("h2", null, run.name));
      card.appendChild(el("div", "detail", [run.task, run.model, run.samples.length + " samples"]
        .filter(Boolean).join(" · ")));
      var table = el("table", "metrics");
      var head = el("tr");
      ["metric", "value", "95% CI"].forEach(function (h) { head.appendChild(el("th", null, h)); });
      table.appendChild(head);
      Object.keys(LABELS).forEach(function (name) {
        var m = run.metrics[name];
        if (!m) return;
        var tr = el("tr");
        tr.appendChild(el("td", null, LABELS[name]));
        tr.appendChild(el("td", null, fmt(m.value)));
        tr.appendChild(el("td", null, m.ci95 ? "[" + fmt(m.ci95[0]) + ", " + fmt(m.ci95[1]) + "]" : "n/a"));
        table.appendChild(tr);
      });
      card.appendChild(table);
      var matrix = el("table", "matrix");
      matrix.setAttribute("data-run", r);
      var top = el("tr");
      top.appendChild(el("th", null, "t1 \\ t2"));
      top.appendChild(el("th", null, "correct"));
      top.appendChild(el("th", null, "incorrect"));
      matrix.appendChild(top);
      [["correct", ["c2c", "c2i"]], ["incorrect", ["i2c", "i2i"]]].forEach(function (line) {
        var tr = el("tr");
        tr.appendChild(el("th", null, line[0]));
        line[1].forEach(function (cell) {
          var td = el("td", "cell " + cell, counts[r][cell]);
          td.setAttribute("data-run", r);
          td.setAttribute("data-cell", cell);
          td.title = "show the " + cell.replace("2", "→") + " samples of " + run.name;
          td.addEventListener("click", function () { setFilter(r, cell); });
          tr.appendChild(td);
        });
        matrix.appendChild(tr);
      });
      card.appendChild(matrix);
      box.appendChild(card);
    });
  }

  function setFilter(run, cell) {
    if (state.run === run && state.cell === cell) { run = null; cell = null; }
    state.run = run; state.cell = cell; state.page = 0;
    document.querySelectorAll("td.cell").forEach(function (td) {
      td.classList.toggle("active", Number(td.getAttribute("data-run")) === run && td.getAttribute("data-cell") === cell);
    });
    render();
  }

  function filtered() {
    var needle = state.search.toLowerCase();
    return units.filter(function (u) {
      if (needle && u.id.toLowerCase().indexOf(needle) < 0) return false;
      if (state.cell === null) return true;
      return transition(index[state.run].get(u.key)) === state.cell;
    });
  }

  function attemptPane(title, attempt, diff) {
    var pane = el("div", "attempt");
    var meta = el("div", "meta");
    meta.appendChild(el("strong", null, title + " "));
    if (attempt) {
      meta.appendChild(el("span", "verdict-" + attempt.status, attempt.status));
      meta.appendChild(el("span", null, " · extracted: "));
      meta.appendChild(el("code", attempt.extracted === null ? "missing" : null,
        attempt.extracted === null ? "none" : attempt.extracted));
    }
    pane.appendChild(meta);
    var text = el("div", "text");
    if (diff) {
      diff.forEach(function (seg) {
        text.appendChild(seg[0] === "=" ? document.createTextNode(seg[1]) : el(seg[0] === "-" ? "del" : "ins", null, seg[1]));
      });
    } else if (attempt) {
      text.textContent = attempt.text;
    }
    pane.appendChild(text);
    if (attempt && attempt.detail) pane.appendChild(el("div", "detail", attempt.detail));
    return pane;
  }

  function sampleCard(u) {
    var card = el("article", "sample");
    card.setAttribute("data-key", u.key);
    var h = el("h3", null, u.id + " · sample " + u.sample);
    var prompt = null;
    DATA.runs.forEach(function (run, r) {
      var t = transition(index[r].get(u.key));
      if (t) h.appendChild(el("span", "badge " + t, run.name + ": " + t.replace("2", "→")));
      if (prompt === null && run.prompts[u.id]) prompt = run.prompts[u.id];
    });
    card.appendChild(h);
    if (prompt) card.appendChild(el("div", "prompt", prompt));
    var grid = el("div", "runs");
    DATA.runs.forEach(function (run, r) {
      var col = el("div", "run-col");
      col.appendChild(el("h4", null, run.name));
      var s = index[r].get(u.key);
      if (!s) { col.appendChild(el("div", "missing", "not in this run")); grid.appendChild(col); return; }
      var row = el("div", "attempts");
      row.appendChild(attemptPane("attempt 1", s.attempts[0], null));
      if (s.attempts.length >= 2) {
        row.appendChild(attemptPane("attempt 2", s.attempts[1], null));
        row.appendChild(attemptPane("diff 1 → 2", null, s.diff));
      }
      col.appendChild(row);
      for (var t = 2; t < s.attempts.length; t++) col.appendChild(attemptPane("attempt " + (t + 1), s.attempts[t], null));
      grid.appendChild(col);
    });
    card.appendChild(grid);
    return card;
  }

  function render() {
    var list = filtered();
    var pages = Math.max(1, Math.ceil(list.length / PAGE_SIZE));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * PAGE_SIZE, shown = list.slice(start, start + PAGE_SIZE);
    var box = document.getElementById("samples");
    box.replaceChildren.apply(box, shown.map(sampleCard));
    var what = state.cell === null ? "all samples" :
      DATA.runs[state.run].name + " " + state.cell.replace("2", "→");
    document.getElementById("status").textContent = list.length + " match (" + what + ")" +
      (list.length ? "; showing " + (start + 1) + "–" + (start + shown.length) : "");
    document.getElementById("page").textContent = "page " + (state.page + 1) + " / " + pages;
    document.getElementById("prev").disabled = state.page === 0;
    document.getElementById("next").disabled = state.page >= pages - 1;
  }

  document.getElementById("prev").addEventListener("click", function () { state.page -= 1; render(); window.scrollTo(0, 0); });
  document.getElementById("next").addEventListener("click", function () { state.page += 1; render(); window.scrollTo(0, 0); });
  document.getElementById("clear").addEventListener("click", function () {
    document.getElementById("search").value = ""; state.search = ""; setFilter(null, null);
  });
  document.getElementById("search").addEventListener("input", function (e) { state.search = e.target.value; state.page = 0; render(); });
  overview();
  render();
  document.body.setAttribute("data-ready", "1");
})();
