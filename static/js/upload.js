// Upload with drag and drop and a progress bar per file. All files go in one request so
// that PAGE/ALTO files meet their images; a file's bar follows the bytes sent of its part.
(function () {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = form.querySelector('input[type="file"]');
  const zone = document.getElementById("dropzone");
  const list = document.getElementById("upload-files");
  const results = document.getElementById("upload-results");
  let chosen = [];
  // Dropped files never reach the input, so the script checks for files itself.
  input.required = false;

  function show() {
    list.replaceChildren(
      ...chosen.map((file) => {
        const item = document.createElement("li");
        const name = document.createElement("span");
        name.textContent = `${file.name} (${(file.size / 1048576).toFixed(1)} MB)`;
        const bar = document.createElement("progress");
        bar.max = 100;
        bar.value = 0;
        bar.setAttribute("aria-label", file.name);
        item.append(name, bar);
        return item;
      }),
    );
  }

  input.addEventListener("change", () => {
    chosen = Array.from(input.files);
    show();
  });
  ["dragenter", "dragover"].forEach((type) =>
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      zone.classList.add("over");
    }),
  );
  ["dragleave", "drop"].forEach((type) =>
    zone.addEventListener(type, () => zone.classList.remove("over")),
  );
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    chosen = chosen.concat(Array.from(event.dataTransfer.files));
    show();
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!chosen.length) return;
    // Django refuses a request with more files before any view sees it, with a bare 400.
    if (chosen.length > Number(form.dataset.maxFiles)) {
      results.textContent = form.dataset.tooMany;
      return;
    }
    const data = new FormData(form);
    data.delete("files");
    chosen.forEach((file) => data.append("files", file));
    const bars = Array.from(list.querySelectorAll("progress"));
    const ends = [];
    chosen.reduce((sum, file) => (ends.push(sum + file.size), sum + file.size), 0);
    const request = new XMLHttpRequest();
    request.open("POST", form.action || window.location.href);
    request.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    request.upload.addEventListener("progress", (e) => {
      const sent = (e.loaded / e.total) * ends[ends.length - 1];
      bars.forEach((bar, i) => {
        const start = i ? ends[i - 1] : 0;
        const size = ends[i] - start || 1;
        bar.value = Math.max(0, Math.min(100, ((sent - start) / size) * 100));
      });
    });
    request.addEventListener("load", () => {
      bars.forEach((bar) => (bar.value = 100));
      results.innerHTML = request.responseText;
      if (request.status < 400) {
        // Kept after a refused upload, so the files need not be chosen again.
        chosen = [];
        form.reset();
      }
    });
    request.addEventListener("error", () => {
      results.textContent = "The upload failed: the connection was lost.";
    });
    form.querySelector("button[type=submit]").disabled = true;
    request.addEventListener("loadend", () => {
      form.querySelector("button[type=submit]").disabled = false;
    });
    request.send(data);
  });
})();
