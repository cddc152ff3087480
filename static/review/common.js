// What the editor and the page view share: posting to the server, the drafts each keeps in
// the browser, the shortcut modifier, and the warning before a save drops the reading.
//
// The modifier is Alt elsewhere; on a Mac, Option types characters (Option+3 is £,
// Option+Fn+Delete deletes a word) and Control edits text (Control+H deletes back, Control+T
// transposes, Control+Up opens Mission Control), so there the shortcuts take Control+Option,
// which does neither, and the labels say so.
window.ocrreview = (() => {
  "use strict";
  // The cookie first: a log-in in another tab after the session ended gives a new token, which
  // the form fields rendered with the page do not have.
  const csrf = () => document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/)?.[1]
    || document.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";
  // Whom the page was made for: on a browser people share, a log-in in another tab since
  // must not make this page's requests the newcomer's (ocrreview.middleware.PageUserChanged).
  const pageUser = () => document.querySelector("[data-user]")?.dataset.user;
  const asPageUser = () => (pageUser() ? { "X-Ocrreview-User": pageUser() } : {});
  // URL-encoded rather than multipart: the fields are short text, and Django reads it faster.
  const post = (url, form) => {
    const body = new URLSearchParams(form);
    // A form's token field, rendered with the page, would be read before the header's.
    body.delete("csrfmiddlewaretoken");
    return fetch(url, {
      method: "POST",
      body,
      headers: { "X-CSRFToken": csrf(), "X-Requested-With": "fetch", ...asPageUser() },
      credentials: "same-origin",
    });
  };
  // A beacon sends no header: its token goes in its body, its user in its URL (which the
  // server reads without parsing the body).
  const beacon = (url, fields = {}) => {
    const body = new FormData();
    body.set("csrfmiddlewaretoken", csrf());
    for (const [name, value] of Object.entries(fields)) body.set(name, value);
    const target = new URL(url, window.location.href);
    if (pageUser()) target.searchParams.set("as_user", pageUser());
    navigator.sendBeacon(target, body);
  };
  // Why the server refused a request: its JSON error, or its status where something answered
  // with a page (a proxy's 502, a CSRF failure's 403, a 404 for a line merged away).
  const refusal = async (response) => {
    const data = response.headers.get("Content-Type")?.includes("json")
      ? await response.json().catch(() => ({})) : {};
    return data.error || `The server refused the request (${response.status}).`;
  };
  // The unsaved text a line opens with, or null: this browser's copy (`local`) or the
  // server's draft (`server`: its text, version and hypothesis, `at` its time and `now` the
  // page's, in seconds by the server's clock), whichever is newer. This browser's copy wins
  // where its typing went on from the server's (a reload within the draft delay: the old
  // page's beacon comes after the new one is made, and the server's time, to the second and
  // late by the page's load, made the older text win) or where they are one text (this
  // browser's copy carries the version a box move here went on to).
  const unsavedDraft = (local, server) => {
    if (!server) return local || null;
    if (local && (local.sent === server.text || local.text === server.text)) return local;
    // On this browser's clock: one behind the server's made an older server draft win.
    const { now, ...draft } = server;
    const fromServer = { ...draft, at: (draft.at - now) * 1000 + Date.now() };
    return local && local.at >= fromServer.at ? local : fromServer;
  };
  // Drafts in the browser survive a reload, a closed tab, a lost connection. Per user: on a
  // browser people share (a reading room's), one reviewer's unsaved text must not come back
  // to the next as theirs.
  //
  // Per tab too: two tabs on one line share the browser's storage, and one tab's typing or
  // save wrote over or dropped the other's text, which its reload then found gone. A line's
  // drafts are kept by tab (its id in sessionStorage, which a reload keeps); a tab reads its
  // own, or else takes over the newest another left (a tab closed, the browser restarted).
  //
  // A duplicated tab (or one a script opened) starts with a copy of its opener's
  // sessionStorage, id included, and the two would write over each other's drafts again. So
  // a live tab stamps its id in localStorage every TAB_STAMP_MS (a hidden tab's timers may be
  // slowed to one a minute) and clears the stamp as its page goes: a tab finding its id's
  // stamp fresh is such a copy, and takes an id of its own. A reload finds it cleared.
  const TAB_STAMP_MS = 30_000, TAB_ALIVE_MS = 3 * 60_000;
  const tab = (() => {
    try {
      const alive = (id) => `ocrreview:tab-alive:${id}`;
      let id = sessionStorage.getItem("ocrreview:tab");
      if (id && Date.now() - Number(localStorage.getItem(alive(id))) < TAB_ALIVE_MS) id = null;
      // Not crypto.randomUUID: it is missing from pages served over plain HTTP.
      if (!id) sessionStorage.setItem("ocrreview:tab", id = `${Date.now()}-${Math.random()}`);
      const stamp = () => {
        try { localStorage.setItem(alive(id), String(Date.now())); } catch { /* full or off */ }
      };
      stamp();
      setInterval(stamp, TAB_STAMP_MS);
      window.addEventListener("pageshow", (e) => { if (e.persisted) stamp(); });
      document.addEventListener("visibilitychange", () => { if (!document.hidden) stamp(); });
      window.addEventListener("pagehide", () => {
        try { localStorage.removeItem(alive(id)); } catch { /* off */ }
      });
      return id;
    } catch { return "tab"; }
  })();
  const localDrafts = (user) => {
    const key = (id) => `ocrreview:draft:${user}:${id}`;
    const load = (id) => {
      try {
        const stored = JSON.parse(localStorage.getItem(key(id)));
        // One draft, as this browser kept them before they were kept by tab.
        return stored && "text" in stored ? { [tab]: stored } : stored || {};
      } catch { return {}; }
    };
    const store = (id, drafts) => {
      try {
        if (Object.keys(drafts).length) localStorage.setItem(key(id), JSON.stringify(drafts));
        else localStorage.removeItem(key(id));
      } catch { /* full or off */ }
    };
    // Line id -> the other tab whose draft this tab was shown. Reading takes nothing over:
    // a tab cannot tell a closed tab from an open one, and merely showing a page must not
    // move an open tab's text away from it. The shown draft is replaced once this tab writes
    // its own or saves the line.
    const shown = {};
    const withoutShown = (id) => {
      const drafts = load(id);
      if (shown[id] !== undefined) delete drafts[shown[id]];
      return drafts;
    };
    const write = (id, draft) => store(id, { ...withoutShown(id), [tab]: draft });
    const drop = (id) => {
      const drafts = withoutShown(id);
      delete drafts[tab];
      delete shown[id];
      store(id, drafts);
    };
    return {
      read: (id) => {
        const drafts = load(id);
        if (drafts[tab]) return drafts[tab];
        const [other, draft] = Object.entries(drafts).sort(([, a], [, b]) => b.at - a.at)[0] || [];
        if (!draft) return null;
        shown[id] = other;
        return draft;
      },
      write,
      drop,
      // What was typed in a line whose saved text is `saved`: typing undone back to it leaves
      // nothing unsaved.
      keep: (id, draft, saved) => (draft.text === saved ? drop(id) : write(id, draft)),
    };
  };
  // Enter, Escape and Alt keys that confirm an input method's candidate (Chinese, Japanese).
  const composing = (e) => e.isComposing || e.keyCode === 229;
  const mac = /^(Mac|iPhone|iPad)/.test(navigator.platform);
  const isShortcut = (e) => !e.metaKey && e.altKey && (mac ? e.ctrlKey : !e.ctrlKey);
  const relabel = (root) => {
    const forMac = (text) => text.replace(/^Alt(?=\+|$)/, "⌃⌥");
    for (const kbd of root.querySelectorAll("kbd")) {
      const label = forMac(kbd.textContent);
      if (label !== kbd.textContent) kbd.textContent = label;
    }
    for (const titled of root.querySelectorAll("[title^=Alt]")) titled.title = forMac(titled.title);
    for (const note of root.querySelectorAll(".mac-only")) note.hidden = false;
  };
  if (mac) {
    // The editor brings in the next line, and a conflict its buttons, after the page loaded.
    document.addEventListener("DOMContentLoaded", () => {
      relabel(document);
      new MutationObserver((changes) => {
        for (const change of changes) {
          for (const node of change.addedNodes) if (node.querySelectorAll) relabel(node);
        }
      }).observe(document.body, { childList: true, subtree: true });
    });
  }
  // Typing is sent to the server as a draft once the reviewer pauses this long.
  const DRAFT_DELAY_MS = 800;
  // A save that drops the reading, or most of it, asks for a second Enter: select-all and
  // Backspace, or a word typed over a selected line, is a slip far more often than a fix. A
  // third of a line left is a split line's half and more, or a word or two fixed, so anything
  // under 30% is taken for a slip. Counted in code points, as the reviewer sees characters.
  // The warning, or null where the save goes at once; its kind ("empty", "short") is what a
  // second Enter confirms.
  const SHORT_FRACTION = 0.3;
  const dropWarning = (reading, text) => {
    const had = [...reading.trim()].length;
    const kept = [...text.trim()].length;
    if (!had) return null;
    if (!kept) {
      return {
        kind: "empty",
        message: "The line is empty. Enter again saves it with no text (a box with no writing, left out of training); Ctrl+Z brings the text back.",
      };
    }
    if (kept >= had * SHORT_FRACTION) return null;
    return {
      kind: "short",
      message: `You removed most of the reading (${kept} of ${had} characters left). Enter again saves it; Ctrl+Z brings the text back.`,
    };
  };
  return { csrf, post, beacon, refusal, unsavedDraft, localDrafts, composing, mac, isShortcut, DRAFT_DELAY_MS, dropWarning };
})();
