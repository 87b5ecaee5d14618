// Open the real ComfyUI frontend of a local server in Debian's headless Chromium (playwright-core).
// Shared by editor_e2e.mjs (the browser test) and screenshots.mjs (docs and template thumbnails).
import { pathToFileURL } from "node:url";

/**
 * config: {url, chromium (executable), playwright (path of playwright-core's index.mjs), vue (Nodes 2.0 on/off),
 * settings (more ComfyUI settings, optional)}. Returns {browser, page, logs}; the page has the app loaded and
 * `logs` collects console and page errors.
 */
export async function openComfy(config, viewport = { width: 1280, height: 860 }) {
  const settings = { "Comfy.TutorialCompleted": true, "Comfy.Minimap.Visible": false,
    "Comfy.VueNodes.Enabled": !!config.vue, ...config.settings };
  for (const [id, value] of Object.entries(settings)) { // per-user settings live on the server
    const r = await fetch(`${config.url}/settings/${id}`, { method: "POST", body: JSON.stringify(value) });
    if (!r.ok) throw new Error(`setting ${id}: HTTP ${r.status}`);
  }
  const { chromium } = await import(pathToFileURL(config.playwright).href);
  const browser = await chromium.launch({
    executablePath: config.chromium,
    // offline machine: no background traffic to Google; everything stays on 127.0.0.1
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-default-apps"],
  });
  const logs = [];
  const page = await browser.newPage({ viewport });
  await page.addInitScript(() => {
    localStorage.setItem("vueNodesBannerDismissed", "true");
    // Tag each console warning and error with whether the pack's own JS is on its call stack: a deprecation
    // warning is printed by the frontend's code, on behalf of whoever called the deprecated API.
    for (const level of ["warn", "error"]) {
      const original = console[level].bind(console);
      console[level] = (...args) => {
        const ours = /\/extensions\/[^/]*dragon[^/]*\//i.test(new Error().stack ?? "");
        original(...(ours ? ["[from the pack]", ...args] : args));
      };
    }
  });
  page.on("console", (m) => logs.push(`${m.type()}: ${m.text()} ${m.location().url ?? ""}`));
  page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}\n${e.stack}`));
  await page.goto(config.url, { waitUntil: "domcontentloaded" });
  await page.waitForFunction(() => window.app?.graph && window.app?.canvas, null, { timeout: 120000 });
  await page.waitForTimeout(1000);
  return { browser, page, logs };
}

/** Load a UI-format workflow (into a tab called `name`) and wait until every points editor shows its picture. */
export async function loadWorkflow(page, workflow, name = null) {
  await page.evaluate(async ([wf, name]) => { await window.app.loadGraphData(wf, true, false, name); },
    [workflow, name]);
  await page.waitForFunction(() => window.app.graph.nodes.filter((n) => n.type === "DragonPointsEditor")
    .every((n) => n.dragonPointsEditor?.editor.image?.complete), null, { timeout: 30000 });
  await page.waitForTimeout(500);
}

/** Zoom the canvas to `scale` (or to fit every node when omitted), centred on `nodeId` or on the graph. */
export async function frame(page, { scale, nodeId } = {}) {
  await page.evaluate(({ scale, nodeId }) => {
    const { app } = window;
    const nodes = nodeId == null ? app.graph.nodes : [app.graph.getNodeById(nodeId)];
    const x0 = Math.min(...nodes.map((n) => n.pos[0]));
    const y0 = Math.min(...nodes.map((n) => n.pos[1] - 40)); // title bar
    const x1 = Math.max(...nodes.map((n) => n.pos[0] + n.size[0]));
    const y1 = Math.max(...nodes.map((n) => n.pos[1] + n.size[1]));
    const left = 70; // the side bar and the top bar cover this much of the canvas
    const top = 100;
    const w = app.canvas.canvas.clientWidth - left;
    const h = app.canvas.canvas.clientHeight - top;
    const s = scale ?? Math.min(w / (x1 - x0 + 60), h / (y1 - y0 + 60));
    app.canvas.ds.scale = s;
    app.canvas.ds.offset[0] = (left + w / 2) / s - (x0 + x1) / 2;
    app.canvas.ds.offset[1] = (top + h / 2) / s - (y0 + y1) / 2;
    app.canvas.setDirty(true, true);
  }, { scale, nodeId });
  await page.waitForTimeout(800); // DOM widgets follow the canvas transform on the next frames
}

/** Zoom to `scale` with the drawing canvas of editor node `editorId` in the middle of the free area. */
export async function zoomOnEditor(page, scale, editorId) {
  await frame(page, { scale, nodeId: editorId });
  await page.evaluate((id) => {
    const { app } = window;
    const r = app.graph.getNodeById(id).dragonPointsEditor.editor.canvas.getBoundingClientRect();
    const c = app.canvas.canvas.getBoundingClientRect();
    const s = app.canvas.ds.scale;
    app.canvas.ds.offset[0] += (c.left + (c.width + 70) / 2 - (r.left + r.width / 2)) / s; // 70: the side bar
    app.canvas.ds.offset[1] += (c.top + (c.height + 100) / 2 - (r.top + r.height / 2)) / s; // 100: the top bar
    app.canvas.setDirty(true, true);
  }, editorId);
  await page.waitForTimeout(800);
}

/** Where the editor node `editorId` draws its picture on screen (contained in its canvas, centred). */
export async function pictureRect(page, editorId) {
  return page.evaluate((id) => {
    const { editor } = window.app.graph.getNodeById(id).dragonPointsEditor;
    const r = editor.canvas.getBoundingClientRect();
    const { width, height } = editor.state();
    const k = Math.min(r.width / width, r.height / height);
    return { x: r.x + (r.width - width * k) / 2, y: r.y + (r.height - height * k) / 2, width: width * k,
      height: height * k };
  }, editorId);
}
