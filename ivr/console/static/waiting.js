// Keeps "waiting now" current without reloading: asks the server every few seconds and swaps
// the list only when who is in it changed, putting keyboard focus back where it was; the
// waiting times count up in between.
(function () {
  var live = document.getElementById("waiting-live");
  if (!live) { return; }
  var url = live.getAttribute("data-poll-url");
  var seconds = parseInt(live.getAttribute("data-poll-seconds"), 10) || 3;
  var version = live.getAttribute("data-version");
  var baseTitle = document.title;
  var shownAt = Date.now();

  function place(element) {
    // Where an element sits, as something that survives a swap: its own id, or the id of the
    // card around it plus the element's tag and position among its kind.
    if (element.id) { return "#" + element.id; }
    var card = element.closest("[id]");
    if (!card || !live.contains(card)) { return ""; }
    var same = card.querySelectorAll(element.tagName);
    return "#" + card.id + " " + element.tagName + ":" + Array.prototype.indexOf.call(same, element);
  }

  function find(where) {
    if (!where) { return null; }
    var parts = where.split(" ");
    var card = document.getElementById(parts[0].slice(1));
    if (!card || parts.length === 1) { return card; }
    var tagAndIndex = parts[1].split(":");
    return card.querySelectorAll(tagAndIndex[0])[parseInt(tagAndIndex[1], 10)] || null;
  }

  function tick() {
    var elapsed = Math.floor((Date.now() - shownAt) / 1000);
    Array.prototype.forEach.call(live.querySelectorAll(".waited"), function (span) {
      var total = parseInt(span.getAttribute("data-waited"), 10) + elapsed;
      span.textContent = Math.floor(total / 60) + " 分 " + (total % 60) + " 秒";
    });
  }

  function swap(html) {
    var focused = live.contains(document.activeElement) ? place(document.activeElement) : "";
    var open = Array.prototype.map.call(live.querySelectorAll("details[open]"), place);
    live.innerHTML = html;
    shownAt = Date.now();
    open.forEach(function (where) {
      var details = find(where);
      if (details) { details.open = true; }
    });
    var again = find(focused);
    if (again) { again.focus(); }
  }

  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }
        return response.ok ? response.json() : null;
      })
      .then(function (data) {
        if (!data) { return; }
        document.title = (data.count ? "(" + data.count + ") " : "") + baseTitle;
        if (data.version !== version) {
          version = data.version;
          swap(data.html);
        }
      })
      .catch(function () { /* the next poll tries again */ });
  }
  refresh();
  window.setInterval(refresh, seconds * 1000);
  window.setInterval(tick, 1000);
})();
