/* thermal-explain report: sort, filter and page the table of a report, in plain JavaScript.
 *
 * The table is complete without this script. With it, the page's head marks <html> with
 * the class "js" so that rows stay out of layout (report.css) until a page of them is shown,
 * and only the shown rows load their thumbnails (data-src), so thousands of rows open fast. Filters are the controls of form#filters:
 * data-match="key" keeps rows whose data-key equals the value, data-min / data-max compare
 * numbers, data-search finds text. Headers with data-sort sort by their cells' data-v
 * (else their text). The state lives in the URL fragment, e.g.
 * report.html#result=no&sort=confidence&dir=desc, so a view can be bookmarked or shared.
 */
(function () {
  "use strict";
  var table = document.querySelector("table[data-rows]");
  if (!table) return;
  document.documentElement.classList.add("js");
  var body = table.tBodies[0];
  var original = Array.prototype.slice.call(body.rows);
  var form = document.getElementById("filters");
  var pager = document.getElementById("pager");
  var count = document.getElementById("count");
  var perPage = pager ? pager.querySelector("[data-per-page]") : null;
  var state = { sort: "", dir: "asc", page: 1, per: 100 };
  var order = original;
  var orderKey = "";

  function controls() {
    return form ? Array.prototype.slice.call(form.querySelectorAll("[name]")) : [];
  }

  function readFragment() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    controls().forEach(function (control) {
      var value = params.get(control.name);
      control.value = value === null ? "" : value;
      if (control.tagName === "SELECT" && control.value !== (value || "")) control.value = "";
    });
    state.sort = params.get("sort") || "";
    state.dir = params.get("dir") === "desc" ? "desc" : "asc";
    state.page = Math.max(1, parseInt(params.get("page"), 10) || 1);
    var per = params.get("per");
    state.per = per === null ? 100 : Math.max(0, parseInt(per, 10) || 0);
    if (perPage) perPage.value = String(state.per);
  }

  function writeFragment() {
    var params = new URLSearchParams();
    controls().forEach(function (control) {
      if (control.value !== "") params.set(control.name, control.value);
    });
    if (state.sort) {
      params.set("sort", state.sort);
      params.set("dir", state.dir);
    }
    if (state.page > 1) params.set("page", String(state.page));
    if (state.per !== 100) params.set("per", String(state.per));
    var fragment = params.toString();
    var url = location.href.split("#")[0] + (fragment ? "#" + fragment : "");
    try {
      history.replaceState(null, "", url);
    } catch (error) {
      /* some browsers refuse replaceState on file:// pages; the view still works */
    }
  }

  function rowTest() {
    var tests = [];
    controls().forEach(function (control) {
      var value = control.value.trim();
      if (value === "") return;
      var data = control.dataset;
      if (data.match) {
        tests.push(function (row) { return (row.dataset[data.match] || "") === value; });
      } else if (data.min || data.max) {
        var limit = parseFloat(value);
        if (isNaN(limit)) return;
        var key = data.min || data.max;
        var below = !!data.min;
        tests.push(function (row) {
          var number = parseFloat(row.dataset[key]);
          if (isNaN(number)) return false;
          return below ? number >= limit : number <= limit;
        });
      } else if (data.search) {
        var needle = value.toLowerCase();
        tests.push(function (row) {
          return (row.dataset[data.search] || "").toLowerCase().indexOf(needle) >= 0;
        });
      }
    });
    return function (row) {
      for (var i = 0; i < tests.length; i++) if (!tests[i](row)) return false;
      return true;
    };
  }

  function sortedRows() {
    var key = state.sort + "/" + state.dir;
    if (key === orderKey) return order;
    orderKey = key;
    var header = state.sort ? table.querySelector('th[data-key="' + state.sort + '"]') : null;
    if (!header) {
      order = original;
      return order;
    }
    var column = header.cellIndex;
    var numeric = header.dataset.sort === "number";
    var sign = state.dir === "desc" ? -1 : 1;
    var keyed = original.map(function (row, index) {
      var cell = row.cells[column];
      var text = cell ? (cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent.trim()) : "";
      var value = numeric ? parseFloat(text) : text.toLowerCase();
      var missing = numeric ? isNaN(value) : text === "" || text === "–";
      return { row: row, index: index, value: value, missing: missing };
    });
    keyed.sort(function (a, b) {
      if (a.missing !== b.missing) return a.missing ? 1 : -1;
      if (!a.missing && a.value !== b.value) {
        if (numeric) return sign * (a.value - b.value);
        return sign * a.value.localeCompare(b.value);
      }
      return a.index - b.index;
    });
    order = keyed.map(function (item) { return item.row; });
    return order;
  }

  function render() {
    var rows = sortedRows();
    var test = rowTest();
    var matching = rows.filter(test);
    var per = state.per > 0 ? state.per : Math.max(1, matching.length);
    var pages = Math.max(1, Math.ceil(matching.length / per));
    state.page = Math.min(state.page, pages);
    var first = (state.page - 1) * per;
    var shown = new Set(matching.slice(first, first + per));
    var fragment = document.createDocumentFragment();
    rows.forEach(function (row) {
      var visible = shown.has(row);
      row.hidden = !visible;
      row.classList.toggle("shown", visible);
      fragment.appendChild(row);
    });
    body.appendChild(fragment);
    shown.forEach(function (row) {
      var images = row.querySelectorAll("img[data-src]:not([src])");
      for (var i = 0; i < images.length; i++) images[i].src = images[i].dataset.src;
    });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      if (!cell.dataset.sort) return;
      if (cell.dataset.key === state.sort) {
        cell.setAttribute("aria-sort", state.dir === "desc" ? "descending" : "ascending");
      } else {
        cell.removeAttribute("aria-sort");
      }
    });
    var total = original.length;
    var range = matching.length
      ? "showing " + (first + 1) + "–" + Math.min(first + per, matching.length)
      : "none shown";
    if (count) count.textContent = matching.length + " of " + total + " images match; " + range;
    if (pager) {
      pager.querySelector("[data-page-label]").textContent = "page " + state.page + " of " + pages;
      pager.querySelector('[data-page="previous"]').disabled = state.page <= 1;
      pager.querySelector('[data-page="next"]').disabled = state.page >= pages;
    }
    table.dataset.shown = String(shown.size);
    table.dataset.matching = String(matching.length);
  }

  function update() {
    render();
    writeFragment();
  }

  if (form) {
    form.hidden = false;
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    form.addEventListener("input", function () { state.page = 1; update(); });
    form.addEventListener("change", function () { state.page = 1; update(); });
    form.addEventListener("reset", function () {
      setTimeout(function () { state.page = 1; state.sort = ""; update(); }, 0);
    });
  }
  if (pager) {
    pager.hidden = false;
    pager.addEventListener("click", function (event) {
      var target = event.target.closest("[data-page]");
      if (!target) return;
      state.page += target.dataset.page === "next" ? 1 : -1;
      update();
      table.scrollIntoView({ block: "start" });
    });
    if (perPage) {
      perPage.addEventListener("change", function () {
        state.per = parseInt(perPage.value, 10) || 0;
        state.page = 1;
        update();
      });
    }
  }
  function sortBy(header) {
    if (state.sort === header.dataset.key) {
      state.dir = state.dir === "asc" ? "desc" : "asc";
    } else {
      state.sort = header.dataset.key;
      state.dir = header.dataset.sort === "number" ? "desc" : "asc";
    }
    state.page = 1;
    update();
  }
  Array.prototype.forEach.call(table.querySelectorAll("th[data-sort]"), function (header) {
    header.tabIndex = 0;
    header.title = (header.title ? header.title + "; " : "") + "click to sort";
  });
  table.tHead.addEventListener("click", function (event) {
    var header = event.target.closest("th[data-sort]");
    if (header) sortBy(header);
  });
  table.tHead.addEventListener("keydown", function (event) {
    var header = event.target.closest("th[data-sort]");
    if (header && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      sortBy(header);
    }
  });
  window.addEventListener("hashchange", function () { readFragment(); render(); });

  readFragment();
  render();
  document.documentElement.dataset.readyMs = String(Math.round(performance.now()));
})();
