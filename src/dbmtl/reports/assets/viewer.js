/* dbmtl result viewer: renders {tasks, proteins, note} (the JSON of POST /predict, and of an HTML
   report) into a container. Shared by the web page and `dbmtl predict --html`; no network access. */
(function () {
  "use strict";
  var CELL = 10;           // px per residue (.row .cell in viewer.css)
  var OPEN_FIRST = 10;     // proteins drawn at once; the rest when opened (a report may hold 1,000)
  var RESIDUE = ["ss3", "ss8"], PROTEIN = ["loc", "ms"];
  var GUESS_TIP = "a guess: the confidence is below this model's threshold, under which its answers " +
    "on its validation proteins were mostly wrong";

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function pct(p) { return (100 * p).toFixed(1) + "%"; }
  function has(rec, task) { return rec[task + "_probabilities"] !== undefined; }
  function ink(hex) {  // dark text on light colours
    var n = parseInt(hex.slice(1), 16), r = n >> 16, g = (n >> 8) & 255, b = n & 255;
    return 0.299 * r + 0.587 * g + 0.114 * b > 165 ? "#222" : "#fff";
  }
  function perLine(width) {  // residues per line that fill `width` px: a multiple of 10, at least 30
    return Math.max(30, Math.floor((width - 80) / CELL / 10) * 10);
  }

  function answer(rec, task, meta) {  // a per-protein answer: label, name, confidence, and whether it is a guess
    var label = rec[meta.field];
    return { label: label, name: meta.names[meta.labels.indexOf(label)], p: rec[task + "_probabilities"][label],
             guess: rec[meta.field + "_reliable"] === false };
  }
  function guessMark() {
    var m = el("span", "guess-mark", "guess");
    m.title = GUESS_TIP;
    return m;
  }
  function shortDescription(rec) {  // the FASTA description without the id it starts with
    var desc = rec.description || "";
    if (desc === rec.id) return "";
    return desc.indexOf(rec.id + " ") === 0 ? desc.slice(rec.id.length + 1) : desc;
  }

  function legend(meta, task) {
    var box = el("div", "legend legend-" + task);
    box.appendChild(el("span", "legend-title", task.toUpperCase() + ":"));
    meta.labels.forEach(function (label, i) {
      var item = el("span", "legend-item");
      var sw = el("span", "swatch", label);
      sw.style.background = meta.colors[i];
      sw.style.color = ink(meta.colors[i]);
      item.appendChild(sw);
      item.appendChild(el("span", "legend-name", meta.names[i]));
      box.appendChild(item);
    });
    return box;
  }

  function trackRow(rec, task, meta, start, end) {
    var row = el("div", "row track track-" + task), conf = el("div", "row conf conf-" + task);
    row.dataset.task = task;
    conf.dataset.task = task;
    var labels = rec[meta.field], probs = rec[task + "_probabilities"];
    for (var k = start; k < end; k++) {
      var i = meta.labels.indexOf(labels[k]), p = probs[k][i];  // the shown letter's (SS8: not always the likeliest)
      var cell = el("span", "cell", labels[k]);
      cell.style.background = meta.colors[i];
      cell.style.color = ink(meta.colors[i]);
      cell.title = (k + 1) + " " + rec.sequence[k] + ": " + meta.names[i] + " " + pct(p);
      row.appendChild(cell);
      var bar = el("span", "cell"), fill = el("span", "fill");
      fill.style.height = Math.round(100 * p) + "%";
      fill.style.background = meta.colors[i];
      bar.appendChild(fill);
      conf.appendChild(bar);
    }
    return [el("div", "row-label", task.toUpperCase()), row, el("div", "row-label", "conf."), conf];
  }

  function sequenceView(rec, tasks, line) {
    var view = el("div", "sequence-view");
    for (var start = 0; start < rec.sequence.length; start += line) {
      var end = Math.min(start + line, rec.sequence.length), block = el("div", "block");
      block.appendChild(el("div", "row-label", String(start + 1)));
      var seq = el("div", "row residues");
      for (var k = start; k < end; k++) seq.appendChild(el("span", "cell", rec.sequence[k]));
      block.appendChild(seq);
      RESIDUE.forEach(function (task) {
        if (tasks[task] && has(rec, task))
          trackRow(rec, task, tasks[task], start, end).forEach(function (e) { block.appendChild(e); });
      });
      view.appendChild(block);
    }
    return view;
  }

  function bars(rec, task, meta) {
    var box = el("div", "bars bars-" + task), probs = rec[task + "_probabilities"];
    var order = meta.labels.map(function (_, i) { return i; });
    order.sort(function (a, b) { return probs[meta.labels[b]] - probs[meta.labels[a]]; });
    order.forEach(function (i) {
      var label = meta.labels[i], p = probs[label];
      var row = el("div", "bar-row" + (label === rec[meta.field] ? " top" : ""));
      row.dataset.label = label;
      row.appendChild(el("span", "bar-name", meta.names[i]));
      var track = el("span", "bar-track"), fill = el("span", "bar-fill");
      fill.style.width = (100 * p).toFixed(1) + "%";
      track.appendChild(fill);
      row.appendChild(track);
      row.appendChild(el("span", "bar-value", pct(p)));
      box.appendChild(row);
    });
    return box;
  }

  function proteinSummary(rec, tasks) {
    var box = el("div", "protein-summary");
    if (tasks.ms && has(rec, "ms")) {
      var m = answer(rec, "ms", tasks.ms);
      var ms = el("p", "membrane", m.name + " (" + pct(m.p) + " confidence) ");
      ms.dataset.label = m.label;
      if (m.guess) ms.appendChild(guessMark());
      box.appendChild(ms);
    }
    if (tasks.loc && has(rec, "loc")) {
      var l = answer(rec, "loc", tasks.loc);
      var head = el("p", "location", "Location: " + l.name + " (" + pct(l.p) + ") ");
      head.dataset.label = l.label;
      if (l.guess) head.appendChild(guessMark());
      box.appendChild(head);
      box.appendChild(bars(rec, "loc", tasks.loc));
    }
    return box;
  }

  function protein(rec, tasks) {
    var sec = el("details", "protein");
    sec.dataset.id = rec.id;
    var sum = el("summary");
    sum.appendChild(el("span", "pid", rec.id));
    var desc = shortDescription(rec);
    if (desc) sum.appendChild(el("span", "desc", desc));
    sum.appendChild(el("span", "len", rec.length + " residues"));
    if (tasks.loc && has(rec, "loc")) {  // every title line says where, also for proteins not yet drawn
      var l = answer(rec, "loc", tasks.loc), where = el("span", "title-loc", l.name + " " + pct(l.p));
      where.dataset.label = l.label;
      if (l.guess) { where.appendChild(document.createTextNode(" ")); where.appendChild(guessMark()); }
      sum.appendChild(where);
    }
    sec.appendChild(sum);
    var drawn = false;
    function draw() {  // drawn when first opened, as wide as the section is then
      if (drawn) return;
      drawn = true;
      var body = el("div", "protein-body");
      body.appendChild(proteinSummary(rec, tasks));
      body.appendChild(sequenceView(rec, tasks, perLine(sec.clientWidth)));
      sec.appendChild(body);
    }
    sec.addEventListener("toggle", function () { if (sec.open) draw(); });
    sec.draw = draw;
    return sec;
  }

  function summaryTable(result, sections) {
    // One row per protein, sortable by any column; an id jumps to the protein's section.
    var loc = result.tasks.loc, ms = result.tasks.ms, cols = [
      { key: "id", get: function (r) { return r.id; } },
      { key: "description", get: shortDescription },
      { key: "length", get: function (r) { return r.length; }, num: true }];
    if (loc) cols.push(
      { key: "location", get: function (r) { return has(r, "loc") ? answer(r, "loc", loc).name : ""; } },
      { key: "confidence", num: true, get: function (r) { return has(r, "loc") ? answer(r, "loc", loc).p : -1; },
        show: function (r, td) {
          if (!has(r, "loc")) return;
          var a = answer(r, "loc", loc);
          td.textContent = pct(a.p);
          if (a.guess) { td.appendChild(document.createTextNode(" ")); td.appendChild(guessMark()); }
        } });
    if (ms) cols.push(
      { key: "membrane", get: function (r) { return has(r, "ms") ? answer(r, "ms", ms).name : ""; },
        show: function (r, td) {
          if (!has(r, "ms")) return;
          var a = answer(r, "ms", ms);
          td.textContent = a.name + " " + pct(a.p);
          if (a.guess) { td.appendChild(document.createTextNode(" ")); td.appendChild(guessMark()); }
        } });
    var table = el("table", "summary"), head = el("tr"), body = el("tbody");
    var rows = result.proteins.map(function (rec, n) {
      var tr = el("tr");
      tr.dataset.id = rec.id;
      cols.forEach(function (c) {
        var td = el("td", "col-" + c.key);
        if (c.key === "id") {
          var a = el("a", null, rec.id);
          a.href = "#";
          a.addEventListener("click", function (ev) {
            ev.preventDefault();
            sections[n].open = true;
            sections[n].draw();
            sections[n].scrollIntoView();
          });
          td.appendChild(a);
        } else if (c.show) c.show(rec, td);
        else td.textContent = c.get(rec);
        tr.appendChild(td);
      });
      body.appendChild(tr);
      return { rec: rec, tr: tr };
    });
    cols.forEach(function (c) {
      var th = el("th", "col-" + c.key), b = el("button", "sort", c.key);
      b.type = "button";
      b.title = "sort by " + c.key;
      th.dataset.key = c.key;
      th.appendChild(b);
      b.addEventListener("click", function () {
        var up = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(head.children, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", up ? "ascending" : "descending");
        rows.slice().sort(function (x, y) {  // a stable sort: ties keep the input order
          var a = c.get(x.rec), z = c.get(y.rec);
          var d = c.num ? a - z : String(a).localeCompare(String(z));
          return up ? d : -d;
        }).forEach(function (r) { body.appendChild(r.tr); });
      });
      head.appendChild(th);
    });
    var thead = el("thead");
    thead.appendChild(head);
    table.appendChild(thead);
    table.appendChild(body);
    return table;
  }

  function openAll(sections) {
    var box = el("div", "open-all");
    [["expand", "Expand all"], ["collapse", "Collapse all"]].forEach(function (d) {
      var b = el("button", "toggle-all", d[1]);
      b.type = "button";
      b.dataset.action = d[0];
      b.addEventListener("click", function () {
        sections.forEach(function (s) { if (d[0] === "expand") s.draw(); s.open = d[0] === "expand"; });
      });
      box.appendChild(b);
    });
    return box;
  }

  function tsv(rows) { return rows.map(function (r) { return r.join("\t"); }).join("\n") + "\n"; }
  function f4(p) { return p.toFixed(4); }

  function residueTsv(result) {
    var tasks = RESIDUE.filter(function (t) { return result.proteins.some(function (r) { return has(r, t); }); });
    var head = ["id", "position", "residue"].concat(tasks);
    tasks.forEach(function (t) { result.tasks[t].labels.forEach(function (l) { head.push("p_" + t + "_" + l); }); });
    var rows = [head];
    result.proteins.forEach(function (rec) {
      for (var k = 0; k < rec.sequence.length; k++) {
        var row = [rec.id, k + 1, rec.sequence[k]];
        tasks.forEach(function (t) { row.push(rec[result.tasks[t].field][k]); });
        tasks.forEach(function (t) { row = row.concat(rec[t + "_probabilities"][k].map(f4)); });
        rows.push(row);
      }
    });
    return tsv(rows);
  }

  function proteinTsv(result) {
    var tasks = PROTEIN.filter(function (t) { return result.proteins.some(function (r) { return has(r, t); }); });
    var head = ["id", "description", "length"];  // the columns of `dbmtl predict`'s proteins.tsv
    tasks.forEach(function (t) { head.push(result.tasks[t].field, result.tasks[t].field + "_confidence"); });
    tasks.forEach(function (t) { result.tasks[t].labels.forEach(function (l) { head.push("p_" + result.tasks[t].field + "_" + l); }); });
    tasks.forEach(function (t) { head.push(result.tasks[t].field + "_reliable"); });
    var rows = [head];
    result.proteins.forEach(function (rec) {
      var row = [rec.id, (rec.description || "").replace(/[\t\n]/g, " "), rec.length];
      tasks.forEach(function (t) { var f = result.tasks[t].field; row.push(rec[f], f4(rec[f + "_confidence"])); });
      tasks.forEach(function (t) { result.tasks[t].labels.forEach(function (l) { row.push(f4(rec[t + "_probabilities"][l])); }); });
      tasks.forEach(function (t) { var r = rec[result.tasks[t].field + "_reliable"]; row.push(r === true ? "yes" : r === false ? "no" : ""); });
      rows.push(row);
    });
    return tsv(rows);
  }

  function download(name, type, text) {
    var url = URL.createObjectURL(new Blob([text], { type: type }));
    var a = el("a");
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
  }

  function downloads(result) {
    var box = el("div", "downloads");
    [["residues.tsv", "text/tab-separated-values", residueTsv, "Download residues (TSV)"],
     ["proteins.tsv", "text/tab-separated-values", proteinTsv, "Download proteins (TSV)"],
     ["predictions.json", "application/json", function (r) { return JSON.stringify(r); }, "Download JSON"]
    ].forEach(function (d) {
      var b = el("button", "download", d[3]);
      b.type = "button";
      b.dataset.file = d[0];
      b.addEventListener("click", function () { download(d[0], d[1], d[2](result)); });
      box.appendChild(b);
    });
    return box;
  }

  function render(container, result) {
    container.textContent = "";
    var head = el("div", "results-head");
    head.appendChild(el("p", "count", result.proteins.length + " protein" + (result.proteins.length === 1 ? "" : "s")));
    if (result.note) head.appendChild(el("p", "note", result.note));
    head.appendChild(el("p", "note eukaryotic",
      "Location classes are the 10 eukaryotic classes of DeepLoc: a bacterial or archaeal protein still gets one of them."));
    head.appendChild(downloads(result));
    var legends = el("div", "legends");
    RESIDUE.forEach(function (t) { if (result.tasks[t]) legends.appendChild(legend(result.tasks[t], t)); });
    head.appendChild(legends);
    container.appendChild(head);
    var sections = result.proteins.map(function (rec) { return protein(rec, result.tasks); });
    container.appendChild(summaryTable(result, sections));
    container.appendChild(openAll(sections));
    sections.forEach(function (sec) { container.appendChild(sec); });
    sections.slice(0, OPEN_FIRST).forEach(function (sec) { sec.draw(); sec.open = true; });
  }

  window.DBMTL = { render: render, residueTsv: residueTsv, proteinTsv: proteinTsv };
})();
