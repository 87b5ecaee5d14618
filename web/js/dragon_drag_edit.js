// Dragon Drag Edit frontend extension: shows each node's text report (bank size, saved path) on the node.
import { app } from "../../scripts/app.js";

const NODES = new Set([
  "DDIMInvertToMemoryBank", "DragonMemoryBankSave", "DragonMemoryBankLoad", "DragonEnergyMove", "DragonEnergyDrag",
  "DragonEnergyLandmarks", "DragonEnergyAppearance", "DragonEnergyPaste", "DragonGuidedSampler",
]);

function showReport(node, text) {
  let widget = node.widgets?.find((w) => w.name === "dragon_report");
  if (!widget) {
    const el = document.createElement("div");
    el.className = "dragon-report";
    el.style.cssText = "font: 11px monospace; opacity: 0.8; white-space: pre-wrap; padding: 2px 4px;";
    widget = node.addDOMWidget("dragon_report", "dragon_report", el, {
      getValue: () => el.textContent,
      setValue: (v) => { el.textContent = v ?? ""; },
      getMinHeight: () => 32,
      serialize: false,
    });
  }
  widget.value = text;
  widget.element.textContent = text;
}

app.registerExtension({
  name: "dragondragedit.report",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!NODES.has(nodeData.name)) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      if (message?.text?.length) showReport(this, message.text.join("\n"));
    };
  },
});
