/* Replay strip: drag along the state timeline to move the replay cursor (dashboard/pages/replay.py).

   The strip's axis draws every hour an hour wide (dashboard.figures._Clock) and spans the replayed
   range exactly, so the pointer's position on it, less the range's start, is the cursor's seconds
   into the range: no time zone is needed here. While the pointer moves, the strip's cursor line
   follows it; on release (or a click) the slider's value is set (dash_clientside.set_props) and
   the page is drawn at that moment. A touch is left to plotly: a tap is the strip's clickData. */
(function () {
  "use strict";
  var STRIP = "replay-strip", CURSOR = "replay-cursor", MOVED_PX = 6;
  var drag = null;

  function plot(target) {
    var strip = target && target.closest ? target.closest("#" + STRIP) : null;
    var gd = strip ? strip.querySelector(".js-plotly-plot") : null;
    return gd && gd._fullLayout && gd._fullLayout.xaxis ? gd : null;
  }

  function seconds(gd, clientX) {
    var xa = gd._fullLayout.xaxis;
    var px = clientX - gd.getBoundingClientRect().left - xa._offset;
    var r0 = xa.r2l(xa.range[0]), r1 = xa.r2l(xa.range[1]);
    var ms = Math.min(Math.max(xa.p2l(px), r0), r1);
    return {s: Math.round((ms - r0) / 1000), x: xa.l2r(ms)};
  }

  function follow(gd, x) {
    var shapes = (gd.layout && gd.layout.shapes) || [];
    if (shapes.length && window.Plotly) {
      window.Plotly.relayout(gd, {"shapes[0].x0": x, "shapes[0].x1": x});
    }
  }

  // the mouse is handled here, press to release: plotly never sees the press (its click would report
  // the point under the press, after a drag too); a touch goes to plotly, whose tap is the strip's clickData
  document.addEventListener("mousedown", function (e) {
    var gd = plot(e.target);
    if (!gd || e.button !== 0 || !e.target.closest(".nsewdrag")) {
      return;
    }
    e.stopPropagation();
    e.preventDefault();
    drag = {gd: gd, x0: e.clientX, moved: false};
  }, true);

  window.addEventListener("mousemove", function (e) {
    if (!drag) {
      return;
    }
    if (!drag.moved && Math.abs(e.clientX - drag.x0) < MOVED_PX) {
      return;
    }
    drag.moved = true;
    follow(drag.gd, seconds(drag.gd, e.clientX).x);
  }, true);

  window.addEventListener("mouseup", function (e) {
    var d = drag;
    drag = null;
    if (!d || !window.dash_clientside || !window.dash_clientside.set_props) {
      return;
    }
    // a click (no move) or a drag's release: the cursor goes to the time under the pointer
    window.dash_clientside.set_props(CURSOR, {value: seconds(d.gd, e.clientX).s});
  }, true);
})();
