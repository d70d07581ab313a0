// aniface's admin page: the token stays in this tab (sessionStorage) and goes in a header, never a URL.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const token = $("token");
  token.value = sessionStorage.getItem("aniface-admin-token") || "";

  function say(text) { $("status").textContent = text; }
  function fail(text) { $("error").textContent = text; $("error").hidden = !text; }

  async function get(path) {
    sessionStorage.setItem("aniface-admin-token", token.value);
    const response = await fetch(path, { headers: { Authorization: `Bearer ${token.value}` } });
    if (!response.ok) {
      let message = `The server answered ${response.status}.`;
      try { message = (await response.json()).error.message; } catch (e) { /* not JSON */ }
      throw new Error(message);
    }
    return response;
  }

  function cell(row, text) { const td = document.createElement("td"); td.textContent = text; row.append(td); return td; }

  $("token-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    fail("");
    say("Loading\u2026");
    try {
      const { corrections } = await (await get("/api/admin/corrections?limit=100")).json();
      const rows = $("rows");
      rows.textContent = "";
      for (const c of corrections) {
        const row = document.createElement("tr");
        const face = cell(row, "");
        const img = document.createElement("img");
        img.alt = `Face ${c.face_number}${c.manual ? " (drawn by hand)" : ""}`;
        face.append(img);
        get(c.crop_url).then((r) => r.blob()).then((b) => { img.src = URL.createObjectURL(b); }).catch(() => {});
        cell(row, c.verdict === "is" ? (c.display_name || c.name) : "not the bot's guess");
        cell(row, c.predicted_display_name || "unknown");
        cell(row, `${c.platform} (${c.via})`);
        cell(row, c.at ? new Date(c.at).toLocaleString() : "");
        rows.append(row);
      }
      $("table").hidden = !corrections.length;
      say(corrections.length ? `${corrections.length} recent corrections.` : "No corrections yet.");
    } catch (e) {
      say("");
      fail(e.message);
    }
  });

  $("export").addEventListener("click", async () => {
    if (!token.reportValidity()) return;
    fail("");
    say("Preparing the export\u2026");
    try {
      const response = await get("/api/admin/export");
      const blob = await response.blob();
      const name = (/filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "") || [])[1]
        || "aniface-export.zip";
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = name;
      document.body.append(link);
      link.click();
      link.remove();
      say(`Downloaded ${name} (${response.headers.get("X-Aniface-Faces") || "?"} faces).`);
    } catch (e) {
      say("");
      fail(e.message);
    }
  });
})();
