// status.js keeps the peerload status page live: every 2 s it refetches
// the page's live part (/status/live with the page's own query) and swaps
// it in, so the state, charts and events move without a reload. Sorting
// and filtering change the query in place and refetch at once. Without
// JavaScript the page is the same, refreshed by a meta refresh.
(function () {
  "use strict";
  var period = 2000;
  var live = document.getElementById("live");
  var conn = document.getElementById("conn");
  var form = document.getElementById("filter");
  if (!live) {
    return;
  }
  var timer = null;
  var inflight = null;

  function setConn(ok, text) {
    conn.textContent = text;
    conn.className = "conn " + (ok ? "live" : "down");
  }

  function schedule(ms) {
    clearTimeout(timer);
    timer = setTimeout(refresh, ms);
  }

  function refresh() {
    if (inflight) {
      inflight.abort();
    }
    var ctl = new AbortController();
    inflight = ctl;
    fetch("/status/live" + location.search, { cache: "no-store", signal: ctl.signal })
      .then(function (resp) {
        if (!resp.ok) {
          throw new Error("HTTP " + resp.status);
        }
        return resp.text();
      })
      .then(function (html) {
        // Keep the event list where the reader scrolled it.
        var events = document.getElementById("events");
        var scrolled = events ? events.scrollTop : 0;
        live.innerHTML = html;
        events = document.getElementById("events");
        if (events) {
          events.scrollTop = scrolled;
        }
        setConn(true, "live");
        schedule(period);
      })
      .catch(function (err) {
        if (err.name === "AbortError") {
          return;
        }
        setConn(false, "agent unreachable, retrying");
        schedule(period);
      });
  }

  // go applies a new query (from a sort link or the filter form) without
  // reloading the page; the address bar keeps it for bookmarks.
  function go(search) {
    history.replaceState(null, "", search === "" ? location.pathname : search);
    refresh();
  }

  live.addEventListener("click", function (ev) {
    var a = ev.target.closest("th a");
    if (!a || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey) {
      return;
    }
    ev.preventDefault();
    go(new URL(a.href).search);
  });

  if (form) {
    var query = function () {
      var params = new URLSearchParams(new FormData(form));
      var keep = new URLSearchParams(location.search);
      ["sort", "desc"].forEach(function (k) {
        if (keep.has(k)) {
          params.set(k, keep.get(k));
        }
      });
      params.forEach(function (v, k) {
        if (v === "") {
          params.delete(k);
        }
      });
      var s = params.toString();
      return s === "" ? "" : "?" + s;
    };
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      go(query());
    });
    form.addEventListener("change", function () { go(query()); });
    form.addEventListener("input", function () { go(query()); });
  }

  setConn(true, "live");
  schedule(period);
})();
