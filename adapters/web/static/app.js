// aniface's page: pick, paste or drop a picture; see the faces; draw a missed one; correct a name.
// Hand-written, no build step and nothing from elsewhere. Text from the server is only ever set
// as textContent, never as HTML.
"use strict";

(() => {
  // The annotated picture's palette (recognizer/annotate.py), so a card matches its box.
  const PALETTE = ["#e6194b", "#0082c8", "#ffe119", "#3cb44b", "#f58230",
                   "#911eb4", "#46f0f0", "#f032e6", "#d2f53c", "#008080"];
  const MIN_BOX = 8; // picture pixels

  const $ = (id) => document.getElementById(id);
  const el = {
    file: $("file"), drop: $("drop"), status: $("status"), error: $("error"), result: $("result"),
    stage: $("stage"), picture: $("picture"), overlay: $("overlay"), caption: $("caption"),
    faces: $("faces"), draw: $("draw"), known: $("known-characters"),
  };
  const SVG = "http://www.w3.org/2000/svg";

  const state = {
    file: null, localUrl: null, localSize: null, width: 0, height: 0,
    canName: true, shown: 0, drawing: false, busy: false, sketch: null, start: null, keyBox: null,
  };

  // --- helpers ----------------------------------------------------------------------------------

  function colourFor(number) { return PALETTE[(number - 1) % PALETTE.length]; }

  function textOn(hex) { // black or white, whichever contrasts more (WCAG)
    const lin = (c) => { c /= 255; return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    const [r, g, b] = [1, 3, 5].map((i) => lin(parseInt(hex.slice(i, i + 2), 16)));
    const l = 0.2126 * r + 0.7152 * g + 0.0722 * b;
    return (l + 0.05) / 0.05 > 1.05 / (l + 0.05) ? "#000000" : "#ffffff";
  }

  // The page's words in the visitor's language: the server puts them in the page (adapters/web/page.py),
  // keyed by the English; "{name}" placeholders are filled from `values`.
  const WORDS = (() => {
    try { return JSON.parse(document.getElementById("words").textContent); } catch (e) { return {}; }
  })();
  function _(english, values = {}) {
    return (WORDS[english] || english).replace(/\{(\w+)\}/g, (m, key) => (key in values ? values[key] : m));
  }
  const LANG = document.documentElement.lang || "en";

  function percent(p) {
    let v = p;
    if (v >= 0.995 && v < 1) v = 0.99;
    const format = new Intl.NumberFormat(LANG, { style: "percent", maximumFractionDigits: 0 });
    if (v > 0 && v < 0.01) return "<" + format.format(0.01);
    return format.format(v);
  }

  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function setStatus(text, busy = false) {
    el.status.textContent = text;
    el.status.classList.toggle("busy", busy);
  }

  function showError(text) {
    el.error.textContent = text;
    el.error.hidden = !text;
  }

  async function api(path, options = {}) {
    let response;
    try {
      response = await fetch(path, { credentials: "same-origin", ...options });
    } catch (e) {
      throw new Error(_("The server can't be reached. Is aniface still running?"));
    }
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      const message = body && body.error && body.error.message;
      throw new Error(message ? capitalise(message) : _("The server answered {status}.", { status: response.status }));
    }
    return body;
  }

  function capitalise(text) {
    const t = text.endsWith(".") || text.endsWith("?") || text.endsWith("!") ? text : `${text}.`;
    return t.charAt(0).toUpperCase() + t.slice(1);
  }

  function loadImage(url) {
    return new Promise((resolve) => {
      const probe = new Image();
      probe.onload = () => resolve({ width: probe.naturalWidth, height: probe.naturalHeight });
      probe.onerror = () => resolve(null);
      probe.src = url;
    });
  }

  function setBusy(busy) {
    state.busy = busy;
    el.draw.disabled = busy;
    el.result.setAttribute("aria-busy", busy ? "true" : "false");
  }

  // --- choosing a picture -----------------------------------------------------------------------

  async function pick(file) {
    if (!file || state.busy) return;
    state.file = file;
    if (state.localUrl) URL.revokeObjectURL(state.localUrl);
    state.localUrl = URL.createObjectURL(file);
    stopDrawing();
    showError("");
    el.faces.textContent = "";
    el.overlay.textContent = "";
    state.shown = 0;
    setBusy(true);
    setStatus(_("Looking for faces\u2026"), true);
    const [local, answer] = await Promise.all([
      loadImage(state.localUrl),
      api("/api/identify", { method: "POST", body: uploadForm() }).catch((e) => e),
    ]);
    state.localSize = local;
    setBusy(false);
    if (answer instanceof Error) {
      setStatus("");
      showError(answer.message);
      return;
    }
    await showAnswer(answer);
  }

  function uploadForm(boxes) {
    const form = new FormData();
    form.append("image", state.file, state.file.name || "pasted-picture.png");
    if (boxes) form.append("boxes", JSON.stringify(boxes));
    return form;
  }

  async function showAnswer(answer) {
    state.canName = answer.can_name;
    let src = null;
    if (answer.kind === "faces" && answer.image) {
      state.width = answer.image.width;
      state.height = answer.image.height;
      src = answer.annotated_url || (state.localSize ? state.localUrl : null);
    } else if (state.localSize) {
      state.width = state.localSize.width;
      state.height = state.localSize.height;
      src = state.localUrl;
    }
    if (!src) {
      el.result.hidden = true;
      setStatus(answer.kind === "faces" ? "" : answer.message);
      if (answer.kind !== "faces") {
        showError(_("Your browser can't show this kind of file, so a box can't be drawn on it. Try a PNG or JPEG screenshot of it."));
      }
      return;
    }
    el.result.hidden = false;
    el.drop.classList.add("compact"); // room for the answer, on a phone above all
    document.querySelector(".drop-text").textContent = _("Another picture? Drop, paste, or");
    await setPicture(src);
    el.overlay.setAttribute("viewBox", `0 0 ${state.width} ${state.height}`);
    el.overlay.setAttribute("preserveAspectRatio", "none");
    for (const face of answer.faces) addFace(face);
    const n = answer.faces.length;
    if (answer.kind === "faces" && n === 1 && answer.faces[0].guessed) {
      setStatus(_("I couldn't find a face for sure; the box is a guess at the likeliest place. Is it a face? Tell me who it is, or draw a box around the face."));
    } else if (answer.kind === "faces") {
      setStatus(_("Faces found: {count}. Point at a card or a face to see which is which; missed one? Draw a box around it.", { count: n }));
    } else {
      setStatus(answer.message + "\n" + _("Draw a box around a face to have it named."));
    }
    updateCaption();
  }

  function setPicture(src) {
    return new Promise((resolve) => {
      el.picture.onload = () => resolve();
      el.picture.onerror = () => resolve();
      el.picture.src = src;
    });
  }

  function updateCaption() {
    const n = state.shown;
    el.picture.alt = n ? _("Your picture, with numbered face boxes: {count}", { count: n }) : _("Your picture");
    el.caption.textContent = n ? _("Numbers on the picture match the cards.") : "";
  }

  // --- faces ------------------------------------------------------------------------------------

  function addFace(face) {
    const shown = ++state.shown;
    const colour = colourFor(face.manual ? shown : face.number);
    const card = make("li", "face");
    card.id = `face-${face.id}`;
    card.dataset.faceId = String(face.id);
    card.style.setProperty("--c", colour);
    card.style.setProperty("--on-c", textOn(colour));

    const title = make("h3");
    const titleId = `face-title-${face.id}`;
    title.id = titleId;
    const num = make("span", "num", String(shown));
    num.setAttribute("aria-label", _("Face {number}:", { number: shown }));
    title.append(num);
    const who = make("span", "who", face.guessed ? _("No face found for sure")
      : face.display_name || (state.canName ? _("Not sure") : _("Face {number}", { number: shown })));
    title.append(who);
    if (face.manual) title.append(make("span", "tagline-small", _("(drawn by you)")));
    if (face.guessed) title.append(make("span", "tagline-small", _("(a guess at the likeliest place)")));
    card.append(title);
    card.setAttribute("aria-labelledby", titleId);

    if (face.candidates.length) {
      const list = make("ul", "candidates");
      list.setAttribute("aria-label", _("Best guesses"));
      for (const c of face.candidates) {
        const row = make("li", "candidate");
        row.append(make("span", "cname", c.display_name));
        const bar = make("span", "bar");
        bar.setAttribute("aria-hidden", "true");
        const fill = make("span", "fill");
        fill.style.width = `${Math.max(0, Math.min(100, c.probability * 100)).toFixed(1)}%`;
        bar.append(fill);
        row.append(bar, make("span", "pct", percent(c.probability)));
        list.append(row);
      }
      card.append(list);
    } else {
      card.append(make("p", "no-candidates", state.canName
        ? _("I don't know this one yet. Tell me who it is and I'll learn.")
        : _("No model is loaded, so I can find faces but not name them. Tell me who it is and I'll learn.")));
    }

    const actions = make("div", "actions");
    const ack = make("p", "ack");
    ack.setAttribute("role", "status");
    if (face.name && face.candidates.length && face.candidates[0].name === face.name) {
      const right = make("button", "button small", _("Right, it's {name}", { name: face.display_name }));
      right.type = "button";
      right.addEventListener("click", () => correct(face, { candidate: 1 }, card, ack));
      actions.append(right);
    }
    const form = make("form", "correct");
    const inputId = `name-${face.id}`;
    const label = make("label", "", face.name ? _("Wrong? It is\u2026") : _("Who is it?"));
    label.htmlFor = inputId;
    const input = make("input");
    Object.assign(input, { id: inputId, type: "text", maxLength: 64, required: true, autocomplete: "off",
                           spellcheck: false, placeholder: _("Character name") });
    input.setAttribute("list", "known-characters");
    const send = make("button", "button small primary", _("Send"));
    send.type = "submit";
    form.append(label, input, send);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const name = input.value.trim();
      if (name) correct(face, { name }, card, ack);
    });
    actions.append(form);
    card.append(actions, ack);

    for (const [type, on] of [["mouseenter", true], ["mouseleave", false], ["focusin", true], ["focusout", false]]) {
      card.addEventListener(type, () => highlight(face.id, on));
    }
    el.faces.append(card);
    drawBox(face, shown, colour);
  }

  function drawBox(face, shown, colour) {
    const [x, y, w, h] = face.box;
    const rect = document.createElementNS(SVG, "rect");
    for (const [k, v] of Object.entries({ x, y, width: w, height: h })) rect.setAttribute(k, v);
    rect.setAttribute("class", face.manual ? "box manual" : "box");
    rect.style.setProperty("--c", colour);
    rect.dataset.faceId = String(face.id);
    rect.addEventListener("mouseenter", () => highlight(face.id, true));
    rect.addEventListener("mouseleave", () => highlight(face.id, false));
    rect.addEventListener("click", () => {
      if (state.drawing) return;
      highlight(face.id, true);
      const card = $(`face-${face.id}`);
      card.scrollIntoView({ block: "nearest", behavior: "smooth" });
    });
    el.overlay.append(rect);
    if (face.manual) { // the annotated picture has no number for a box drawn later: a badge like its own
      const size = Math.max(14, Math.round(Math.max(state.width, state.height) / 40));
      const badgeW = size * (0.9 + 0.62 * String(shown).length);
      const badgeH = size * 1.35;
      const top = y >= badgeH ? y - badgeH : y;
      const badge = document.createElementNS(SVG, "rect");
      for (const [k, v] of Object.entries({ x, y: top, width: badgeW, height: badgeH, rx: size * 0.2 })) {
        badge.setAttribute(k, v);
      }
      badge.setAttribute("class", "badge");
      badge.setAttribute("fill", colour);
      const tag = document.createElementNS(SVG, "text");
      tag.setAttribute("class", "tag");
      tag.setAttribute("x", x + badgeW / 2);
      tag.setAttribute("y", top + badgeH / 2);
      tag.setAttribute("text-anchor", "middle");
      tag.setAttribute("dominant-baseline", "central");
      tag.setAttribute("font-size", size);
      tag.setAttribute("fill", textOn(colour));
      tag.textContent = String(shown);
      el.overlay.append(badge, tag);
    }
  }

  function highlight(faceId, on) {
    for (const node of document.querySelectorAll(".face.active, .overlay .box.active")) {
      node.classList.remove("active");
    }
    if (!on) return;
    const card = $(`face-${faceId}`);
    const rect = el.overlay.querySelector(`.box[data-face-id="${faceId}"]`);
    if (card) card.classList.add("active");
    if (rect) rect.classList.add("active");
  }

  async function correct(face, body, card, ack) {
    const buttons = card.querySelectorAll("button, input");
    buttons.forEach((b) => { b.disabled = true; });
    ack.className = "ack";
    ack.textContent = _("Sending\u2026");
    const old = card.querySelector(".suggestions");
    if (old) old.remove();
    try {
      const answer = await api("/api/corrections", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ face_id: face.id, ...body }),
      });
      ack.textContent = answer.message;
      ack.className = `ack ${answer.ok ? "ok" : "bad"}`;
      if (answer.ok && body.name) addKnown(body.name);
      if (answer.suggestions && answer.suggestions.length) {
        const box = make("div", "suggestions");
        for (const name of answer.suggestions) {
          const b = make("button", "button small", name);
          b.type = "button";
          b.addEventListener("click", () => correct(face, { name }, card, ack));
          box.append(b);
        }
        ack.after(box);
      }
    } catch (e) {
      ack.textContent = e.message;
      ack.className = "ack bad";
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  // --- drawing a box ----------------------------------------------------------------------------

  function startDrawing() {
    state.drawing = true;
    el.draw.setAttribute("aria-pressed", "true");
    el.stage.classList.add("drawing");
    // the keyboard way: the picture takes the focus; arrows move a box, Shift+arrows resize it
    el.overlay.removeAttribute("aria-hidden");
    el.overlay.setAttribute("tabindex", "0");
    el.overlay.setAttribute("role", "application");
    el.overlay.setAttribute("aria-label", _("Picture: drag across a face, or use the arrow keys to move the box, Shift with the arrow keys to resize it, Enter to send it, Escape to cancel"));
    setStatus(_("Drag across the face you want named. Keyboard: arrows move the box, Shift+arrows resize it, Enter sends it, Esc cancels."));
  }

  function stopDrawing() {
    state.drawing = false;
    el.draw.setAttribute("aria-pressed", "false");
    el.stage.classList.remove("drawing");
    el.overlay.setAttribute("aria-hidden", "true");
    for (const name of ["tabindex", "role", "aria-label"]) el.overlay.removeAttribute(name);
    dropSketch();
    state.keyBox = null;
  }

  function dropSketch() {
    if (state.sketch) state.sketch.remove();
    state.sketch = null;
    state.start = null;
  }

  function showSketch(b) {
    if (!state.sketch) {
      state.sketch = document.createElementNS(SVG, "rect");
      state.sketch.setAttribute("class", "sketch");
      el.overlay.append(state.sketch);
    }
    for (const [k, v] of Object.entries({ x: b.x, y: b.y, width: b.w, height: b.h })) state.sketch.setAttribute(k, v);
  }

  function finishBox(b) {
    dropSketch();
    if (b.w < MIN_BOX || b.h < MIN_BOX) {
      setStatus(_("That box is too small: drag across the whole face."));
      return;
    }
    stopDrawing();
    el.draw.focus();
    sendBox([Math.round(b.x), Math.round(b.y), Math.round(b.w), Math.round(b.h)]);
  }

  el.overlay.addEventListener("focus", () => {
    if (!state.drawing || state.keyBox || state.start) return; // a drag gives the focus too
    const side = Math.max(MIN_BOX, Math.round(Math.min(state.width, state.height) / 4));
    state.keyBox = { x: (state.width - side) / 2, y: (state.height - side) / 2, w: side, h: side };
    showSketch(state.keyBox);
  });

  el.overlay.addEventListener("keydown", (event) => {
    if (!state.drawing || !state.keyBox || state.busy) return;
    const b = state.keyBox;
    const step = Math.max(1, Math.round(Math.max(state.width, state.height) / 50));
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      finishBox({ ...b });
      return;
    }
    if (!(event.key in moves)) return;
    event.preventDefault();
    const [dx, dy] = moves[event.key];
    if (event.shiftKey) {
      b.w = Math.max(MIN_BOX, Math.min(state.width - b.x, b.w + dx));
      b.h = Math.max(MIN_BOX, Math.min(state.height - b.y, b.h + dy));
    } else {
      b.x = Math.max(0, Math.min(state.width - b.w, b.x + dx));
      b.y = Math.max(0, Math.min(state.height - b.h, b.y + dy));
    }
    showSketch(b);
  });

  function toPicture(event) {
    const r = el.overlay.getBoundingClientRect();
    const x = ((event.clientX - r.left) / r.width) * state.width;
    const y = ((event.clientY - r.top) / r.height) * state.height;
    return { x: Math.max(0, Math.min(state.width, x)), y: Math.max(0, Math.min(state.height, y)) };
  }

  function sketchBox(a, b) {
    return { x: Math.min(a.x, b.x), y: Math.min(a.y, b.y), w: Math.abs(a.x - b.x), h: Math.abs(a.y - b.y) };
  }

  el.overlay.addEventListener("pointerdown", (event) => {
    if (!state.drawing || state.busy || event.button > 0) return;
    event.preventDefault();
    el.overlay.setPointerCapture(event.pointerId);
    dropSketch();
    state.keyBox = null;
    state.start = toPicture(event);
    showSketch({ ...state.start, w: 0, h: 0 });
  });

  el.overlay.addEventListener("pointermove", (event) => {
    if (!state.sketch || !state.start) return;
    showSketch(sketchBox(state.start, toPicture(event)));
  });

  el.overlay.addEventListener("pointerup", (event) => {
    if (!state.sketch || !state.start) return;
    finishBox(sketchBox(state.start, toPicture(event)));
  });

  el.overlay.addEventListener("pointercancel", dropSketch);

  async function sendBox(box) {
    setBusy(true);
    showError("");
    setStatus(_("Naming the face in your box\u2026"), true);
    try {
      const answer = await api("/api/identify", { method: "POST", body: uploadForm([box]) });
      for (const face of answer.faces) addFace({ ...face, manual: true });
      updateCaption();
      const face = answer.faces[0];
      setStatus(face && face.display_name ? _("Your box: {name}.", { name: face.display_name }) : _("Your box is listed below."));
      if (face) highlight(face.id, true);
    } catch (e) {
      setStatus("");
      showError(e.message);
    } finally {
      setBusy(false);
    }
  }

  el.draw.addEventListener("click", () => (state.drawing ? stopDrawing() : startDrawing()));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && state.drawing) {
      stopDrawing();
      setStatus(_("Drawing cancelled."));
    }
  });

  // --- file input, drop, paste ------------------------------------------------------------------

  el.file.addEventListener("change", () => {
    const file = el.file.files && el.file.files[0];
    el.file.value = "";
    pick(file);
  });

  let dragDepth = 0;
  document.addEventListener("dragenter", (event) => {
    if (!event.dataTransfer || !Array.from(event.dataTransfer.types).includes("Files")) return;
    dragDepth += 1;
    el.drop.classList.add("over");
  });
  document.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) el.drop.classList.remove("over");
  });
  document.addEventListener("dragover", (event) => { event.preventDefault(); });
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    dragDepth = 0;
    el.drop.classList.remove("over");
    const file = event.dataTransfer && event.dataTransfer.files && event.dataTransfer.files[0];
    if (file) pick(file);
  });

  document.addEventListener("paste", (event) => {
    const items = event.clipboardData ? Array.from(event.clipboardData.items) : [];
    const item = items.find((i) => i.kind === "file");
    if (!item) return;
    event.preventDefault();
    pick(item.getAsFile());
  });

  // --- known characters, for autocompletion -----------------------------------------------------

  const known = new Set();
  function addKnown(name) {
    if (known.has(name.toLowerCase())) return;
    known.add(name.toLowerCase());
    const option = document.createElement("option");
    option.value = name;
    el.known.append(option);
  }

  api("/api/characters").then((answer) => answer.characters.forEach(addKnown)).catch(() => {});

  // --- the language picker: a choice reloads the page in that language (remembered in a cookie) ---------

  const languageForm = document.getElementById("language-form");
  if (languageForm) {
    document.getElementById("language").addEventListener("change", () => languageForm.submit());
  }
})();
