// Drives the real ComfyUI frontend in headless Chromium for tests/test_browser.py.
//
//   node editor_e2e.mjs '<json config>'
//
// config: {url, chromium, playwright, vue, workflow (UI JSON with one DragonPointsEditor), overrides
// ({nodeType: {widget: value}}), zoom, screenshot, runTimeoutMs, compare ({name: UI workflow}: converted with the
// frontend's own graphToPrompt)}. Prints one JSON line with what it saw; the Python test asserts on it.
import { frame, loadWorkflow, openComfy, zoomOnEditor } from "./comfy_page.mjs";

const config = JSON.parse(process.argv[2]);
const result = {};

async function history() {
  return (await fetch(`${config.url}/history`)).json();
}

/** The editor canvas on screen, the drawing's size and its state. */
async function editorView(page) {
  return page.evaluate(() => {
    const node = window.app.graph.nodes.find((n) => n.type === "DragonPointsEditor");
    const { editor } = node.dragonPointsEditor;
    const r = editor.canvas.getBoundingClientRect();
    const state = JSON.parse(node.widgets.find((w) => w.name === "editor_state").value);
    return { rect: { x: r.x, y: r.y, width: r.width, height: r.height }, state,
      image: [editor.image.naturalWidth, editor.image.naturalHeight] };
  });
}

/** Screen position of image pixel (x, y): the picture is contained in the canvas and centred. */
function onScreen(view, [x, y]) {
  const { rect, state: { width, height } } = view;
  const k = Math.min(rect.width / width, rect.height / height);
  return [rect.x + (rect.width - width * k) / 2 + (x + 0.5) * k, rect.y + (rect.height - height * k) / 2 + (y + 0.5) * k];
}

async function drag(page, view, from, to) {
  const a = onScreen(view, from);
  const b = onScreen(view, to);
  await page.mouse.move(...a);
  await page.mouse.down();
  await page.mouse.move((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, { steps: 4 });
  await page.mouse.move(...b, { steps: 4 });
  await page.mouse.up();
  await page.waitForTimeout(150);
  return (await editorView(page)).state;
}

async function press(page, label) {
  await page.locator(".dragon-points-editor button", { hasText: label }).first().click();
  await page.waitForTimeout(150);
  return (await editorView(page)).state;
}

async function runFromTheUi(page) {
  const before = new Set(Object.keys(await history()));
  await page.getByRole("button", { name: "Run", exact: true }).first().click();
  const deadline = Date.now() + config.runTimeoutMs;
  while (Date.now() < deadline) {
    const h = await history();
    const id = Object.keys(h).find((k) => !before.has(k) && ["success", "error"].includes(h[k].status?.status_str));
    if (id) return h[id];
    await page.waitForTimeout(500);
  }
  throw new Error(`the queued workflow did not finish in ${config.runTimeoutMs} ms`);
}

async function scenario(page) {
  await loadWorkflow(page, config.workflow);
  const editorId = await page.evaluate((overrides) => {
    for (const node of window.app.graph.nodes) {
      for (const [name, value] of Object.entries(overrides[node.type] ?? {})) {
        node.widgets.find((w) => w.name === name).value = value;
      }
    }
    return window.app.graph.nodes.find((n) => n.type === "DragonPointsEditor").id;
  }, config.overrides);
  result.vueNodeRendered = await page.evaluate((id) => !!document.querySelector(`[data-node-id="${id}"]`), editorId);
  await zoomOnEditor(page, 1, editorId);
  let view = await editorView(page);
  result.loaded = { image: view.image, state: view.state };
  const { width: w, height: h } = view.state;
  const at = (fx, fy) => [Math.round(w * fx), Math.round(h * fy)];
  const steps = [];
  const step = (name, zoom, expected, state) => steps.push({ name, zoom, expected, state });
  step("draw", 1, [...at(0.25, 0.5), ...at(0.6, 0.4)], await drag(page, view, at(0.25, 0.5), at(0.6, 0.4)));
  await zoomOnEditor(page, config.zoom, editorId); // pixel coordinates must not depend on the zoom
  view = await editorView(page);
  step("draw", config.zoom, [...at(0.7, 0.75), ...at(0.85, 0.3)], await drag(page, view, at(0.7, 0.75), at(0.85, 0.3)));
  step("move target", config.zoom, at(0.9, 0.9), await drag(page, view, at(0.85, 0.3), at(0.9, 0.9)));
  step("undo", config.zoom, null, await press(page, "Undo"));
  await press(page, "Brush");
  step("paint", config.zoom, [...at(0.2, 0.2), ...at(0.4, 0.3)], await drag(page, view, at(0.2, 0.2), at(0.4, 0.3)));
  await press(page, "Arrows");
  // select the first mouse arrow by clicking its middle, then the Delete key removes it (and not the node)
  await page.mouse.click(...onScreen(view, at(0.425, 0.45)));
  await page.keyboard.press("Delete");
  await page.waitForTimeout(150);
  step("delete", config.zoom, null, (await editorView(page)).state);
  result.editorStillThere = await page.evaluate((id) => !!window.app.graph.getNodeById(id), editorId);
  result.steps = steps;
  result.run = await runFromTheUi(page);
  await frame(page, { scale: 0.8, nodeId: editorId });
  await page.screenshot({ path: config.screenshot });
}

const { browser, page, logs } = await openComfy(config, { width: 1280, height: 1000 });
try {
  result.vueSetting = await page.evaluate(() => window.app.extensionManager.setting.get("Comfy.VueNodes.Enabled"));
  result.frontendPrompts = {};
  for (const [name, workflow] of Object.entries(config.compare ?? {})) {
    await loadWorkflow(page, workflow);
    result.frontendPrompts[name] = await page.evaluate(async () => (await window.app.graphToPrompt()).output);
  }
  await scenario(page);
} finally {
  result.errors = logs.filter((l) => l.startsWith("pageerror") || (l.startsWith("error") && /points_editor/.test(l)));
  console.log(JSON.stringify(result));
  await browser.close();
}
