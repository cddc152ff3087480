// The page view: every line of a page beside its image, editable in place, and the line
// boxes editable on the image (move, resize, split, merge, add, delete), with the mouse or
// with the keyboard alone.
(() => {
  "use strict";
  const view = document.getElementById("page-view");
  if (!view) return;
  const svg = document.getElementById("page-boxes");
  const status = document.getElementById("seg-status");
  const { post, localDrafts, composing, mac, isShortcut, DRAFT_DELAY_MS } = window.ocrreview;
  const drafts = localDrafts(view.dataset.user);
  let selected = null;  // the <li> of the selected line
  let lastClick = null; // where on the page the reviewer last clicked, in page pixels
  let nudged = null;    // a box moved or resized with keys and not yet sent
  let moving = Promise.resolve();  // the keyboard's last move, on its way to the server
  let adding = false;
  let discarding = null; // the last "Keep theirs" dropping the server's draft

  const rowOf = (id) => document.getElementById(`line-${id}`);
  const boxOf = (id) => svg.querySelector(`g[data-line-id="${id}"]`);
  const bboxOf = (li) => li.dataset.bbox.split(",").map(Number);  // as the server has it

  function say(message, kind = "") {
    status.textContent = message;
    status.className = `notice ${kind}`;
  }

  function toPage(event) {
    const point = svg.createSVGPoint();
    point.x = event.clientX;
    point.y = event.clientY;
    return point.matrixTransform(svg.getScreenCTM().inverse());
  }

  function select(li) {
    if (nudged && nudged.li !== li) sendNudged();
    selected?.classList.remove("selected");
    if (selected) boxOf(selected.dataset.lineId)?.classList.remove("selected");
    selected = li;
    if (!li) return;
    li.classList.add("selected");
    boxOf(li.dataset.lineId)?.classList.add("selected");
  }

  function wireRow(li) {
    const input = li.querySelector(".pl-text");
    const local = drafts.read(li.dataset.lineId);
    if (local && local.text !== input.value) {
      input.value = local.text;
      li.dataset.version = local.version;
      li.querySelector(".pl-msg").textContent = "Unsaved text restored; Enter saves it.";
    }
    input.addEventListener("focus", () => {
      // Add mode's Enter adds under the line it was entered from; another row's saves it.
      if (adding && selected && selected !== li) run("add");
      select(li);
    });
    input.addEventListener("input", () => {
      drafts.write(li.dataset.lineId, {
        text: input.value, version: Number(li.dataset.version), hypothesis: "", at: Date.now(),
      });
      clearTimeout(li.draftTimer);
      li.draftTimer = setTimeout(() => sendDraft(li), DRAFT_DELAY_MS);
    });
    input.addEventListener("keydown", (e) => {
      if (composing(e)) return;
      // From here on the caret, not an earlier click on the image, says where to split.
      if (!isShortcut(e)) lastClick = null;
      if (e.key === "Enter") { e.preventDefault(); saveRow(li); }
      if (e.key === "ArrowDown" && !e.altKey) { e.preventDefault(); moveFocus(li, 1); }
      if (e.key === "ArrowUp" && !e.altKey) { e.preventDefault(); moveFocus(li, -1); }
    });
  }

  // Typing goes to the server too, as the editor's does: a colleague's merge or delete of the
  // line then waits for it, and a model's reading does not accept the line from under it.
  // One draft on the way per row, so that the older of two cannot arrive last.
  function sendDraft(li) {
    li.draftSent = (li.draftSent || Promise.resolve()).then(async () => {
      const input = li.querySelector(".pl-text");
      const text = input.value;
      if (!li.isConnected || text === (li.serverDraft ?? input.dataset.saved)) return;
      try {
        const response = await post(li.dataset.draftUrl, {
          text, base_version: li.dataset.version, hypothesis: "",
        });
        if (response.ok && (await response.json()).saved) li.serverDraft = text;
      } catch { /* kept in this browser; the next keystroke tries again */ }
    });
  }

  function moveFocus(li, step) {
    const rows = [...document.querySelectorAll(".page-line")];
    rows[rows.indexOf(li) + step]?.querySelector(".pl-text").focus();
  }

  async function saveRow(li, conflictVersion = null) {
    const input = li.querySelector(".pl-text");
    const msg = li.querySelector(".pl-msg");
    // Keys typed while the save is on its way would go with the row the answer replaces.
    if (input.readOnly) return;
    input.readOnly = true;
    clearTimeout(li.draftTimer);
    let response;
    let answer;
    try {
      // The row's box moved from the keyboard goes first: its new version is the one saved on.
      await sendNudged();
      response = await post(li.dataset.saveUrl, {
        text: input.value,
        expected_version: conflictVersion ?? li.dataset.version,
        stay: "1",
        action: "save",
      });
      // Read whole before the row takes keys again: keys typed meanwhile would be stored
      // against the version this answer replaces.
      answer = await response.text();
    } catch {
      msg.textContent = "Not saved: the server cannot be reached. Your text is kept.";
      return;
    } finally {
      input.readOnly = false;
    }
    if (response.status === 409) {
      const holder = document.createElement("div");
      holder.innerHTML = answer;
      const conflict = holder.querySelector(".conflict");
      msg.replaceChildren(conflict);
      conflict.querySelector("[data-choose=mine]").addEventListener("click", () => {
        saveRow(li, conflict.dataset.version);
      });
      conflict.querySelector("[data-choose=theirs]").addEventListener("click", () => {
        drafts.drop(li.dataset.lineId);
        // And the editor's draft of this line on the server: opened there, or merged into,
        // the line would bring back the text just given up.
        discarding = post(li.dataset.discardUrl, {}).catch(() => { /* nothing more to lose */ });
        input.value = conflict.dataset.theirs;
        input.dataset.saved = conflict.dataset.theirs;
        li.dataset.version = conflict.dataset.version;
        msg.textContent = "";
        // The button pressed went with the conflict, and the focus would have dropped to the page.
        input.focus();
      });
      return;
    }
    if (!response.ok) {
      let error = response.status;
      try { error = JSON.parse(answer).error || error; } catch { /* not JSON */ }
      msg.textContent = `Not saved: ${error}`;
      return;
    }
    drafts.drop(li.dataset.lineId);
    const holder = document.createElement("div");
    holder.innerHTML = answer.trim();
    const fresh = holder.firstElementChild;
    // A reviewer who went on to another row meanwhile keeps typing there.
    const stayed = li.contains(document.activeElement);
    li.replaceWith(fresh);
    wireRow(fresh);
    const box = boxOf(fresh.dataset.lineId);
    box?.setAttribute("class", `box ${[...fresh.classList].find((c) => c.startsWith("band-"))}`);
    if (stayed) moveFocus(fresh, 1);
    if (document.activeElement === document.body) fresh.querySelector(".pl-text").focus();
  }

  // A segmentation edit the server refused: why, and on a conflict the page as it now is.
  function refused(response, data) {
    say(data.error || `Refused (${response.status}).`, "error");
    if (response.status === 409) setTimeout(() => window.location.reload(), 1500);
  }

  async function segmentation(url, fields, focusAfter = null) {
    say("Saving…");
    await sendNudged();  // a box moved from the keyboard is kept before the page reloads
    await discarding;  // a merge right after "Keep theirs" must not find the draft still there
    let response;
    try {
      response = await post(url, fields);
    } catch {
      say("The server cannot be reached; nothing was changed.", "error");
      return;
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      refused(response, data);
      return;
    }
    if (data.line) window.location.hash = `line-${data.line}`;
    else if (focusAfter) window.location.hash = focusAfter;
    window.location.reload();
  }

  async function run(action) {
    if (action === "add") {
      adding = !adding;
      view.classList.toggle("adding", adding);
      say(adding
        ? "Drag a box on the image to add a line, or press Enter to add one under the selected line."
        : "");
      return;
    }
    if (!selected) { say("Select a line first: click its box or its text.", "warn"); return; }
    const { lineId } = selected.dataset;  // the line the key was pressed on, wherever focus goes
    await sendNudged();  // the box as the reviewer left it, and its version
    const li = rowOf(lineId);
    const version = li.dataset.version;
    if (action === "split") {
      segmentation(li.dataset.splitUrl, { x: splitAt(li), expected_version: version });
    } else if (action === "merge") {
      // The next line goes, and with it what was typed into it and not saved.
      const next = li.nextElementSibling?.querySelector(".pl-text");
      if (next && next.value !== next.dataset.saved) {
        say("The next line has unsaved text: press Enter in it to save it, then merge.", "warn");
        return;
      }
      segmentation(li.dataset.mergeUrl, { expected_version: version });
    } else if (action === "delete") {
      // The page comes back on the line after it (or before it, at the end), not the first.
      const neighbour = li.nextElementSibling ?? li.previousElementSibling;
      segmentation(li.dataset.deleteUrl, { expected_version: version }, neighbour?.id);
    }
  }

  // Where a split cuts the box: at a click on it, else at the caret (the text is cut there
  // too, so its share of the text places the cut), else in the middle.
  function splitAt(li) {
    const [x0, , x1] = bboxOf(li);
    if (lastClick && lastClick.x > x0 && lastClick.x < x1) return Math.round(lastClick.x);
    const input = li.querySelector(".pl-text");
    const caret = input.selectionStart;
    const share = caret > 0 && caret < input.value.length ? caret / input.value.length : 0.5;
    return Math.round(x0 + (x1 - x0) * share);
  }

  // The keyboard's way to move and resize a box: each Alt+arrow moves the selected box by an
  // eighth of its height, Alt+Shift+arrow moves its bottom right corner; the box is sent once
  // the reviewer pauses, as one move, and Escape puts it back.
  const NUDGE_PAUSE_MS = 700;
  const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

  function drawBox(li, [x0, y0, x1, y1]) {
    const g = boxOf(li.dataset.lineId);
    if (!g) return;
    const [left, top, right, bottom] = [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)];
    const body = g.querySelector("rect:not(.handle)");
    body.setAttribute("x", left);
    body.setAttribute("y", top);
    body.setAttribute("width", right - left);
    body.setAttribute("height", bottom - top);
    g.querySelector(".handle")?.setAttribute("x", right - 12);
    g.querySelector(".handle")?.setAttribute("y", bottom - 12);
    g.querySelector("text")?.setAttribute("x", left - 4);
    g.querySelector("text")?.setAttribute("y", top + 16);
  }

  function nudge(li, [dx, dy], resizing) {
    if (!nudged) {
      const box = bboxOf(li);
      nudged = { li, box, step: Math.max(1, Math.round((box[3] - box[1]) / 8)), timer: null };
    }
    const { box, step } = nudged;
    const [width, height] = [Number(svg.viewBox.baseVal.width), Number(svg.viewBox.baseVal.height)];
    if (resizing) {
      box[2] = Math.min(width, Math.max(box[0] + step, box[2] + dx * step));
      box[3] = Math.min(height, Math.max(box[1] + step, box[3] + dy * step));
    } else {
      // The whole box stays on the page, so a move at its edge stops there, not shrinks it.
      const mx = Math.min(width - box[2], Math.max(-box[0], dx * step));
      const my = Math.min(height - box[3], Math.max(-box[1], dy * step));
      box[0] += mx; box[2] += mx; box[1] += my; box[3] += my;
    }
    drawBox(li, box);
    say(`Line box ${box.join(", ")} (left, top, right, bottom): saved when you pause; Escape puts it back.`);
    clearTimeout(nudged.timer);
    nudged.timer = setTimeout(sendNudged, NUDGE_PAUSE_MS);
  }

  // Sends the pending move, if any; resolves once every move sent is answered.
  function sendNudged() {
    if (nudged) {
      const { li, box, timer } = nudged;
      clearTimeout(timer);
      nudged = null;
      // A move that fails says so itself; the next ones, and the saves waiting, still go.
      moving = moving.then(() => moveInPlace(li.dataset.lineId, box)).catch(() => {});
    }
    return moving;
  }

  // A move from the keyboard keeps the page as it is, focus and unsaved typing included: the
  // row takes the box and version the server answers (a save may have replaced the row).
  async function moveInPlace(lineId, [x0, y0, x1, y1]) {
    const row = rowOf(lineId);
    let response;
    try {
      response = await post(row.dataset.moveUrl, {
        x0, y0, x1, y1, expected_version: row.dataset.version,
      });
    } catch {
      drawBox(row, bboxOf(row));
      say("The server cannot be reached; the box is back where it was.", "error");
      return;
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      drawBox(row, bboxOf(row));
      refused(response, data);
      return;
    }
    const current = rowOf(lineId);
    // Text typed and kept in this browser was typed over the version the move replaced, and
    // the move kept the text: restored after a reload, it must not be a conflict with it.
    const local = drafts.read(lineId);
    if (local && String(local.version) === current.dataset.version) {
      drafts.write(lineId, { ...local, version: data.version });
    }
    current.dataset.bbox = data.bbox.join(",");
    current.dataset.version = data.version;
    drawBox(current, data.bbox);
    say("Box saved.");
  }

  function dropNudged() {
    if (!nudged) return false;
    clearTimeout(nudged.timer);
    drawBox(nudged.li, bboxOf(nudged.li));
    nudged = null;
    say("The box is back where it was.");
    return true;
  }

  // Add mode from the keyboard: Enter puts a box of the selected line's size right under it,
  // to be moved and resized with the arrows.
  function addUnder(li) {
    adding = false;
    view.classList.remove("adding");
    const [x0, y0, x1, y1] = bboxOf(li);
    const height = Number(svg.viewBox.baseVal.height);
    const top = Math.min(y1, height - (y1 - y0));
    segmentation(view.dataset.addUrl, { x0, y0: top, x1, y1: top + (y1 - y0) });
  }

  document.querySelectorAll("[data-seg]").forEach((button) => {
    button.addEventListener("click", () => run(button.dataset.seg));
  });
  // A Mac's keyboard has Backspace where others have Delete, which Control+Option leaves free.
  const keys = { KeyS: "split", KeyJ: "merge", Delete: "delete", KeyA: "add" };
  if (mac) keys.Backspace = "delete";
  document.addEventListener("keydown", (e) => {
    // AltGr arrives as Ctrl+Alt on Windows (ś, ą on a Polish keyboard): letters, as
    // Alt+Backspace (delete a word) is editing.
    if (!isShortcut(e) || (!mac && e.getModifierState("AltGraph")) || composing(e)) return;
    const typesACharacter = e.key.length === 1 && e.code !== `Key${e.key.toUpperCase()}`;
    if (!mac && e.target.classList?.contains("pl-text") && typesACharacter) return;
    // A conflict's buttons name these keys, as in the editor; they answer the focused row's.
    const choice = { KeyM: "mine", KeyT: "theirs" }[e.code];
    const chosen = choice && e.target.closest?.(".page-line")?.querySelector(`[data-choose=${choice}]`);
    if (chosen) { e.preventDefault(); chosen.click(); return; }
    const action = keys[e.code];
    if (action) { e.preventDefault(); run(action); return; }
    if (ARROWS[e.key] && selected) { e.preventDefault(); nudge(selected, ARROWS[e.key], e.shiftKey); }
  });
  // Capturing, so that these keys answer the pending box before a row or a button reads them.
  document.addEventListener("keydown", (e) => {
    if (composing(e)) return;
    if (e.key === "Escape" && (nudged || adding)) {
      e.preventDefault();
      if (!dropNudged()) run("add");  // leaves add mode
    } else if (e.key === "Enter" && adding && selected) {
      e.preventDefault();
      e.stopPropagation();
      addUnder(selected);
    }
  }, true);

  // Dragging on the image: a box body moves the box, its corner handle resizes it, and in
  // "add" mode a drag on empty paper draws a new line box.
  svg.addEventListener("pointerdown", (e) => {
    const start = toPage(e);
    lastClick = start;
    const g = e.target.closest("g.box");
    if (adding) {
      const ghost = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      ghost.setAttribute("class", "ghost");
      svg.appendChild(ghost);
      drag(e, (p) => {
        ghost.setAttribute("x", Math.min(start.x, p.x));
        ghost.setAttribute("y", Math.min(start.y, p.y));
        ghost.setAttribute("width", Math.abs(p.x - start.x));
        ghost.setAttribute("height", Math.abs(p.y - start.y));
      }, (p) => {
        adding = false;
        view.classList.remove("adding");
        segmentation(view.dataset.addUrl, {
          x0: Math.round(start.x), y0: Math.round(start.y), x1: Math.round(p.x), y1: Math.round(p.y),
        });
      });
      return;
    }
    if (!g) return;
    const li = rowOf(g.dataset.lineId);
    select(li);
    li.querySelector(".pl-text").focus({ preventScroll: true });
    const resizing = e.target.classList.contains("handle");
    const [x0, y0, x1, y1] = bboxOf(li);
    let box = [x0, y0, x1, y1];
    drag(e, (p) => {
      const dx = p.x - start.x;
      const dy = p.y - start.y;
      box = resizing ? [x0, y0, x1 + dx, y1 + dy] : [x0 + dx, y0 + dy, x1 + dx, y1 + dy];
      drawBox(li, box);
    }, async (p) => {
      if (Math.hypot(p.x - start.x, p.y - start.y) < 3) return;  // a click, not a drag
      const [a, b, c, d] = box.map(Math.round);
      await sendNudged();  // the keys' move of this box first, and the version it made
      segmentation(li.dataset.moveUrl, {
        x0: a, y0: b, x1: c, y1: d, expected_version: rowOf(li.dataset.lineId).dataset.version,
      });
    });
  });

  function drag(e, onMove, onEnd) {
    e.preventDefault();
    svg.setPointerCapture(e.pointerId);
    const move = (m) => onMove(toPage(m));
    svg.addEventListener("pointermove", move);
    svg.addEventListener("pointerup", (u) => {
      svg.removeEventListener("pointermove", move);
      onEnd(toPage(u));
    }, { once: true });
  }

  document.querySelectorAll(".page-line").forEach(wireRow);
  const target = window.location.hash && document.querySelector(window.location.hash);
  const first = target || document.querySelector(".page-line");
  if (first) {
    first.querySelector(".pl-text").focus();
    first.scrollIntoView({ block: "center" });
  }
})();
