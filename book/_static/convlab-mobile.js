// The sidebar toggles of the page header work at every width.
//
// The header holds two buttons of each kind: pydata-sphinx-theme's own
// `.primary-toggle` / `.secondary-toggle`, which sphinx-book-theme hides, and
// the book theme's visible ones. Both themes bind their click handlers to the
// first button of each kind (document.querySelector), the hidden one, so the
// visible buttons did nothing: no sidebar on a phone, and no way to hide the
// sidebar on a wide screen. A click on any other toggle is passed on to the
// first one, which then does what the themes meant (open the sidebar as a
// dialog on a narrow screen, show or hide it on a wide one).
(function () {
  "use strict";

  function forwardClicks(selector) {
    var toggles = document.querySelectorAll(selector);
    var bound = toggles[0];
    Array.prototype.slice.call(toggles, 1).forEach(function (toggle) {
      toggle.addEventListener("click", function (event) {
        event.preventDefault();
        event.stopPropagation();
        bound.click();
      });
    });
  }

  function init() {
    forwardClicks(".primary-toggle");
    forwardClicks(".secondary-toggle");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
