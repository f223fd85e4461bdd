/* The page of `dbmtl serve`: paste or upload FASTA, POST it to /predict, render with DBMTL.render. */
(function () {
  "use strict";
  var EXAMPLE = ">P68871_HBB human hemoglobin subunit beta\n" +
    "MVHLTPEEKSAVTALWGKVNVDEVGGEALGRLLVVYPWTQRFFESFGDLSTPDAVMGNPKVKAHGKKVLGAFSDGLAHLDNLKGTFATLSELHCDKLHVDPENFRLLGNVLVCVLAHHFGKEFTPPVQAAYQKVVAGVANALAHKYH\n";
  var form = document.getElementById("form"), text = document.getElementById("fasta");
  var status = document.getElementById("status"), error = document.getElementById("error");
  var results = document.getElementById("results"), submit = document.getElementById("submit");

  function showError(message) {
    error.textContent = message;
    error.hidden = !message;
  }

  document.getElementById("example").addEventListener("click", function () { text.value = EXAMPLE; });

  document.getElementById("file").addEventListener("change", function (ev) {
    var file = ev.target.files[0];
    if (!file) return;
    var reader = new FileReader();
    reader.onload = function () { text.value = reader.result; status.textContent = "loaded " + file.name; };
    reader.onerror = function () { showError("could not read " + file.name); };
    reader.readAsText(file);
  });

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    showError("");
    status.textContent = "predicting…";
    submit.disabled = true;
    var started = performance.now();
    fetch("/predict", { method: "POST", headers: { "Content-Type": "text/plain" }, body: text.value })
      .then(function (r) {
        return r.json().then(function (body) { return { ok: r.ok, status: r.status, body: body }; },
                             function () { return { ok: false, status: r.status, body: { detail: r.statusText } }; });
      })
      .then(function (res) {
        if (!res.ok) throw new Error(res.status + ": " + res.body.detail);
        DBMTL.render(results, res.body);
        status.textContent = "done in " + ((performance.now() - started) / 1000).toFixed(2) + " s";
      })
      .catch(function (e) { status.textContent = ""; showError(e.message); })
      .finally(function () { submit.disabled = false; });
  });
})();
