// Find and replace (review/find_replace.py). On the search results: lines ticked on one page
// of results are kept, in this tab, while the person pages through the others, and all go
// with the form. On the preview: the count of hits left ticked, and the button off at none.
(() => {
  "use strict";

  const form = document.getElementById("replace-form");
  if (form) {
    // One set per search: the same words and filters, whichever page of results.
    const params = new URLSearchParams(location.search);
    params.delete("cursor");
    params.sort();
    const key = `ocrreview-replace:${location.pathname}?${params}`;
    const stored = () => new Set(JSON.parse(sessionStorage.getItem(key) || "[]"));
    const ticked = stored();
    const boxes = [...document.querySelectorAll('input[name="line_ids"][form="replace-form"]')];
    const all = form.querySelector('input[name="all"]');
    const carried = document.getElementById("replace-carried");
    const here = new Set(boxes.map((box) => box.value));
    const show = () => {
      const elsewhere = [...ticked].filter((id) => !here.has(id)).length;
      carried.textContent = elsewhere
        ? `${elsewhere} line${elsewhere === 1 ? "" : "s"} ticked on other pages of results.`
        : "";
    };
    for (const box of boxes) {
      if (ticked.has(box.value)) box.checked = true;
      box.addEventListener("change", () => {
        if (box.checked) ticked.add(box.value);
        else ticked.delete(box.value);
        sessionStorage.setItem(key, JSON.stringify([...ticked]));
        if (box.checked && all) all.checked = false;
      });
    }
    if (ticked.size && all) all.checked = false;
    all?.addEventListener("change", () => {
      if (!all.checked) return;
      // All hits: the lines ticked anywhere no longer count.
      ticked.clear();
      sessionStorage.removeItem(key);
      for (const box of boxes) box.checked = false;
      show();
    });
    form.addEventListener("submit", () => {
      if (!all?.checked) {
        for (const id of ticked) {
          if (here.has(id)) continue;
          const input = document.createElement("input");
          Object.assign(input, { type: "hidden", name: "line_ids", value: id });
          form.append(input);
        }
      }
      // The preview is where hits are unticked from now on.
      sessionStorage.removeItem(key);
    });
    show();
  }

  const confirm = document.getElementById("replace-confirm");
  if (confirm) {
    const hits = [...confirm.querySelectorAll('input[name="hits"]')];
    const count = document.getElementById("replace-count");
    const button = document.getElementById("replace-apply");
    const update = () => {
      const on = hits.filter((hit) => hit.checked).length;
      count.textContent = `${on} of ${hits.length} ticked`;
      button.disabled = on === 0;
      for (const hit of hits) hit.closest(".replace-hit").classList.toggle("unticked", !hit.checked);
    };
    for (const hit of hits) hit.addEventListener("change", update);
    update();
  }
})();
