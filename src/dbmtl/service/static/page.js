/* The page of `dbmtl serve`: paste or upload FASTA, POST it to /predict, render with DBMTL.render. */
(function () {
  "use strict";
  var EXAMPLE = ">P68871_HBB human hemoglobin subunit beta\n" +
    "MVHLTPEEKSAVTALWGKVNVDEVGGEALGRLLVVYPWTQRFFESFGDLSTPDAVMGNPKVKAHGKKVLGAFSDGLAHLDNLKGTFATLSELHCDKLHVDPENFRLLGNVLVCVLAHHFGKEFTPPVQAAYQKVVAGVANALAHKYH\n";
  var form = document.getElementById("form"), text = document.getElementById("fasta");
  var status = document.getElementById("status"), error = document.getElementById("error");
  var results = document.getElementById("results"), submit = document.getElementById("submit");
  var insist = document.getElementById("allow-nucleotides");

  function showError(message) {
    error.textContent = message;
    error.hidden = !message;
  }

  function sentence(detail) {
    // A server message as a sentence: without the "<request>" the reader names the input by, capitalized, ended.
    var text = String(detail || "the server gave no reason")
      .replace(/^<request>(?:,? (line \d+))?:\s*/, function (_, line) { return line ? "in " + line + ", " : ""; });
    text = text.charAt(0).toUpperCase() + text.slice(1);
    return "Nothing was predicted. " + text + (/[.!?]$/.test(text) ? "" : ".");
  }

  function failed(message) {  // an error replaces the results: they belong to another input
    results.textContent = "";
    status.textContent = "";
    showError(message);
  }

  document.getElementById("example").addEventListener("click", function () { text.value = EXAMPLE; });

  document.getElementById("file").addEventListener("change", function (ev) {
    var file = ev.target.files[0];
    if (!file) return;
    var reader = new FileReader();
    reader.onload = function () { text.value = reader.result; status.textContent = "loaded " + file.name; };
    reader.onerror = function () { showError("Could not read " + file.name + "."); };
    reader.readAsText(file);
  });

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    showError("");
    status.textContent = "predicting…";
    submit.disabled = true;
    var started = performance.now();
    fetch(insist.checked ? "/predict?allow_nucleotides=true" : "/predict", { method: "POST", headers: { "Content-Type": "text/plain" }, body: text.value })
      .then(function (r) {
        return r.json().then(function (body) { return { ok: r.ok, status: r.status, body: body }; },
                             function () { return { ok: false, status: r.status, body: { detail: r.statusText } }; });
      })
      .then(function (res) {
        if (!res.ok) {
          error.dataset.status = res.status;
          return failed(sentence(res.body.detail));
        }
        DBMTL.render(results, res.body);
        status.textContent = "done in " + ((performance.now() - started) / 1000).toFixed(2) + " s";
      })
      .catch(function (e) { failed(sentence("the server did not answer (" + e.message + ")")); })
      .finally(function () { submit.disabled = false; });
  });
})();
