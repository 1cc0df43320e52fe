// Keeps "waiting now" current without reloading: asks the server every few seconds and swaps
// the list only when it changed, putting keyboard focus back where it was.
(function () {
  var live = document.getElementById("waiting-live");
  if (!live) { return; }
  var url = live.getAttribute("data-poll-url");
  var seconds = parseInt(live.getAttribute("data-poll-seconds"), 10) || 3;
  var version = null;
  var baseTitle = document.title;

  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }
        return response.ok ? response.json() : null;
      })
      .then(function (data) {
        if (!data) { return; }
        document.title = (data.count ? "(" + data.count + ") " : "") + baseTitle;
        if (version === null) { version = data.version; return; }
        if (data.version === version) { return; }
        version = data.version;
        var focusedId = document.activeElement && live.contains(document.activeElement) ? document.activeElement.id : "";
        var open = Array.prototype.map.call(live.querySelectorAll("details[open]"), function (d) {
          return d.closest("[id]") ? d.closest("[id]").id : "";
        });
        live.innerHTML = data.html;
        open.forEach(function (id) {
          var box = id && document.getElementById(id);
          var details = box && box.querySelector("details");
          if (details) { details.open = true; }
        });
        var again = focusedId && document.getElementById(focusedId);
        if (again) { again.focus(); }
      })
      .catch(function () { /* the next poll tries again */ });
  }
  refresh();
  window.setInterval(refresh, seconds * 1000);
})();
