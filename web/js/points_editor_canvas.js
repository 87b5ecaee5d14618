// The drawing surface of the Dragon Points Editor: one DOM element (toolbar, canvas, status line) that reads and
// writes its state through two callbacks, so the state itself always lives in the node's widget value.
import { dumpState, outline, parseState, paints, rasterise, rescaled } from "./points_editor_state.js";

const HIT = 8; // CSS pixels around an arrow end or body that count as a hit
const MASK_COLOR = "rgb(64, 160, 255)"; // drawn at MASK_ALPHA over the picture
const MASK_ALPHA = 0.38;
const TOOLS = [["arrow", "Arrows", "Drag to draw handle -> target; drag an arrow or its ends to move it"],
  ["brush", "Brush", "Paint the mask (editable region, or the object to move/paste)"],
  ["erase", "Eraser", "Erase the mask"]];

function el(tag, css, text) {
  const e = document.createElement(tag);
  if (css) e.style.cssText = css;
  if (text) e.textContent = text;
  return e;
}

function distToSegment(p, a, b) {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const len2 = dx * dx + dy * dy;
  const t = len2 ? Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2)) : 0;
  return Math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy);
}

export class PointsCanvas {
  /**
   * @param {() => string} read       the state text (the widget value)
   * @param {(text: string) => void} write  store a new state text in the widget
   * @param {() => Array} previews    Move/Paste targets: [{dx, dy, scale}] in image pixels, or [] (see caller)
   * @param {() => void} undo         undo the last change (ComfyUI's workflow undo: every write is one step)
   */
  constructor(read, write, previews, undo) {
    Object.assign(this, { read, write, previews, undo });
    this.tool = "arrow";
    this.radius = 0; // brush radius in image pixels; 0 = pick from the image size
    this.selected = -1;
    this.action = null; // the pointer gesture in progress
    this.image = null;
    this.cache = { key: null, state: null, mask: null, outline: null };
    this.buildDom();
  }

  buildDom() {
    this.element = el("div", "display:flex;flex-direction:column;width:100%;height:100%;min-height:360px;"
      + "box-sizing:border-box;gap:3px;font:12px sans-serif;color:#ddd;outline:none;");
    this.element.className = "dragon-points-editor widget-expands"; // widget-expands: grows in Nodes 2.0
    this.element.tabIndex = 0;
    const bar = el("div", "display:flex;flex-wrap:wrap;gap:3px;align-items:center;flex:none;");
    this.toolButtons = {};
    const button = (label, title, onClick) => {
      const b = el("button", "padding:1px 6px;font:12px sans-serif;border-radius:4px;border:1px solid #555;"
        + "background:#333;color:#ddd;cursor:pointer;", label);
      b.title = title;
      b.addEventListener("click", (e) => { e.stopPropagation(); onClick(); });
      bar.append(b);
      return b;
    };
    for (const [tool, label, title] of TOOLS) this.toolButtons[tool] = button(label, title, () => this.setTool(tool));
    this.sizeInput = el("input", "width:44px;font:12px sans-serif;");
    Object.assign(this.sizeInput, { type: "number", min: 1, max: 999, title: "Brush radius in image pixels" });
    this.sizeInput.addEventListener("change", () => { this.radius = Math.max(1, Number(this.sizeInput.value) || 1); });
    const sizeLabel = el("label", "display:flex;align-items:center;gap:2px;", "radius");
    sizeLabel.append(this.sizeInput);
    bar.append(sizeLabel);
    button("Undo", "Undo the last change (Ctrl+Z): ComfyUI's own undo, which holds every change", () => this.undo());
    button("Delete", "Delete the selected arrow (Delete key, or right-click an arrow)", () => this.deleteSelected());
    button("Clear", "Remove all arrows and strokes", () => this.commit({ ...this.state(), arrows: [], strokes: [] }));
    this.stage = el("div", "position:relative;flex:1 1 auto;min-height:200px;");
    this.canvas = el("canvas", "position:absolute;inset:0;width:100%;height:100%;touch-action:none;cursor:crosshair;");
    this.stage.append(this.canvas);
    this.status = el("div", "flex:none;font:11px monospace;opacity:0.8;overflow-wrap:anywhere;");
    this.element.append(bar, this.stage, this.status);
    this.bindEvents();
    new ResizeObserver(() => this.redraw()).observe(this.stage);
    this.setTool("arrow");
  }

  bindEvents() {
    // ComfyUI must not see pointer/mouse/key events that the editor handles (no node drag, no canvas pan,
    // no node deletion on the Delete key).
    for (const type of ["pointerdown", "pointermove", "pointerup", "pointercancel", "mousedown", "mousemove",
      "mouseup", "click", "dblclick", "contextmenu"]) {
      this.element.addEventListener(type, (e) => e.stopPropagation());
    }
    this.canvas.addEventListener("pointerdown", (e) => this.onDown(e));
    this.canvas.addEventListener("pointermove", (e) => this.onMove(e));
    this.canvas.addEventListener("pointerup", (e) => this.onUp(e));
    this.canvas.addEventListener("pointercancel", () => { this.action = null; this.redraw(); });
    this.canvas.addEventListener("pointerleave", () => { this.pointer = null; this.redraw(); });
    this.canvas.addEventListener("contextmenu", (e) => e.preventDefault());
    // Keys pressed anywhere in the editor (a toolbar button focused included) stay in it: the graph's shortcuts
    // (Delete removes the selected node, bare letters open panels) listen on the window after it. Ctrl+Z and
    // Ctrl+Y still reach ComfyUI's undo, which listens before any element and holds every change of the drawing.
    this.element.addEventListener("keydown", (e) => {
      e.stopPropagation();
      if ((e.key === "Delete" || e.key === "Backspace") && !(e.target instanceof HTMLInputElement)) {
        e.preventDefault();
        this.deleteSelected();
      }
    });
  }

  /**
   * The parsed state on the picture (cached per text and picture): a drawing made on a picture of another size is
   * shown scaled onto this one, and written so at the next change; no size falls back to the picture's, then 512.
   */
  state() {
    const text = this.read() ?? "";
    const size = this.image ? [this.image.naturalWidth, this.image.naturalHeight] : null;
    const key = `${size}|${text}`;
    if (key !== this.cache.key) {
      let s = parseState(text);
      if (!s.error && size && s.width && (s.width !== size[0] || s.height !== size[1])) s = rescaled(s, ...size);
      if (!s.error) s = { ...s, width: s.width ?? size?.[0] ?? 512, height: s.height ?? size?.[1] ?? 512 };
      this.cache = { key, state: s, mask: null, outline: null };
    }
    return this.cache.state;
  }

  commit(next) {
    const text = dumpState(next);
    if (text === (this.read() ?? "")) return;
    this.write(text);
    this.redraw();
  }

  deleteSelected() {
    const s = this.state();
    if (s.error || this.selected < 0 || this.selected >= s.arrows.length) return;
    this.commit({ ...s, arrows: s.arrows.filter((_, i) => i !== this.selected) });
    this.selected = -1;
  }

  setTool(tool) {
    this.tool = tool;
    for (const [name, b] of Object.entries(this.toolButtons)) {
      b.style.background = name === tool ? "#3d6ea8" : "#333";
    }
    this.redraw();
  }

  /** Show a picture (nothing is written: see ``state``). */
  setImage(img) {
    this.image = img;
    this.redraw();
  }

  /** Picture placement in canvas CSS pixels: scale s and offset (ox, oy), picture centred and contained. */
  view(s) {
    const cw = this.canvas.clientWidth;
    const ch = this.canvas.clientHeight;
    const k = Math.min(cw / s.width, ch / s.height);
    return { k, ox: (cw - s.width * k) / 2, oy: (ch - s.height * k) / 2 };
  }

  /**
   * A pointer event in image pixels: (x, y) is the pixel whose centre is nearest, so pixel (0, 0) spans
   * [-0.5, 0.5) here. Any canvas zoom works: the bounding box carries the CSS transform, which is undone.
   */
  toImage(e, s, clamp = true) {
    const r = this.canvas.getBoundingClientRect();
    const v = this.view(s);
    const lx = (e.clientX - r.left) * (this.canvas.clientWidth / r.width);
    const ly = (e.clientY - r.top) * (this.canvas.clientHeight / r.height);
    let x = (lx - v.ox) / v.k - 0.5;
    let y = (ly - v.oy) / v.k - 0.5;
    if (clamp) {
      x = Math.min(Math.max(Math.round(x), 0), s.width - 1);
      y = Math.min(Math.max(Math.round(y), 0), s.height - 1);
    }
    return [x, y];
  }

  /** What is under an image point: {index, part: "head"|"tail"|"body"} or null. */
  hit(p, s) {
    const tol = HIT / this.view(s).k;
    for (let i = s.arrows.length - 1; i >= 0; i--) {
      const [hx, hy, tx, ty] = s.arrows[i];
      if (Math.hypot(p[0] - tx, p[1] - ty) <= tol) return { index: i, part: "tail" };
      if (Math.hypot(p[0] - hx, p[1] - hy) <= tol) return { index: i, part: "head" };
      if (distToSegment(p, [hx, hy], [tx, ty]) <= tol) return { index: i, part: "body" };
    }
    return null;
  }

  brushRadius(s) {
    return this.radius || Math.max(2, Math.round(Math.max(s.width, s.height) / 32));
  }

  onDown(e) {
    const s = this.state();
    if (s.error || e.button === 1) return;
    this.element.focus({ preventScroll: true });
    this.canvas.setPointerCapture(e.pointerId);
    const p = this.toImage(e, s);
    if (this.tool !== "arrow") {
      const stroke = { r: this.brushRadius(s), erase: this.tool === "erase", pts: [p] };
      this.action = { kind: "paint", base: s, stroke };
      this.redraw();
      return;
    }
    const hit = this.hit(this.toImage(e, s, false), s);
    if (e.button === 2) {
      if (hit) this.commit({ ...s, arrows: s.arrows.filter((_, i) => i !== hit.index) });
      this.selected = -1;
      return;
    }
    this.selected = hit ? hit.index : -1;
    this.action = hit ? { kind: hit.part, base: s, index: hit.index, start: p } : { kind: "new", base: s, start: p };
    this.redraw();
  }

  onMove(e) {
    const s = this.state();
    if (s.error) return;
    this.pointer = this.toImage(e, s, false);
    const a = this.action;
    if (!a) return this.redraw();
    const p = this.toImage(e, s);
    if (a.kind === "paint") {
      const last = a.stroke.pts[a.stroke.pts.length - 1];
      if (Math.hypot(p[0] - last[0], p[1] - last[1]) >= Math.max(1, a.stroke.r / 4)) a.stroke.pts.push(p);
    }
    a.end = p;
    this.redraw();
  }

  onUp(e) {
    const a = this.action;
    this.action = null;
    if (!a) return;
    const p = this.toImage(e, a.base);
    const last = a.stroke?.pts[a.stroke.pts.length - 1];
    if (last && (last[0] !== p[0] || last[1] !== p[1])) a.stroke.pts.push(p);
    const next = this.applied(a, p);
    if (next && a.kind === "new") this.selected = next.arrows.length - 1;
    if (next) this.commit(next);
    this.redraw();
  }

  /** The state after gesture `a` ending at image point p, or null when it changes nothing. */
  applied(a, p) {
    const s = a.base;
    const arrows = s.arrows.map((x) => [...x]);
    const [dx, dy] = [p[0] - a.start?.[0], p[1] - a.start?.[1]];
    if (a.kind === "paint") return { ...s, strokes: [...s.strokes, a.stroke] };
    if (a.kind === "new") {
      if (Math.hypot(dx, dy) * this.view(s).k < 4) return null; // a click, not a drag
      return { ...s, arrows: [...arrows, [...a.start, ...p]] };
    }
    if (!dx && !dy) return null;
    const arrow = arrows[a.index];
    if (a.kind === "head") arrow.splice(0, 2, p[0], p[1]);
    else if (a.kind === "tail") arrow.splice(2, 2, p[0], p[1]);
    else {
      const inside = (x, lim) => x >= 0 && x <= lim - 1;
      const moved = [arrow[0] + dx, arrow[1] + dy, arrow[2] + dx, arrow[3] + dy];
      if (!moved.every((v, i) => inside(v, i % 2 ? s.height : s.width))) return null;
      arrows[a.index] = moved;
    }
    return { ...s, arrows };
  }

  redraw() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      this.paint();
    });
  }

  paint() {
    const dpr = window.devicePixelRatio || 1;
    const cw = this.canvas.clientWidth;
    const ch = this.canvas.clientHeight;
    if (!cw || !ch) return;
    if (this.canvas.width !== Math.round(cw * dpr) || this.canvas.height !== Math.round(ch * dpr)) {
      this.canvas.width = Math.round(cw * dpr);
      this.canvas.height = Math.round(ch * dpr);
    }
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#1b1b1b";
    ctx.fillRect(0, 0, cw, ch);
    const s0 = this.state();
    this.sizeInput.placeholder = s0.error ? "" : String(this.brushRadius(s0));
    if (s0.error) {
      this.status.textContent = s0.error;
      return;
    }
    const s = this.action ? this.preview(this.action, s0) : s0;
    const v = this.view(s);
    ctx.save();
    ctx.translate(v.ox, v.oy);
    ctx.scale(v.k, v.k);
    if (this.image) ctx.drawImage(this.image, 0, 0, s.width, s.height);
    else {
      ctx.fillStyle = "#2a2a2a";
      ctx.fillRect(0, 0, s.width, s.height);
    }
    ctx.translate(0.5, 0.5); // coordinates name pixels; draw at their centres
    this.paintMask(ctx, s, s === s0);
    this.paintArrows(ctx, s, v.k);
    ctx.restore();
    const hint = this.image ? "" : " · no picture: connect Load Image, or run once";
    const counts = `${s.arrows.length} arrows · ${s.strokes.length} strokes`;
    this.status.textContent = `${s.width}x${s.height} px · ${counts}${hint}`;
  }

  /** The state as it would be if the gesture ended now (drawn live, committed on pointer up). */
  preview(a, s) {
    if (a.kind === "paint") return { ...s, strokes: [...s.strokes, a.stroke] };
    return a.end ? this.applied(a, a.end) ?? s : s;
  }

  paintMask(ctx, s, cached) {
    if (!s.strokes.length) return;
    let mask = cached ? this.cache.mask : null;
    if (!mask) {
      mask = rasterise(s, MASK_COLOR);
      if (cached) this.cache.mask = mask;
    }
    ctx.globalAlpha = MASK_ALPHA;
    ctx.drawImage(mask.canvas, -0.5, -0.5, s.width, s.height);
    ctx.globalAlpha = 1;
    const targets = paints(s) ? this.previews() : [];
    if (!targets.length) return;
    let edge = cached ? this.cache.outline : null;
    if (!edge) {
      edge = outline(mask, "#ffb020");
      if (cached) this.cache.outline = edge;
    }
    if (!edge) return;
    for (const { dx, dy, scale } of targets) {
      // geometry.move: a target point p comes from q with p = c + d + scale * (q - c), c the object's centroid
      ctx.save();
      ctx.translate(edge.cx + dx, edge.cy + dy);
      ctx.scale(scale, scale);
      ctx.translate(-edge.cx, -edge.cy);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(edge.canvas, -0.5, -0.5, s.width, s.height);
      ctx.restore();
    }
  }

  paintArrows(ctx, s, k) {
    const px = 1 / k; // one CSS pixel in image pixels
    ctx.lineCap = "round";
    ctx.font = `${11 * px}px sans-serif`;
    s.arrows.forEach(([hx, hy, tx, ty], i) => {
      const selected = i === this.selected;
      const angle = Math.atan2(ty - hy, tx - hx);
      ctx.strokeStyle = ctx.fillStyle = selected ? "#ffe14d" : "#ffffff";
      ctx.lineWidth = (selected ? 3 : 2) * px;
      ctx.beginPath();
      ctx.moveTo(hx, hy);
      ctx.lineTo(tx, ty);
      ctx.stroke();
      ctx.beginPath();
      ctx.moveTo(tx, ty);
      for (const side of [-1, 1]) {
        ctx.lineTo(tx - 10 * px * Math.cos(angle + side * 0.45), ty - 10 * px * Math.sin(angle + side * 0.45));
      }
      ctx.closePath();
      ctx.fill();
      for (const [x, y, color] of [[hx, hy, "#ff4d4d"], [tx, ty, "#4d8cff"]]) {
        ctx.beginPath();
        ctx.arc(x, y, 4.5 * px, 0, 2 * Math.PI);
        ctx.fillStyle = color;
        ctx.fill();
        ctx.lineWidth = px;
        ctx.strokeStyle = "#000";
        ctx.stroke();
      }
      ctx.fillStyle = "#fff";
      ctx.fillText(String(i + 1), hx + 6 * px, hy - 6 * px);
    });
    if (this.tool !== "arrow" && this.pointer && !s.error) {
      ctx.beginPath();
      ctx.arc(this.pointer[0], this.pointer[1], this.brushRadius(s), 0, 2 * Math.PI);
      ctx.lineWidth = px;
      ctx.strokeStyle = "#fff";
      ctx.stroke();
    }
  }
}
