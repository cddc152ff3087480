// The review pages' shortcut modifier. Alt elsewhere; on a Mac, Option types characters
// (Option+3 is £, Option+Fn+Delete deletes a word) and Control edits text (Control+H deletes
// back, Control+T transposes, Control+Up opens Mission Control), so there the shortcuts take
// Control+Option, which does neither, and the labels say so.
window.reviewKeys = (() => {
  "use strict";
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
  return { mac, isShortcut };
})();
