// The page view: every line of a page beside its image, editable in place, and the line
// boxes editable on the image (move, resize, split, merge, add, delete).
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
  let adding = false;
  let discarding = null; // the last "Keep theirs" dropping the server's draft

  const rowOf = (id) => document.getElementById(`line-${id}`);
  const boxOf = (id) => svg.querySelector(`g[data-line-id="${id}"]`);

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
    input.addEventListener("focus", () => select(li));
    input.addEventListener("input", () => {
      drafts.write(li.dataset.lineId, {
        text: input.value, version: Number(li.dataset.version), hypothesis: "", at: Date.now(),
      });
      clearTimeout(li.draftTimer);
      li.draftTimer = setTimeout(() => sendDraft(li), DRAFT_DELAY_MS);
    });
    input.addEventListener("keydown", (e) => {
      if (composing(e)) return;
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

  async function saveRow(li, version = li.dataset.version) {
    const input = li.querySelector(".pl-text");
    const msg = li.querySelector(".pl-msg");
    // Keys typed while the save is on its way would go with the row the answer replaces.
    if (input.readOnly) return;
    input.readOnly = true;
    clearTimeout(li.draftTimer);
    let response;
    let answer;
    try {
      response = await post(li.dataset.saveUrl, {
        text: input.value, expected_version: version, stay: "1", action: "save",
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

  async function segmentation(url, fields) {
    say("Saving…");
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
      say(data.error || `Refused (${response.status}).`, "error");
      if (response.status === 409) setTimeout(() => window.location.reload(), 1500);
      return;
    }
    if (data.line) window.location.hash = `line-${data.line}`;
    window.location.reload();
  }

  function run(action) {
    if (action === "add") {
      adding = !adding;
      view.classList.toggle("adding", adding);
      say(adding ? "Drag a box on the image to add a line." : "");
      return;
    }
    if (!selected) { say("Select a line first: click its box or its text.", "warn"); return; }
    const version = selected.dataset.version;
    if (action === "split") {
      const [x0, , x1] = selected.dataset.bbox.split(",").map(Number);
      const x = lastClick && lastClick.x > x0 && lastClick.x < x1 ? lastClick.x : (x0 + x1) / 2;
      segmentation(selected.dataset.splitUrl, { x: Math.round(x), expected_version: version });
    } else if (action === "merge") {
      // The next line goes, and with it what was typed into it and not saved.
      const next = selected.nextElementSibling?.querySelector(".pl-text");
      if (next && next.value !== next.dataset.saved) {
        say("The next line has unsaved text: press Enter in it to save it, then merge.", "warn");
        return;
      }
      segmentation(selected.dataset.mergeUrl, { expected_version: version });
    } else if (action === "delete") {
      segmentation(selected.dataset.deleteUrl, { expected_version: version });
    }
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
    if (action) { e.preventDefault(); run(action); }
  });

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
    const body = g.querySelector("rect:not(.handle)");
    const [x0, y0, x1, y1] = li.dataset.bbox.split(",").map(Number);
    let box = [x0, y0, x1, y1];
    drag(e, (p) => {
      const dx = p.x - start.x;
      const dy = p.y - start.y;
      box = resizing ? [x0, y0, x1 + dx, y1 + dy] : [x0 + dx, y0 + dy, x1 + dx, y1 + dy];
      body.setAttribute("x", Math.min(box[0], box[2]));
      body.setAttribute("y", Math.min(box[1], box[3]));
      body.setAttribute("width", Math.abs(box[2] - box[0]));
      body.setAttribute("height", Math.abs(box[3] - box[1]));
    }, (p) => {
      if (Math.hypot(p.x - start.x, p.y - start.y) < 3) return;  // a click, not a drag
      const [a, b, c, d] = box.map(Math.round);
      segmentation(li.dataset.moveUrl, {
        x0: a, y0: b, x1: c, y1: d, expected_version: li.dataset.version,
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
