// The setup page's live password check (progressive enhancement only: the form works, and the
// server checks everything again, without it). It asks the server's one policy
// implementation, POST /api/v1/password-policy, and marks each listed rule kept or broken.
(function () {
  "use strict";
  var script = document.currentScript;
  var field = document.getElementById("password");
  var list = document.getElementById("policy");
  if (!field || !list || !window.fetch) {
    return;
  }
  var words = {
    ok: (script && script.getAttribute("data-ok")) || "ok",
    ko: (script && script.getAttribute("data-ko")) || "no"
  };
  var timer = null;
  var asked = 0;
  function show(rules) {
    rules.forEach(function (r) {
      var item = document.getElementById("rule-" + r.rule);
      if (!item) {
        return;
      }
      item.className = r.ok ? "ok" : "ko";
      var state = item.querySelector(".rule-state");
      if (state) {
        state.textContent = " (" + (r.ok ? words.ok : words.ko) + ")";
      }
    });
  }
  function check() {
    var mine = ++asked;
    fetch("/api/v1/password-policy", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "omit",
      cache: "no-store",
      body: JSON.stringify({ password: field.value })
    })
      .then(function (res) { return res.ok ? res.json() : null; })
      .then(function (body) {
        if (body && mine === asked && Array.isArray(body.rules)) {
          show(body.rules);
        }
      })
      .catch(function () {});
  }
  field.addEventListener("input", function () {
    if (timer) {
      clearTimeout(timer);
    }
    timer = setTimeout(check, 250);
  });
})();
