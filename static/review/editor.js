// The keyboard-first line editor. The server renders each line as an HTML fragment
// (#editor); this script wires keys, drafts and saving to whichever fragment is shown, and
// swaps in the next one after a save without reloading the page.
(() => {
  "use strict";
  const review = document.getElementById("review");
  const help = document.getElementById("help");
  if (!review) return;

  // A reviewer who has pressed no key for this long lets the lease run out, so that an
  // abandoned tab does not hold a line forever.
  const IDLE_MS = 120_000;
  let ed = null;

  const {
    post, beacon, refusal, unsavedDraft, localDrafts, composing, mac, isShortcut, DRAFT_DELAY_MS, dropWarning,
  } = window.ocrreview;
  const { read: readLocal, keep: keepLocal, drop: dropLocal } = localDrafts(review.dataset.user);

  // Outside the fragments the editor swaps in: a live region replaced along with the line
  // is a new one, and screen readers say nothing of what a new region holds.
  const noticeBox = document.getElementById("notice");

  function notice(message, kind = "") {
    noticeBox.textContent = message;
    noticeBox.className = `notice ${kind}`;
  }

  // Returns what the line has to say as it opens (its draft restored), for the caller to say
  // at once or, after a swap, a moment later.
  function init() {
    const root = document.getElementById("editor");
    if (!root) {
      ed = null;
      // The fragment saying that the queue is done took the editor's place, and the focus.
      document.querySelector("#editor-done h2")?.focus();
      return null;
    }
    const d = root.dataset;
    const input = root.querySelector("#line-text");
    ed = {
      root, input, d,
      id: d.lineId,
      version: Number(d.version),
      original: d.text,
      hypothesis: d.hypothesis || "",
      started: Date.now(),
      active: Date.now(),
      undo: [],
      redo: [],
      typing: null, // the edit run Ctrl+Z undoes as one: its kind, when it last grew, and whether its last key was a space
      last: input.value,
      serverText: null,
      draftTimer: null,
      // Three renewals a lease, at most one a minute: one lost request does not lose the line,
      // however short the admin set the lease.
      // (A fragment without the lease, from an older page, renews as before: once a minute.)
      leaseTimer: setInterval(renewLease, Math.min(60_000, (Number(d.leaseSeconds) || 180) * 1000 / 3)),
      // The action a second press carries out though it drops text: typed text ("accept", or
      // the History's revert button), or the reading ("empty", "short": see dropWarning).
      armed: null,
      busy: false,
      // A final document's line: shown, and moved away from with the keys, never changed.
      final: "final" in d,
    };
    const restored = restoreDraft();
    input.addEventListener("input", onInput);
    root.querySelectorAll(".alternatives li").forEach((li, i) => {
      li.addEventListener("click", () => takeAlternative(i));
    });
    const chars = [...root.querySelectorAll(".palette button")];
    chars.forEach((b) => {
      b.addEventListener("click", () => insertText(b.dataset.char));
    });
    // One Tab stop for the whole palette (it may hold hundreds of characters), arrows within
    // it: the toolbar pattern, so that the characters past the ninth are reached by keyboard.
    root.querySelector(".palette")?.addEventListener("keydown", (e) => {
      const at = chars.indexOf(e.target);
      const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: chars.length - 1 }[e.key];
      if (at < 0 || to === undefined || !chars[to]) return;
      e.preventDefault();
      e.stopPropagation();
      chars[at].tabIndex = -1;
      chars[to].tabIndex = 0;
      chars[to].focus();
    });
    root.querySelector("[data-toggle=page-viewer]")?.addEventListener("click", togglePageViewer);
    const history = root.querySelector("#history");
    history.addEventListener("toggle", () => { if (history.open) loadHistory(); });
    if (history.open) loadHistory();
    const form = root.querySelector("#line-form");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const button = e.submitter;
      if (button?.getAttribute("formaction")) skip();
      else save(button?.value === "accept" ? "accept" : "save");
    });
    wireConflict();
    wireUnclear();
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
    return restored;
  }

  function restoreDraft() {
    const d = ed.d;
    // Kept, here and on the server, for when an admin reopens the document; shown in a
    // read-only input it would look like the line's text.
    if (ed.final) {
      return d.draftVersion || readLocal(ed.id)
        ? "Your unsaved text in this line is kept for when the document is reopened."
        : null;
    }
    if (d.draftVersion) ed.serverText = d.draftText;
    const draft = unsavedDraft(readLocal(ed.id), d.draftVersion ? {
      text: d.draftText, version: Number(d.draftVersion), hypothesis: d.draftHypothesis || "",
      at: Number(d.draftAt), now: Number(d.serverNow),
    } : null);
    if (!draft || draft.text === ed.input.value) return null;
    ed.input.value = draft.text;
    ed.last = draft.text;
    // Saving a restored draft names the version it was typed against, so a line changed
    // meanwhile shows both texts instead of being overwritten.
    ed.version = draft.version;
    ed.hypothesis = draft.hypothesis || ed.hypothesis;
    const stale = draft.version !== Number(d.version);
    return stale
      ? "Your unsaved text was restored. The line has changed since you typed it; saving will show both texts."
      : "Your unsaved text was restored.";
  }

  function remember() {
    keepLocal(ed.id, {
      text: ed.input.value, version: ed.version, hypothesis: ed.hypothesis, at: Date.now(),
      sent: ed.serverText ?? null,
    }, ed.original);
    // What is typed after a conflict appeared is what "Keep mine" keeps, so the box shows it.
    const conflict = ed.root.querySelector("#conflict-area .conflict");
    if (conflict) {
      conflict.dataset.mine = ed.input.value;
      conflict.querySelector(".mine").textContent = ed.input.value || "(empty)";
    }
    clearTimeout(ed.draftTimer);
    ed.draftTimer = setTimeout(saveDraft, DRAFT_DELAY_MS);
  }

  // Undo steps hold the reading the text came from too: undoing a taken alternative must not
  // leave it recorded as the reading the saved text started from.
  const alternatives = () => [...ed.root.querySelectorAll(".alternatives li")];

  function state(text) {
    const taken = alternatives().findIndex((li) => li.classList.contains("taken"));
    return { text, hypothesis: ed.hypothesis, taken };
  }

  function pushUndo() {
    ed.undo.push(state(ed.last));
    ed.redo = [];
  }

  // Ctrl+Z takes back a word at a time, as text editors do: keys typed in a run, which a
  // space after a word, a pause of a second, or a switch between typing and deleting ends. The
  // space begins the next run, so that a word's undo takes the space typed before it along.
  function onInput(e) {
    const kind = e.inputType?.startsWith("delete") ? "delete" : "insert";
    const now = Date.now();
    const run = ed.typing;
    const space = kind === "insert" && /\s/.test(e.data ?? "");
    if (!run || run.kind !== kind || (space && !run.space) || now - run.at > 1000) pushUndo();
    ed.typing = { kind, at: now, space };
    ed.last = ed.input.value;
    ed.armed = null;
    ed.active = Date.now();
    remember();
  }

  // Changes made by keys (alternatives, palette) go through here so Ctrl+Z can undo them.
  function setText(value, caret = value.length) {
    pushUndo();
    ed.typing = null;
    ed.armed = null;  // a new text needs its own warning before Ctrl+Enter drops it
    ed.input.value = value;
    ed.last = value;
    ed.input.focus();
    ed.input.setSelectionRange(caret, caret);
    remember();
  }

  // Ctrl+Z and Ctrl+Shift+Z (or Ctrl+Y): each moves the line's state from one stack to the
  // other, the reading an alternative brought with it included.
  function step(from, to) {
    if (!from.length) return false;
    to.push(state(ed.input.value));
    const { text, hypothesis, taken } = from.pop();
    ed.armed = null;
    ed.typing = null;
    ed.input.value = text;
    ed.last = text;
    ed.hypothesis = hypothesis;
    alternatives().forEach((li, i) => li.classList.toggle("taken", i === taken));
    remember();
    return true;
  }
  const undo = () => step(ed.undo, ed.redo);
  const redo = () => step(ed.redo, ed.undo);

  // What would change a final document's line says why it cannot, instead of sending a
  // change the server refuses.
  function locked() {
    if (ed.final) notice(ed.root.querySelector("#final-banner").textContent, "warn");
    return ed.final;
  }

  function takeAlternative(index) {
    if (locked()) return;
    const items = ed.root.querySelectorAll(".alternatives li");
    const li = items[index];
    if (!li) return;
    setText(li.dataset.text);
    ed.hypothesis = li.dataset.hypothesis;
    items.forEach((item) => item.classList.toggle("taken", item === li));
    notice(`Alternative ${index + 1} taken; Enter saves it, Ctrl+Z undoes.`, "info");
  }

  function insertText(text) {
    if (locked()) return;
    const { selectionStart: start, selectionEnd: end, value } = ed.input;
    setText(value.slice(0, start) + text + value.slice(end), start + text.length);
  }

  // One draft on the way at a time: two sent close together over a slow network can be
  // stored in the other order, leaving the older text on the server to be restored.
  function saveDraft() {
    const current = ed;
    if (!current) return Promise.resolve();
    current.draftSent = (current.draftSent || Promise.resolve()).then(() => sendDraft(current));
    return current.draftSent;
  }

  async function sendDraft(current) {
    // Untouched, a line needs no draft: one would bring the machine's text back over a
    // colleague's correction, and bar others from deleting or merging the line.
    const sent = current.input.value;
    if (sent === (current.serverText ?? current.original)) return;
    // Typing undone back to the line's text: the draft sent before goes, or it would hold
    // the line as if something were unsaved in it, with the same effects.
    if (sent === current.original) {
      try {
        if ((await post(current.d.discardUrl, new FormData())).ok) current.serverText = null;
      } catch { /* the next keystroke tries again */ }
      return;
    }
    const body = new FormData();
    body.set("text", sent);
    body.set("base_version", current.version);
    body.set("hypothesis", current.hypothesis);
    try {
      const response = await post(current.d.draftUrl, body);
      if (!response.ok) return;
      const data = await response.json();
      if (!data.saved) {
        if (current === ed) notice("You saved this line since you typed this text, so only this browser keeps it. Enter shows both texts to choose from.", "warn");
        return;
      }
      current.serverText = sent;
      if (data.lease === "lost" && current === ed) {
        notice("Another reviewer has this line now (your lease ran out). Your text is kept; saving will show both texts if they save first.", "warn");
      }
    } catch { /* kept locally; the next keystroke tries again */ }
  }

  async function renewLease() {
    if (!ed || Date.now() - ed.active > IDLE_MS) return;
    try { await post(ed.d.leaseUrl, new FormData()); } catch { /* offline: try next time */ }
  }

  function formBody(action) {
    const form = ed.root.querySelector("#line-form");
    const body = new FormData(form);
    // An accept confirms the recognised text the reviewer saw, whatever the input holds.
    body.set("text", action === "accept" ? ed.original : ed.input.value);
    body.set("expected_version", ed.version);
    body.set("hypothesis", ed.hypothesis);
    body.set("time_spent_ms", Date.now() - ed.started);
    body.set("action", action);
    return body;
  }

  // `said` is what the reviewer hears once the next line is in ("Saved."): the focus moving
  // to it tells of the new line, not of what became of the last.
  async function send(url, body, { push = true, keepDraft = false, said = "" } = {}) {
    if (ed.busy) return;
    ed.busy = true;
    // Keys typed while the save is on its way would go when the next line comes in.
    ed.input.readOnly = true;
    clearTimeout(ed.draftTimer);
    const id = ed.id;
    const sending = ed;
    let response;
    try {
      response = await post(url, body);
    } catch {
      sending.busy = false;
      sending.input.readOnly = sending.final;
      notice("Not saved: the server cannot be reached. Your text is kept here; press Enter to try again.", "error");
      return;
    }
    sending.busy = false;
    sending.input.readOnly = sending.final;
    if (response.status === 409) {
      document.getElementById("conflict-area").innerHTML = await response.text();
      wireConflict();
      notice("");
      return;
    }
    if (!response.ok) {
      notice(`Not saved: ${await refusal(response)}`, "error");
      return;
    }
    if (!keepDraft) dropLocal(id);
    // Past the last hit of the search results the line came from: back to those results.
    const leave = response.headers.get("X-Leave-To");
    if (leave) {
      clearInterval(sending.leaseTimer);
      ed = null;  // what was typed is saved: nothing is left to send as the page goes
      window.location.assign(leave);
      return;
    }
    swap(await response.text(), response.headers.get("X-Line-Url"), push, said);
  }

  function swap(html, url, push, said) {
    clearInterval(ed.leaseTimer);
    clearTimeout(ed.draftTimer);
    review.innerHTML = html;
    if (url) (push ? history.pushState : history.replaceState).call(history, {}, "", url);
    notice("");
    const restored = init();
    const message = [said, restored].filter(Boolean).join(" ");
    if (!message) return;
    // A moment later: set in the task that emptied the region, a message the same as the
    // last one (a second "Saved.") would leave it unchanged, and screen readers silent.
    const opened = ed;
    setTimeout(() => {
      if (ed === opened && !noticeBox.textContent) notice(message, "info");
    }, 100);
  }

  function save(action) {
    if (locked()) return;
    if (action === "accept" && ed.input.value !== ed.original && ed.armed !== "accept") {
      ed.armed = "accept";
      notice("You changed the text. Ctrl+Enter again accepts the recognised text and drops your change; Enter saves your change.", "warn");
      return;
    }
    const warning = action === "save" ? dropWarning(ed.original, ed.input.value) : null;
    if (warning && ed.armed !== warning.kind) {
      ed.armed = warning.kind;
      notice(warning.message, "warn");
      return;
    }
    const body = formBody(action);
    // Past the warning, an empty text is meant (or the line had none to lose).
    if (action === "save" && !ed.input.value.trim()) body.set("confirm_empty", "1");
    send(ed.root.querySelector("#line-form").getAttribute("action"), body, {
      said: action === "accept" ? "Accepted." : "Saved.",
    });
  }

  async function skip() {
    if (ed.busy) return;
    const body = new FormData();
    body.set("time_spent_ms", Date.now() - ed.started);
    // The draft stays, here and on the server: a skipped line keeps what was typed into it,
    // the keys of the last 0.8 s too.
    clearTimeout(ed.draftTimer);
    const skipping = ed;
    await saveDraft();
    // A save (Enter) while the draft was on its way has opened the next line, unseen.
    if (ed !== skipping) return;
    send(ed.d.skipUrl, body, { keepDraft: true, said: "Skipped." });
  }

  function wireConflict() {
    ed?.root.querySelectorAll("#conflict-area [data-choose]").forEach((button) => {
      button.addEventListener("click", () => choose(button.dataset.choose));
    });
  }

  async function choose(which) {
    const conflict = ed.root.querySelector("#conflict-area .conflict");
    if (!conflict) return;
    if (which === "mine") {
      ed.version = Number(conflict.dataset.version);
      conflict.remove();
      // Exactly the text shown as mine: after an accept, or a revert, it is not the input's.
      const body = formBody("save");
      body.set("text", conflict.dataset.mine);
      // An empty text of mine got as far as the conflict, so it was confirmed already.
      if (!conflict.dataset.mine.trim()) body.set("confirm_empty", "1");
      send(ed.root.querySelector("#line-form").getAttribute("action"), body, { said: "Saved." });
      return;
    }
    dropLocal(ed.id);
    clearTimeout(ed.draftTimer);
    // Their text stands: nothing of mine may go out again as a draft when the page goes.
    ed.serverText = ed.input.value;
    try { await post(ed.d.discardUrl, new FormData()); } catch { /* nothing to lose */ }
    window.location.assign(ed.d.queueUrl);
  }

  // The unclear mark: Alt+U opens a note to say what cannot be read, or removes the mark. It
  // changes neither the text nor the version, so a save typed meanwhile goes as it is.
  function wireUnclear() {
    const box = ed.root.querySelector("#unclear");
    const form = box.querySelector("#unclear-form");
    box.querySelector("[data-unclear=open]")?.addEventListener("click", openUnclear);
    box.querySelector("[data-unclear=clear]")?.addEventListener("click", () => setUnclear(false));
    box.querySelector("[data-unclear=cancel]")?.addEventListener("click", closeUnclear);
    form?.addEventListener("submit", (e) => {
      e.preventDefault();
      setUnclear(true, form.elements.note.value);
    });
    form?.addEventListener("keydown", (e) => {
      if (e.key !== "Escape") return;
      e.preventDefault();
      closeUnclear();
    });
  }

  function toggleUnclear() {
    if (locked()) return;
    if (ed.root.querySelector("[data-unclear=clear]")) setUnclear(false);
    else openUnclear();
  }

  function openUnclear() {
    const form = ed.root.querySelector("#unclear-form");
    form.hidden = false;
    form.elements.note.focus();
  }

  function closeUnclear() {
    ed.root.querySelector("#unclear-form").hidden = true;
    ed.input.focus();
  }

  async function setUnclear(on, note = "") {
    const current = ed;
    const body = new FormData();
    if (on) body.set("unclear", "1");
    body.set("note", note);
    let response;
    try {
      response = await post(current.root.querySelector("#unclear").dataset.url, body);
    } catch {
      notice("Not changed: the server cannot be reached.", "error");
      return;
    }
    if (current !== ed) return;
    if (!response.ok) {
      notice(`Not changed: ${await refusal(response)}`, "error");
      return;
    }
    ed.root.querySelector("#unclear").outerHTML = await response.text();
    wireUnclear();
    ed.input.focus();
    notice(on ? "Marked unclear. Enter saves your best reading, Esc skips the line; the mark stays." : "Unclear mark removed.", "info");
  }

  async function loadHistory() {
    const body = ed.root.querySelector("#history .history-body");
    const failed = (why) => {
      body.textContent = `The history could not be loaded: ${why} Close it and open it again to retry.`;
    };
    let response;
    try {
      response = await fetch(ed.d.historyUrl, { headers: { "X-Requested-With": "fetch" } });
    } catch {
      failed("the server cannot be reached.");
      return;
    }
    if (!response.ok) {
      failed(await refusal(response));
      return;
    }
    body.innerHTML = await response.text();
    body.querySelectorAll("[data-revert-url]").forEach((button) => {
      button.addEventListener("click", () => {
        if (ed.input.value !== ed.original && ed.armed !== button) {
          ed.armed = button;
          notice("You changed the text. Click again to revert and drop your change; Enter saves your change.", "warn");
          return;
        }
        const form = new FormData();
        form.set("expected_version", ed.version);
        if (button.dataset.before) form.set("before", "1");
        // The page's query carries the reviewer's queue filter and order to the next line.
        send(button.dataset.revertUrl + window.location.search, form, {
          push: false, said: "Reverted.",
        });
      });
    });
  }

  async function go(url) {
    if (!url || ed.busy) return;
    const leaving = ed;
    clearTimeout(ed.draftTimer);
    // Stored before the next line is opened: opening it hands back this one unless it holds
    // a draft (one lease at a time), and the typing of the last 0.8 s must count.
    await saveDraft();
    // A save pressed meanwhile goes to the queue's next line, where the reviewer now is.
    if (leaving !== ed || ed.busy) return;
    window.location.assign(url);
  }

  // --- the page around the line: zoom and pan with CSS transforms on the page image.
  const view = { scale: 1, x: 0, y: 0 };

  function applyView(pv) {
    pv.querySelector(".pv-stage").style.transform =
      `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
  }

  function zoom(pv, factor, cx, cy) {
    const next = Math.min(8, Math.max(0.05, view.scale * factor));
    view.x = cx - (cx - view.x) * (next / view.scale);
    view.y = cy - (cy - view.y) * (next / view.scale);
    view.scale = next;
    applyView(pv);
  }

  function togglePageViewer() {
    const pv = ed.root.querySelector("#page-viewer");
    if (!pv.hidden) { pv.hidden = true; ed.input.focus(); return; }
    pv.hidden = false;
    const img = pv.querySelector("img");
    if (!img.getAttribute("src")) img.src = img.dataset.src;
    const [x0, y0, x1, y1] = pv.dataset.bbox.split(",").map(Number);
    const box = pv.getBoundingClientRect();
    view.scale = Math.min(2, (box.width * 0.6) / Math.max(1, x1 - x0));
    view.x = box.width / 2 - ((x0 + x1) / 2) * view.scale;
    view.y = box.height / 2 - ((y0 + y1) / 2) * view.scale;
    applyView(pv);
    pv.focus();
    if (pv.dataset.wired) return;
    pv.dataset.wired = "1";
    // It takes every key while open: once the reviewer tabs out of it (back to the text),
    // it closes, or "-" and "+" would zoom and Enter do nothing there.
    pv.addEventListener("focusout", (e) => {
      const to = e.relatedTarget;
      // Its own button closes it by its click; another window taking the focus leaves it.
      if (!to || pv.contains(to) || to.matches("[data-toggle=page-viewer]")) return;
      pv.hidden = true;
    });
    pv.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = pv.getBoundingClientRect();
      zoom(pv, e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - r.left, e.clientY - r.top);
    }, { passive: false });
    pv.addEventListener("pointerdown", (e) => {
      const start = { x: e.clientX - view.x, y: e.clientY - view.y };
      pv.setPointerCapture(e.pointerId);
      const move = (m) => { view.x = m.clientX - start.x; view.y = m.clientY - start.y; applyView(pv); };
      pv.addEventListener("pointermove", move);
      pv.addEventListener("pointerup", () => pv.removeEventListener("pointermove", move), { once: true });
    });
  }

  function viewerKeys(e, pv) {
    const r = pv.getBoundingClientRect();
    const step = 60;
    const keys = {
      "+": () => zoom(pv, 1.25, r.width / 2, r.height / 2),
      "=": () => zoom(pv, 1.25, r.width / 2, r.height / 2),
      "-": () => zoom(pv, 0.8, r.width / 2, r.height / 2),
      ArrowLeft: () => { view.x += step; applyView(pv); },
      ArrowRight: () => { view.x -= step; applyView(pv); },
      ArrowUp: () => { view.y += step; applyView(pv); },
      ArrowDown: () => { view.y -= step; applyView(pv); },
      Escape: togglePageViewer,
    };
    const action = (isShortcut(e) && e.code === "KeyP") ? togglePageViewer : keys[e.key];
    if (action) { e.preventDefault(); action(); }
  }

  // --- keys
  document.getElementById("help-button")?.addEventListener("click", () => help.showModal());


  document.addEventListener("keydown", (e) => {
    // Keys typed into the header's search box are words to search for, not shortcuts.
    // Nor are those typed into the unclear mark's note, which has its own Enter and Esc.
    if (!ed || help?.open || e.target.closest?.(".search-box, #unclear-form")) return;
    ed.active = Date.now();
    // Enter and Escape confirm or cancel an input method's candidate (Chinese, Japanese).
    if (composing(e)) return;
    const pv = ed.root.querySelector("#page-viewer");
    if (!pv.hidden) { viewerKeys(e, pv); return; }
    const inText = e.target === ed.input;
    if (e.key === "F1" || (e.key === "?" && !inText)) {
      e.preventDefault();
      help.showModal();
      return;
    }
    if (isShortcut(e)) {
      const digit = /^Digit([1-9])$/.exec(e.code);
      if (digit) {
        e.preventDefault();
        const n = Number(digit[1]) - 1;
        if (e.shiftKey) {
          const chars = ed.root.querySelectorAll(".palette button");
          if (chars[n]) insertText(chars[n].dataset.char);
        } else {
          takeAlternative(n);
        }
        return;
      }
      const byCode = {
        ArrowUp: () => go(ed.d.prevUrl),
        ArrowDown: () => go(ed.d.nextUrl),
        KeyP: togglePageViewer,
        KeyG: () => go(ed.d.pageUrl),
        KeyH: () => {
          const h = ed.root.querySelector("#history");
          h.open = !h.open;
        },
        KeyU: toggleUnclear,
        KeyM: () => choose("mine"),
        KeyT: () => choose("theirs"),
      };
      const action = byCode[e.code] || byCode[e.key];
      if (action) { e.preventDefault(); action(); }
      // Control+Enter accepts on a Mac as elsewhere.
      if (action || !mac) return;
    }
    if (["BUTTON", "A", "SELECT", "SUMMARY"].includes(e.target.tagName)) return;
    // A held key repeats: Enter would save the next line, unseen, as it comes in.
    if (e.repeat && (e.key === "Enter" || e.key === "Escape")) { e.preventDefault(); return; }
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      save(e.ctrlKey || e.metaKey ? "accept" : "save");
    } else if (e.key === "Escape") {
      e.preventDefault();
      skip();
    } else if ((e.ctrlKey || e.metaKey) && !e.altKey && inText) {
      const key = e.key.toLowerCase();
      const done = key === "z" ? (e.shiftKey ? redo() : undo()) : key === "y" && redo();
      if (done) e.preventDefault();
    }
  });

  // A closed tab or a navigation still sends the last words typed to the server.
  window.addEventListener("pagehide", () => {
    if (!ed || ed.input.value === ed.serverText) return;
    // Typing undone back to the line's text just before: the draft sent earlier goes.
    if (ed.input.value === ed.original) {
      if (ed.serverText != null) beacon(ed.d.discardUrl);
      return;
    }
    beacon(ed.d.draftUrl, {
      text: ed.input.value, base_version: ed.version, hypothesis: ed.hypothesis,
    });
  });

  window.addEventListener("popstate", () => window.location.reload());
  const restored = init();
  if (restored) notice(restored, "info");
})();
