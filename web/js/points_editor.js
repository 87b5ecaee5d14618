// Dragon Points Editor: an in-node drawing canvas for the DragonPointsEditor node (classic canvas and Nodes 2.0).
// The canvas is a DOM widget (addDOMWidget) that stores nothing itself: the drawing is JSON in the node's
// `editor_state` STRING widget, so it is saved in the workflow, reaches Python and can be typed by hand.
import { api } from "../../scripts/api.js";
import { app } from "../../scripts/app.js";
import { PointsCanvas } from "./points_editor_canvas.js";

const NODE = "DragonPointsEditor";
const STATE = "editor_state";
const UI_KEY = "dragon_editor_image"; // nodes/points_editor.py sends the picture under this key after a run
const MASK_INPUT = { DragonEnergyMove: "mask", DragonEnergyPaste: "reference_mask" }; // previewed at their target
const SYNC_MS = 400;
const RETRY_MS = [2000, 30000]; // a picture that failed to load is asked for again (uploaded meanwhile?) after 2 s,
// then after twice as long each time, up to 30 s
let editors = 0; // editors made so far on this page
const executed = new Map(); // node id -> the picture its last run showed; outlives the node objects that ComfyUI's
// undo recreates

const viewUrl = ({ filename, subfolder = "", type = "input" }) =>
  api.apiURL(`/view?${new URLSearchParams({ filename, subfolder, type })}`);

/** A Load Image widget value ("sub/name.png", optionally with " [output]") as /view parameters. */
function imageFile(value) {
  const [, path, type = "input"] = /^(.*?)(?: \[(input|output|temp)\])?$/.exec(String(value));
  const cut = path.lastIndexOf("/");
  return { filename: path.slice(cut + 1), subfolder: cut >= 0 ? path.slice(0, cut) : "", type };
}

const widgetValue = (node, name) => node?.widgets?.find((w) => w.name === name)?.value;

function linkedInput(node, name) {
  const slot = node.inputs?.findIndex((i) => i.name === name) ?? -1;
  return slot >= 0 ? node.getInputLink(slot) : null;
}

/** Where the editor's output `outputName` goes: [{node, input}], read through the link API of both frontends. */
function targetsOf(node, outputName) {
  const slot = node.outputs?.findIndex((o) => o.name === outputName) ?? -1;
  const targets = slot >= 0 ? [...new Set(node.getOutputNodes(slot) ?? [])] : [];
  return targets.flatMap((target) => (target.inputs ?? []).flatMap((input, i) => {
    const link = target.getInputLink(i);
    return link?.origin_id === node.id && link.origin_slot === slot ? [{ node: target, input: input.name }] : [];
  }));
}

/** Move/Paste nodes fed by the editor's mask: where the object lands, [{dx, dy, scale}] in image pixels. The
 * offset is the first arrow's when the node takes it from this editor ("arrow", or "dx"), else its dx/dy. */
function maskTargets(node, arrows) {
  return targetsOf(node, "mask").filter((t) => MASK_INPUT[t.node.type] === t.input).map(({ node: target }) => {
    const linked = (name) => linkedInput(target, name)?.origin_id === node.id;
    const fromEditor = arrows.length && (linked("arrow") || linked("dx"));
    const [hx, hy, tx, ty] = fromEditor ? arrows[0] : [0, 0, 0, 0];
    return {
      dx: fromEditor ? tx - hx : Number(widgetValue(target, "dx")) || 0,
      dy: fromEditor ? ty - hy : Number(widgetValue(target, "dy")) || 0,
      scale: Number(widgetValue(target, "scale")) || 1,
    };
  });
}

/** The pictures to draw on, best first: a Load Image upstream (at once), then what the node's last run showed. */
function pictureUrls(node) {
  const slot = node.inputs?.findIndex((i) => i.name === "image") ?? -1;
  const upstream = slot >= 0 ? node.getInputNode(slot) : null;
  if (!upstream) return [];
  const file = upstream.type === "LoadImage" ? widgetValue(upstream, "image") : null;
  return [file ? viewUrl(imageFile(file)) : null, executed.get(node.id)].filter(Boolean);
}

/** One undo step of ComfyUI's workflow history per change (both frontends' change trackers honour the pair). */
function asOneChange(fn) {
  app.canvas?.emitBeforeChange?.();
  try {
    fn();
  } finally {
    app.canvas?.emitAfterChange?.();
  }
}

function attachEditor(node) {
  const stateWidget = node.widgets.find((w) => w.name === STATE);
  const write = (text) => asOneChange(() => {
    stateWidget.value = text;
    stateWidget.callback?.(text); // keeps a Nodes 2.0 textarea in step
    node.setDirtyCanvas?.(true, false);
  });
  const undo = () => app.extensionManager?.command?.execute?.("Comfy.Undo");
  const editor = new PointsCanvas(() => stateWidget.value, write, () => {
    const s = editor.state();
    return s.error ? [] : maskTargets(node, s.arrows);
  }, undo);
  stateWidget.options.getMaxHeight = () => 90; // classic canvas: a few lines of JSON, the rest for the picture
  // a new name for each node object: Nodes 2.0 keys its widget components by name and mounts a DOM widget's element
  // once, so after ComfyUI's undo (which rebuilds the node) the same name would keep showing the old element
  const name = `dragon_points_canvas_${++editors}`;
  const widget = node.addDOMWidget(name, "dragon_points_canvas", editor.element, {
    getValue: () => "",
    setValue: () => {},
    getMinHeight: () => 360,
    serialize: false, // not part of the prompt
    hideOnZoom: false, // the picture stays readable where the frontend hides small text
    hideInPanel: true, // the right side panel (frontend 1.58) would draw it at its own width and resize it
  });
  widget.serialize = false; // nor of the workflow's widgets_values: the state widget holds everything
  Object.defineProperty(widget, "width", { get: () => undefined, set: () => {} }); // always the node's width

  const link = { url: undefined, signature: "", failed: new Map() }; // failed: url -> {until, wait}
  const sync = () => {
    const url = pictureUrls(node).find((u) => !(Date.now() < (link.failed.get(u)?.until ?? 0))) ?? null;
    if (url !== link.url) {
      link.url = url;
      if (!url) editor.setImage(null);
      else {
        const img = new Image();
        img.onload = () => link.url === url && (link.failed.delete(url), editor.setImage(img));
        img.onerror = () => {
          if (link.url !== url) return;
          const wait = Math.min(2 * (link.failed.get(url)?.wait ?? RETRY_MS[0] / 2), RETRY_MS[1]);
          link.failed.set(url, { until: Date.now() + wait, wait });
          link.url = undefined;
        };
        img.src = url;
      }
    }
    const signature = `${stateWidget.value}|${JSON.stringify(editor.previews())}`;
    if (signature !== link.signature) {
      link.signature = signature;
      editor.redraw();
    }
  };
  const timer = setInterval(sync, SYNC_MS);
  node.dragonPointsEditor = { editor, sync, link };
  const onRemoved = node.onRemoved;
  node.onRemoved = function () {
    clearInterval(timer);
    return onRemoved?.apply(this, arguments);
  };
  node.setSize([Math.max(node.size[0], 420), Math.max(node.size[1], 640)]);
}

app.registerExtension({
  name: "dragondragedit.points_editor",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      attachEditor(this);
      return result;
    };
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      const picture = message?.[UI_KEY]?.[0];
      if (picture) executed.set(this.id, `${viewUrl(picture)}&rand=${Date.now()}`);
      this.dragonPointsEditor?.sync();
    };
  },
});
