// The page view: every line of a page beside its image, editable in place, and the line
// boxes editable on the image (move, resize, split, merge, add, delete), with the mouse or
// with the keyboard alone.
(() => {
  "use strict";
  const view = document.getElementById("page-view");
  if (!view) return;
  const svg = document.getElementById("page-boxes");
  const status = document.getElementById("seg-status");
  const {
    post, beacon, unsavedDraft, localDrafts, composing, mac, isShortcut, DRAFT_DELAY_MS, dropWarning,
  } = window.ocrreview;
  const drafts = localDrafts(view.dataset.user);
  let selected = null;  // the <li> of the selected line
  let lastClick = null; // where on the page the reviewer last clicked, in page pixels
  let nudged = null;    // a box moved or resized with keys and not yet sent
  let moving = Promise.resolve();  // the keyboard's last move, on its way to the server
  let adding = false;
  let discarding = null; // the last "Keep theirs" dropping the server's draft
  let splitting = null;  // the cut shown on the image and not yet made
  let ordering = Promise.resolve();  // the last change of reading order, on its way
  let lastSort = null;   // the event of this page's sort made here, for its undo
  const help = document.getElementById("help");
  // A final document's page is shown, its rows read-only and its edit buttons gone: the keys
  // move between rows, and nothing sends a change the server would refuse.
  const final = "final" in view.dataset;

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
    if (splitting && splitting.li !== li) cancelSplit();
    selected?.classList.remove("selected");
    if (selected) boxOf(selected.dataset.lineId)?.classList.remove("selected");
    selected = li;
    if (!li) return;
    li.classList.add("selected");
    boxOf(li.dataset.lineId)?.classList.add("selected");
  }

  // The reviewer's draft of a row from the server (typed in the line editor, or on another
  // computer), or null.
  const serverDraft = (li) => ("draftVersion" in li.dataset ? {
    text: li.dataset.draftText, version: Number(li.dataset.draftVersion),
    hypothesis: li.dataset.draftHypothesis || "",
    at: Number(li.dataset.draftAt), now: Number(view.dataset.serverNow),
  } : null);

  function wireRow(li) {
    const input = li.querySelector(".pl-text");
    const server = serverDraft(li);
    if (server) li.serverDraft = server.text;
    const unsaved = unsavedDraft(drafts.read(li.dataset.lineId), server);
    // Kept for when an admin reopens the document, not shown over its text.
    if (unsaved && unsaved.text !== input.value && !final) {
      // Typed over another version (the line was saved, split or read again since), it would
      // be saved over that version's text unseen: the person chooses.
      if (String(unsaved.version) === li.dataset.version) {
        input.value = unsaved.text;
        li.hypothesis = unsaved.hypothesis;
        li.querySelector(".pl-msg").textContent = "Unsaved text restored; Enter saves it.";
      } else {
        offerUnsaved(li, unsaved);
      }
    }
    // The focused row shows its whole text, wrapped; the others one line of it.
    const fit = () => {
      input.style.height = "";
      if (document.activeElement === input) {
        input.style.height = `${input.scrollHeight + input.offsetHeight - input.clientHeight}px`;
      }
    };
    input.addEventListener("focus", () => {
      // Add mode's Enter adds under the line it was entered from; another row's saves it.
      if (adding && selected && selected !== li) run("add");
      if ("heldBy" in li.dataset) renewLeases();  // perhaps the colleague is done with it
      select(li);
      fit();
    });
    input.addEventListener("blur", fit);
    // A link to a line (#line-N, as the line editor's Page view) has the browser move the
    // focus to its row once the page is parsed, after this script focused the row's text; the
    // row took no focus, which then fell to the page, out of every row's keys.
    li.tabIndex = -1;
    li.addEventListener("focus", () => input.focus());
    input.addEventListener("input", () => {
      if (/[\r\n]/.test(input.value)) {  // pasted: a line holds no line breaks
        const caret = input.selectionStart;
        input.value = input.value.replace(/\r\n?|\n/g, " ");
        input.setSelectionRange(caret, caret);
      }
      if (splitting?.li === li) cancelSplit();  // the cut shown was of the text before
      fit();
      li.typed = true;
      li.armed = null;  // a new text needs its own warning before a second press
      drafts.keep(li.dataset.lineId, {
        text: input.value, version: Number(li.dataset.version), hypothesis: li.hypothesis || "",
        at: Date.now(),
        sent: li.serverDraft ?? null,
      }, input.dataset.saved);
      clearTimeout(li.draftTimer);
      li.draftTimer = setTimeout(() => sendDraft(li), DRAFT_DELAY_MS);
    });
    input.addEventListener("keydown", (e) => {
      if (composing(e)) return;
      // From here on the caret, not an earlier click on the image, says where to split.
      if (!isShortcut(e)) lastClick = null;
      if (e.key === "Enter") { e.preventDefault(); enter(li, e.ctrlKey || e.metaKey); }
      if (e.key === "ArrowDown" && !e.altKey) { e.preventDefault(); moveFocus(li, 1); }
      if (e.key === "ArrowUp" && !e.altKey) { e.preventDefault(); moveFocus(li, -1); }
    });
  }

  // As in the editor, Enter saves a change and Ctrl+Enter accepts the text as it was: a line
  // is never marked reviewed by an Enter that only meant to go on. Enter on a row left as it
  // was goes to the next row; Ctrl+Enter over a change asks again, as it drops the change, and
  // so does Enter over a change that empties the row or drops most of its text. li.armed: the
  // kind of press ("accept", or dropWarning's) that a second one carries out.
  function enter(li, accept) {
    const input = li.querySelector(".pl-text");
    const msg = li.querySelector(".pl-msg");
    const changed = input.value !== input.dataset.saved;
    if (!accept) {
      if (!changed) {
        moveFocus(li, 1);
        return;
      }
      const warning = dropWarning(input.dataset.saved, input.value);
      if (warning && li.armed !== warning.kind) {
        li.armed = warning.kind;
        msg.textContent = warning.message;
        return;
      }
      li.armed = null;
      saveRow(li);
      return;
    }
    if (changed && li.armed !== "accept") {
      li.armed = "accept";
      msg.textContent = "You changed the text. Ctrl+Enter again accepts the text as it was and drops your change; Enter saves your change.";
      return;
    }
    li.armed = null;
    input.value = input.dataset.saved;
    saveRow(li, null, "accept");
  }

  // Text kept in this browser over a version of the line that is gone, beside the line's
  // text now, as a save's conflict shows them: nothing is lost, and nothing saved unseen.
  function offerUnsaved(li, unsaved) {
    const input = li.querySelector(".pl-text");
    const msg = li.querySelector(".pl-msg");
    const conflict = document.createElement("div");
    conflict.className = "conflict";
    conflict.setAttribute("role", "alert");
    const heading = document.createElement("h2");
    heading.textContent = "This line changed since you typed in it";
    const note = document.createElement("p");
    note.textContent = "Your text was kept. Nothing is lost: choose which text the line keeps.";
    const both = document.createElement("div");
    both.className = "both";
    const side = (title, text, choose, label) => {
      const part = document.createElement("div");
      const h3 = document.createElement("h3");
      h3.textContent = title;
      const p = document.createElement("p");
      p.className = choose === "mine" ? "mine" : "theirs";
      if (input.lang) p.lang = input.lang;
      p.textContent = text || "(empty)";
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.choose = choose;
      if (choose === "mine") button.className = "primary";
      button.append(`${label} `);
      const kbd = document.createElement("kbd");
      kbd.textContent = choose === "mine" ? "Alt+M" : "Alt+T";
      button.append(kbd);
      part.append(h3, p, button);
      return part;
    };
    both.append(
      side("Its text now", input.value, "theirs", "Keep theirs"),
      side("Your text", unsaved.text, "mine", "Keep mine"),
    );
    conflict.append(heading, note, both);
    msg.replaceChildren(conflict);
    conflict.querySelector("[data-choose=mine]").addEventListener("click", () => {
      input.value = unsaved.text;
      li.hypothesis = unsaved.hypothesis;
      drafts.write(li.dataset.lineId, { ...unsaved, version: Number(li.dataset.version) });
      msg.textContent = "Your text is back; Enter saves it.";
      input.focus();
      sendDraft(li);
    });
    conflict.querySelector("[data-choose=theirs]").addEventListener("click", () => {
      drafts.drop(li.dataset.lineId);
      discarding = post(li.dataset.discardUrl, {}).catch(() => { /* nothing more to lose */ });
      msg.textContent = "";
      input.focus();
    });
  }

  // Text kept in this browser over `from`, the version an edit that kept the text replaced.
  function rebaseLocal(lineId, from, to) {
    const local = drafts.read(lineId);
    if (local && String(local.version) === String(from)) drafts.write(lineId, { ...local, version: to });
  }

  // Typing goes to the server too, as the editor's does: a colleague's merge or delete of the
  // line then waits for it, and a model's reading does not accept the line from under it.
  // One draft on the way per row, so that the older of two cannot arrive last.
  function sendDraft(li) {
    li.draftSent = (li.draftSent || Promise.resolve()).then(async () => {
      const input = li.querySelector(".pl-text");
      const text = input.value;
      if (!li.isConnected || text === (li.serverDraft ?? input.dataset.saved)) return;
      // Back to the line's text: the draft sent before goes, or it would hold the line as if
      // something were unsaved in it (a colleague's merge or delete refused).
      if (text === input.dataset.saved) {
        try {
          if ((await post(li.dataset.discardUrl, {})).ok) li.serverDraft = null;
        } catch { /* the next keystroke tries again */ }
        return;
      }
      try {
        const response = await post(li.dataset.draftUrl, {
          text, base_version: li.dataset.version, hypothesis: li.hypothesis || "",
        });
        if (response.ok && (await response.json()).saved) li.serverDraft = text;
      } catch { /* kept in this browser; the next keystroke tries again */ }
    });
  }

  function moveFocus(li, step) {
    const rows = [...document.querySelectorAll(".page-line")];
    rows[rows.indexOf(li) + step]?.querySelector(".pl-text").focus();
  }

  async function saveRow(li, conflictVersion = null, action = "save") {
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
      const fields = {
        text: input.value,
        expected_version: conflictVersion ?? li.dataset.version,
        stay: "1",
        action,
        // The reading a draft restored here started from (an alternative the line editor took).
        hypothesis: li.hypothesis || "",
      };
      // Past Enter's warning (a conflict's "Keep mine" comes after it), an empty text is
      // meant, or the line had none to lose.
      if (action === "save" && !input.value.trim()) fields.confirm_empty = "1";
      response = await post(li.dataset.saveUrl, fields);
      // Read whole before the row takes keys again: keys typed meanwhile would be stored
      // against the version this answer replaces.
      answer = await response.text();
    } catch {
      msg.textContent = "Not saved: the server cannot be reached. Your text is kept.";
      return;
    } finally {
      input.readOnly = "heldBy" in li.dataset;
    }
    if (response.status === 409) {
      const holder = document.createElement("div");
      holder.innerHTML = answer;
      const conflict = holder.querySelector(".conflict");
      msg.replaceChildren(conflict);
      // What an accept kept is in the input too: mine is saved as a save.
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
        li.hypothesis = null;
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

  // After it the row's copy in this browser is of a version gone: `dropped` names a line
  // whose copy went into the edit (a split) or with it (a delete); a move keeps the text, and
  // its copy is carried over to the version the move made.
  async function segmentation(url, fields, { focusAfter = null, dropped = null, moved = null } = {}) {
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
    if (dropped) drafts.drop(dropped);
    if (moved) rebaseLocal(moved, fields.expected_version, data.version);
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
      if (splitting?.li === li) makeSplit();
      else proposeSplit(li);
    } else if (action === "merge") {
      // The merge joins the saved texts: what was typed into either row and not saved would
      // go (the next line's) or come back over a version gone (this one's).
      const unsaved = [li, li.nextElementSibling].find((row) => {
        const text = row?.querySelector(".pl-text");
        return text && text.value !== text.dataset.saved;
      });
      if (unsaved) {
        const which = unsaved === li ? "This line" : "The next line";
        say(`${which} has unsaved text: press Enter in it to save it, then merge.`, "warn");
        return;
      }
      segmentation(li.dataset.mergeUrl, { expected_version: version });
    } else if (action === "delete") {
      // The page comes back on the line after it (or before it, at the end), not the first.
      const neighbour = li.nextElementSibling ?? li.previousElementSibling;
      segmentation(li.dataset.deleteUrl, { expected_version: version }, {
        focusAfter: neighbour?.id, dropped: lineId,
      });
    } else if (action === "earlier" || action === "later") {
      reorder(lineId, action === "earlier" ? -1 : 1);
    }
  }

  // Reading order is changed in place, not by reloading the page: the rows move with their
  // typing, the focus and the caret stay where they were, the boxes' numbers follow. Changes
  // go one after the other, each from the order the last one left.
  function inOrder(change) {
    ordering = ordering.then(change).catch(() => { /* each says its own failure */ });
  }

  function reorder(lineId, step) {
    inOrder(async () => {
      await sendNudged();  // the version a box moved from the keyboard made is the one sent
      const li = rowOf(lineId);
      const rows = [...document.querySelectorAll(".page-line")];
      const neighbour = rows[rows.indexOf(li) + step];
      if (!li || !neighbour) {
        say(`This is the page's ${step < 0 ? "first" : "last"} line already.`, "warn");
        return;
      }
      const data = await changeOrder(li.dataset.reorderUrl, {
        expected_version: li.dataset.version,
        [step < 0 ? "before" : "after"]: neighbour.dataset.lineId,
      });
      if (data) say(`Line moved to place ${data.lines.indexOf(Number(lineId)) + 1} of ${data.lines.length} in the reading order.`);
    });
  }

  // Sends a change of reading order and puts the rows in the order the server answers; the
  // answer, or null when it was refused (a conflict reloads the page, unless `reload` is off).
  async function changeOrder(url, fields, { reload = true } = {}) {
    let response;
    try {
      response = await post(url, fields);
    } catch {
      say("The server cannot be reached; the reading order is as it was.", "error");
      return null;
    }
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      if (reload) refused(response, data);
      else say(data.error || `Refused (${response.status}).`, "error");
      return null;
    }
    arrange(data.lines);
    return data;
  }

  // The rows, and the numbers on the boxes, in the order of the line ids given. A page that
  // gained or lost lines meanwhile (a colleague's edit) is loaded again instead.
  function arrange(ids) {
    const list = view.querySelector(".page-lines");
    const rows = ids.map(rowOf);
    if (rows.includes(null) || rows.length !== list.querySelectorAll(".page-line").length) {
      if (selected) window.location.hash = selected.id;
      window.location.reload();
      return;
    }
    // Moving a row takes the focus out of it: it is given back, with the caret.
    const focused = document.activeElement;
    const caret = focused?.classList.contains("pl-text") && [focused.selectionStart, focused.selectionEnd];
    list.append(...rows);
    rows.forEach((row, place) => {
      row.querySelector(".pl-text").setAttribute("aria-label", `Line ${place + 1}`);
      const number = boxOf(row.dataset.lineId)?.querySelector("text");
      if (number) number.textContent = place + 1;
    });
    if (focused && focused !== document.activeElement && focused.isConnected) {
      focused.focus({ preventScroll: true });
      if (caret) focused.setSelectionRange(...caret);
      focused.scrollIntoView({ block: "nearest" });
    }
  }

  const sortButton = document.getElementById("sort-page");
  const undoSort = document.getElementById("undo-sort");
  sortButton.addEventListener("click", () => inOrder(async () => {
    await sendNudged();  // sorted by the boxes as the reviewer left them
    const data = await changeOrder(view.dataset.sortUrl, {});
    if (!data) return;
    lastSort = data.event;
    undoSort.hidden = !lastSort;
    say(lastSort
      ? `Sorted by position: ${data.moved} lines changed places. “Undo the sort” puts them back.`
      : "The lines are in that order already.");
  }));
  undoSort.addEventListener("click", () => inOrder(async () => {
    // Refused once the order changed since: the page is left as it is, and says why.
    const data = await changeOrder(view.dataset.undoSortUrl, { event: lastSort }, { reload: false });
    if (!data) return;
    lastSort = null;
    undoSort.hidden = true;
    sortButton.focus();
    say("The sort is undone: the lines are in their order before it.");
  }));
  view.querySelector(".page-lines").addEventListener("click", (e) => {
    const button = e.target.closest(".pl-order");
    if (!button) return;
    const li = button.closest(".page-line");
    select(li);
    reorder(li.dataset.lineId, Number(button.dataset.step));
  });

  // A split is shown before it is made: a cut across the box, where the click on the image
  // was, else where the caret's share of the text falls on the ink (the caret cuts the text
  // too), else in the middle; moved to the nearest gap in the ink. The arrows move it, Enter
  // or Alt+S makes it, Escape leaves it.
  function proposeSplit(li) {
    const input = li.querySelector(".pl-text");
    const [x0, y0, x1, y1] = bboxOf(li);
    const profile = inkProfile(li);
    const [from, to] = profile ? profile.span : [x0, x1];
    const text = input.value;
    const caret = input.selectionStart;
    const atCaret = caret > 0 && caret < text.length;
    const clicked = lastClick && lastClick.x > x0 && lastClick.x < x1;
    let x = clicked ? lastClick.x : from + (to - from) * (atCaret ? caret / text.length : 0.5);
    if (profile) x = nearestGap(profile, x, (to - from) / Math.max(1, text.length));
    splitting = {
      li, text, x: Math.round(Math.min(x1 - 2, Math.max(x0 + 2, x))), span: [from, to],
      at: !clicked && atCaret ? caret : null, step: Math.max(1, Math.round((y1 - y0) / 8)),
    };
    showSplit();
  }

  function showSplit() {
    const { li, text, x } = splitting;
    const [x0, y0, x1, y1] = bboxOf(li);
    const [from, to] = splitting.span;
    // Not at the caret: the text is cut at the space nearest to where the cut falls on it.
    const at = splitting.at ?? nearestSpace(text, (x - from) / Math.max(1, to - from));
    splitting.cutAt = at;
    let cut = svg.querySelector("line.cut");
    if (!cut) {
      cut = document.createElementNS("http://www.w3.org/2000/svg", "line");
      cut.setAttribute("class", "cut");
      svg.appendChild(cut);
    }
    const reach = (y1 - y0) / 4;
    cut.setAttribute("x1", x);
    cut.setAttribute("x2", x);
    cut.setAttribute("y1", y0 - reach);
    cut.setAttribute("y2", y1 + reach);
    const left = text.slice(0, at).trimEnd();
    const right = text.slice(at).trimStart();
    const row = [...document.querySelectorAll(".page-line")].indexOf(li) + 1;
    say(`Split line ${row} at the dashed line, ${Math.round(x - x0)} of ${x1 - x0} px: “${left}” | “${right}”. ← → move the cut; Enter or Alt+S splits, Escape cancels.`);
  }

  function cancelSplit() {
    if (!splitting) return false;
    splitting = null;
    svg.querySelector("line.cut")?.remove();
    say("Not split.");
    return true;
  }

  async function makeSplit() {
    const { li, x, text, cutAt } = splitting;
    splitting = null;
    svg.querySelector("line.cut")?.remove();
    // A draft on its way would arrive after the split, and bring the whole line back as the
    // left half's unsaved text.
    clearTimeout(li.draftTimer);
    await li.draftSent;
    // The place in code points, as the server counts characters: a JS index counts two for
    // a character beyond the BMP (𝔏), and would cut the text one later for each before it.
    segmentation(li.dataset.splitUrl, {
      x, text, at: [...text.slice(0, cutAt)].length, expected_version: li.dataset.version,
    }, { dropped: li.dataset.lineId });
  }

  // Where the space nearest to a share of the text is, as the server cuts a text at a box's
  // cut: the whole text on the left where it has none.
  function nearestSpace(text, share) {
    const target = Math.round(text.length * share);
    let best = text.length;
    for (let i = 0; i < text.length; i++) {
      if (text[i] === " " && (best === text.length || Math.abs(i - target) < Math.abs(best - target))) best = i;
    }
    return best;
  }

  // How much ink each column of the line's box holds, from the page image as shown, and the
  // span of columns the writing takes. Null where the image cannot be read.
  function inkProfile(li) {
    const img = view.querySelector(".pv-canvas img");
    const [x0, y0, x1, y1] = bboxOf(li);
    const [w, h] = [x1 - x0, y1 - y0];
    if (!img.complete || !img.naturalWidth || w < 8 || h < 2) return null;
    const scale = img.naturalWidth / Number(svg.viewBox.baseVal.width);
    try {
      const canvas = document.createElement("canvas");
      canvas.width = w;
      canvas.height = h;
      const context = canvas.getContext("2d", { willReadFrequently: true });
      context.drawImage(img, x0 * scale, y0 * scale, w * scale, h * scale, 0, 0, w, h);
      const { data } = context.getImageData(0, 0, w, h);
      const ink = new Float64Array(w);
      for (let i = 0; i < data.length; i += 4) ink[(i / 4) % w] += 765 - data[i] - data[i + 1] - data[i + 2];
      const [low, high] = [Math.min(...ink), Math.max(...ink)];
      const inked = [...ink.keys()].filter((c) => ink[c] - low > (high - low) * 0.1);
      if (!inked.length) return null;
      return { x0, ink, low, high, span: [x0 + inked[0], x0 + inked[inked.length - 1] + 1] };
    } catch {
      return null;  // an image from another origin: the canvas may not be read
    }
  }

  // The gap in the ink nearest to x, within a few letters of it: columns counted with their
  // neighbours, so that the white inside a letter is no gap.
  function nearestGap({ x0, ink, low, high }, x, letter) {
    const reach = Math.max(8, Math.round(letter * 3));
    const sums = [];
    for (let c = Math.max(0, Math.round(x - x0 - reach)); c <= Math.min(ink.length - 1, Math.round(x - x0 + reach)); c++) {
      let sum = 0;
      for (let d = -3; d <= 3; d++) sum += ink[Math.min(ink.length - 1, Math.max(0, c + d))] - low;
      sums.push([c, sum]);
    }
    if (!sums.length) return x;
    const least = Math.min(...sums.map(([, sum]) => sum));
    const near = sums.filter(([, sum]) => sum <= least + (high - low) * 0.2);
    near.sort((a, b) => Math.abs(x0 + a[0] - x) - Math.abs(x0 + b[0] - x));
    return x0 + near[0][0];
  }

  function moveCut(dx) {
    const [x0, , x1] = bboxOf(splitting.li);
    splitting.x = Math.min(x1 - 2, Math.max(x0 + 2, splitting.x + dx * splitting.step));
    showSplit();
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
    rebaseLocal(lineId, current.dataset.version, data.version);
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
  const keys = {
    KeyS: "split", KeyJ: "merge", Delete: "delete", KeyA: "add", PageUp: "earlier", PageDown: "later",
  };
  if (mac) keys.Backspace = "delete";
  document.addEventListener("keydown", (e) => {
    if (help.open) return;
    // AltGr arrives as Ctrl+Alt on Windows (ś, ą on a Polish keyboard): letters, as
    // Alt+Backspace (delete a word) is editing.
    if (!isShortcut(e) || (!mac && e.getModifierState("AltGraph")) || composing(e)) return;
    if (final) return;
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
  // Capturing, so that these keys answer the pending box or cut before a row or a button
  // reads them.
  document.addEventListener("keydown", (e) => {
    if (composing(e) || help.open) return;
    if (e.key === "F1" || (e.key === "?" && !e.target.closest?.("input, textarea, select"))) {
      e.preventDefault();
      help.showModal();
      return;
    }
    // With Alt or without: Alt+arrows would otherwise move the box being cut.
    if (splitting && ["Escape", "Enter", "ArrowLeft", "ArrowRight"].includes(e.key)) {
      e.preventDefault();
      e.stopPropagation();
      if (e.key === "Escape") cancelSplit();
      else if (e.key === "Enter") makeSplit();
      else moveCut(e.key === "ArrowLeft" ? -1 : 1);
      return;
    }
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
    if (splitting?.li === li) {
      e.preventDefault();
      splitting.x = Math.round(start.x);
      showSplit();
      return;
    }
    select(li);
    li.querySelector(".pl-text").focus({ preventScroll: true });
    if (final) return;
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
      }, { moved: li.dataset.lineId });
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

  // The page's lines that wait for a human are leased to this reviewer while the page is
  // open, as the line editor leases its line: renewed three times a lease (at most once a
  // minute) while they use the page, let run out when they leave it idle, handed back when
  // they leave it. A colleague's line is read-only here until they let it go.
  // Of two tabs of this page, the one opened last keeps the lines (the server's answer
  // says so to the other, "superseded"): the earlier shows them read-only, as a colleague's,
  // until "Work in this tab" takes them back to it under a new claim.
  const IDLE_MS = 120_000;
  let active = Date.now();
  const elsewhere = document.getElementById("pv-elsewhere");
  const updated = document.getElementById("pv-updated");

  function showHolder(li, held) {
    const input = li.querySelector(".pl-text");
    const note = li.querySelector(".pl-held");
    if (held && input.value === input.dataset.saved) {
      li.dataset.heldBy = held.by;
      input.readOnly = true;
      input.setAttribute("aria-describedby", note.id);
      note.textContent = held.tab
        ? "Your other tab of this page keeps this line: read-only here. Work in this tab takes it back."
        : `${held.by} is working on this line (until ${held.until}): read-only here until they leave it.`;
      note.hidden = false;
    } else if (held) {
      // Typed into here before the colleague (or the later tab) took it: nothing typed is
      // taken away, and a save shows both texts should theirs come first.
      note.textContent = held.tab
        ? "Your other tab of this page keeps this line now. Your text is kept; saving shows both texts if that tab saves first."
        : `${held.by} has this line now (your lease ran out). Your text is kept; saving shows both texts if they save first.`;
      note.hidden = false;
    } else if (!note.hidden) {
      if ("heldBy" in li.dataset) {
        delete li.dataset.heldBy;
        input.readOnly = false;
        input.removeAttribute("aria-describedby");
      }
      note.textContent = "";
      note.hidden = true;
    }
  }

  async function renewLeases(fields = {}) {
    if (final) return;
    let data;
    try {
      const response = await post(view.dataset.leaseUrl, { claim: view.dataset.claim, ...fields });
      if (!response.ok) return;
      data = await response.json();
    } catch { return; /* offline: next time */ }
    // A new claim after "Work in this tab": the renewals and the release name it from now on.
    view.dataset.claim = data.claim;
    elsewhere.hidden = !data.superseded;
    // Served since by a deploy whose scripts differ from these: they may no longer suit it.
    if (data.scripts && data.scripts !== view.dataset.scripts) updated.hidden = false;
    document.querySelectorAll(".page-line").forEach((li) => showHolder(li, data.held[li.dataset.lineId]));
  }

  document.getElementById("work-here").addEventListener("click", async () => {
    await renewLeases({ take_over: "1" });
    if (elsewhere.hidden) (selected ?? document.querySelector(".page-line"))?.querySelector(".pl-text").focus();
  });
  document.getElementById("reload-page").addEventListener("click", () => window.location.reload());
  // Back in this tab: whether another tab took the lines meanwhile shows at once.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") renewLeases();
  });

  const leaseEvery = Math.min(60_000, (Number(view.dataset.leaseSeconds) || 180) * 1000 / 3);
  setInterval(() => { if (Date.now() - active <= IDLE_MS) renewLeases(); }, leaseEvery);
  const woke = () => {
    // Back after a pause long enough for the leases to run out: take the lines back now.
    if (Date.now() - active > IDLE_MS) renewLeases();
    active = Date.now();
  };
  document.addEventListener("keydown", woke, true);
  document.addEventListener("pointerdown", woke, true);
  window.addEventListener("pagehide", () => {
    if (final) return;
    // Typing that the draft timer had still to send goes now, as the line editor's does;
    // those lines stay this reviewer's, since the release may arrive before their drafts.
    const typing = [];
    for (const li of document.querySelectorAll(".page-line")) {
      const input = li.querySelector(".pl-text");
      // A row not typed in here may show the line's text beside a draft offered, unchosen:
      // that draft is not this page's to discard.
      if (!li.typed || input.value === (li.serverDraft ?? input.dataset.saved)) continue;
      if (input.value === input.dataset.saved) {
        beacon(li.dataset.discardUrl, {});
        continue;
      }
      beacon(li.dataset.draftUrl, {
        text: input.value, base_version: li.dataset.version, hypothesis: li.hypothesis || "",
      });
      typing.push(li.dataset.lineId);
    }
    // Only the lines this page view holds: a reload takes them over before this may arrive,
    // and a line open in the line editor in another tab is that tab's.
    beacon(view.dataset.releaseUrl, { claim: view.dataset.claim, keep: typing.join(",") });
  });

  document.getElementById("help-button").addEventListener("click", () => help.showModal());
  document.querySelectorAll(".page-line").forEach(wireRow);
  const target = window.location.hash && document.querySelector(window.location.hash);
  const first = target || document.querySelector(".page-line");
  if (first) {
    first.querySelector(".pl-text").focus();
    first.scrollIntoView({ block: "center" });
  }
})();
