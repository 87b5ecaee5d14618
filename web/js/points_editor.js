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
  const input = node.inputs?.find((i) => i.name === name);
  return input?.link != null ? node.graph?.getLink(input.link) : null;
}

/** Where the editor's output `outputName` goes: [{node, input}] */
function targetsOf(node, outputName) {
  const output = node.outputs?.find((o) => o.name === outputName);
  return (output?.links ?? []).map((id) => node.graph?.getLink(id)).filter(Boolean).map((link) => {
    const target = node.graph.getNodeById(link.target_id);
    return { node: target, input: target?.inputs?.[link.target_slot]?.name };
  }).filter((t) => t.node);
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

/** The picture to draw on: a Load Image upstream at once, else what this node showed after its last run. */
function pictureUrl(node, executedUrl) {
  const slot = node.inputs?.findIndex((i) => i.name === "image") ?? -1;
  const upstream = slot >= 0 ? node.getInputNode(slot) : null;
  if (!upstream) return null;
  const file = upstream.type === "LoadImage" ? widgetValue(upstream, "image") : null;
  return file ? viewUrl(imageFile(file)) : executedUrl;
}

function attachEditor(node) {
  const stateWidget = node.widgets.find((w) => w.name === STATE);
  const write = (text) => {
    stateWidget.value = text;
    stateWidget.callback?.(text); // keeps a Nodes 2.0 textarea in step
    node.setDirtyCanvas?.(true, false);
  };
  const editor = new PointsCanvas(() => stateWidget.value, write, () => {
    const s = editor.state();
    return s.error ? [] : maskTargets(node, s.arrows);
  });
  stateWidget.options.getMaxHeight = () => 90; // classic canvas: a few lines of JSON, the rest for the picture
  const widget = node.addDOMWidget("dragon_points_canvas", "dragon_points_canvas", editor.element, {
    getValue: () => "",
    setValue: () => {},
    getMinHeight: () => 360,
    serialize: false, // not part of the prompt
  });
  widget.serialize = false; // nor of the workflow's widgets_values: the state widget holds everything

  const link = { url: undefined, signature: "", executedUrl: null };
  const sync = () => {
    const url = pictureUrl(node, link.executedUrl);
    if (url !== link.url) {
      link.url = url;
      if (!url) editor.setImage(null);
      else {
        const img = new Image();
        img.onload = () => link.url === url && editor.setImage(img);
        img.onerror = () => link.url === url && editor.setImage(null);
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
      if (picture && this.dragonPointsEditor) {
        this.dragonPointsEditor.link.executedUrl = `${viewUrl(picture)}&rand=${Date.now()}`;
        this.dragonPointsEditor.sync();
      }
    };
  },
});
