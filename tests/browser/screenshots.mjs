// Screenshots of the example workflows and of the points editor in the real frontend (see make_screenshots.py).
//
//   node screenshots.mjs '<json config>'
//
// config: {url, chromium, playwright, workflows ({name: UI workflow}), out, thumbs (folders)}. Writes
// out/workflow_<mode>.png (classic canvas, whole graph), out/editor_<mode>[_nodes2].png (an editor node at zoom 1)
// and thumbs/<name>.png (the first editor's picture with the drawing: the template's thumbnail).
import { frame, loadWorkflow, openComfy, pictureRect, zoomOnEditor } from "./comfy_page.mjs";

const config = JSON.parse(process.argv[2]);
const EDITORS = [["dragon_move", false], ["dragon_paste", false], ["dragon_drag", true]]; // [example, Nodes 2.0]

/** The screen rectangle of a node, title bar included, in either renderer. */
async function nodeRect(page, id) {
  return page.evaluate((id) => {
    const el = document.querySelector(`[data-node-id="${id}"]`);
    if (el) {
      const r = el.getBoundingClientRect();
      return { x: r.x, y: r.y, width: r.width, height: r.height };
    }
    const { app } = window;
    const node = app.graph.getNodeById(id);
    const { scale, offset } = app.canvas.ds;
    const c = app.canvas.canvas.getBoundingClientRect();
    const title = 30;
    return { x: c.x + (node.pos[0] + offset[0]) * scale, y: c.y + (node.pos[1] - title + offset[1]) * scale,
      width: node.size[0] * scale, height: (node.size[1] + title) * scale };
  }, id);
}

const firstEditor = (page) => page.evaluate(() => Math.min(...window.app.graph.nodes
  .filter((n) => n.type === "DragonPointsEditor").map((n) => n.id)));

async function shootEditor(page, name, vue) {
  await loadWorkflow(page, config.workflows[name], name);
  const id = await firstEditor(page);
  await frame(page, { scale: 1, nodeId: id });
  const r = await nodeRect(page, id);
  const pad = 8;
  await page.screenshot({ path: `${config.out}/editor_${name.replace("dragon_", "")}${vue ? "_nodes2" : ""}.png`,
    clip: { x: r.x - pad, y: r.y - pad, width: r.width + 2 * pad, height: r.height + 2 * pad } });
}

for (const vue of [false, true]) {
  // no simplified far-zoom rendering: whole graphs are shot at about 50 %
  const settings = { "LiteGraph.Canvas.MinFontSizeForLOD": 0 };
  const { browser, page, logs } = await openComfy({ ...config, vue, settings }, { width: 1600, height: 1000 });
  try {
    if (!vue) {
      for (const [name, workflow] of Object.entries(config.workflows)) {
        await loadWorkflow(page, workflow, name);
        await frame(page);
        await page.screenshot({ path: `${config.out}/workflow_${name.replace("dragon_", "")}.png` });
        const id = await firstEditor(page);
        await zoomOnEditor(page, 1.5, id);
        await page.screenshot({ path: `${config.thumbs}/${name}.png`, clip: await pictureRect(page, id) });
      }
    }
    for (const [name, nodes2] of EDITORS) if (nodes2 === vue) await shootEditor(page, name, vue);
  } finally {
    const errors = logs.filter((l) => l.startsWith("pageerror"));
    if (errors.length) console.error(errors.join("\n"));
    await browser.close();
  }
}
