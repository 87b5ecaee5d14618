// Editor state of the Dragon Points Editor: parse, write, rescale, rasterise. The state lives in the node's
// `editor_state` STRING widget as JSON (image pixels):
//   {"width": W, "height": H, "arrows": [[hx, hy, tx, ty], ...],
//    "strokes": [{"r": radius, "erase": false, "pts": [[x, y], ...]}, ...]}
// A bare list of [hx, hy, tx, ty] rows is read as the arrows. nodes/points_editor.py reads the same JSON.

const finite = (v) => typeof v === "number" && Number.isFinite(v);

/** The state from the widget text, or {error} when it cannot be read (the text is then left alone). */
export function parseState(text) {
  if (!text || !text.trim()) return { arrows: [], strokes: [] };
  let data;
  try {
    data = JSON.parse(text);
  } catch (e) {
    return { error: `editor_state is not valid JSON (${e.message})` };
  }
  if (Array.isArray(data)) data = { arrows: data };
  if (!data || typeof data !== "object") return { error: "editor_state must be a JSON object" };
  const arrows = data.arrows ?? [];
  const strokes = data.strokes ?? [];
  if (!Array.isArray(arrows) || !arrows.every((a) => Array.isArray(a) && a.length === 4 && a.every(finite))) {
    return { error: "arrows must be [[hx, hy, tx, ty], ...] (the editor reads only this form)" };
  }
  const strokeOk = (s) => s && finite(s.r) && s.r > 0 && Array.isArray(s.pts) && s.pts.length > 0
    && s.pts.every((p) => Array.isArray(p) && p.length === 2 && p.every(finite));
  if (!Array.isArray(strokes) || !strokes.every(strokeOk)) {
    return { error: 'strokes must be [{"r": radius, "erase": false, "pts": [[x, y], ...]}, ...]' };
  }
  const state = {
    arrows: arrows.map((a) => [...a]),
    strokes: strokes.map((s) => ({ r: s.r, erase: !!s.erase, pts: s.pts.map((p) => [...p]) })),
  };
  if (finite(data.width) && finite(data.height) && data.width >= 1 && data.height >= 1) {
    state.width = data.width;
    state.height = data.height;
  }
  return state;
}

/** Compact JSON, keys in a fixed order, so the same drawing always gives the same text. */
export function dumpState(state) {
  const out = { width: state.width, height: state.height, arrows: state.arrows };
  if (state.strokes.length) out.strokes = state.strokes;
  return JSON.stringify(out);
}

/** The state drawn on a width x height picture, scaled to another size (the picture was swapped). */
export function rescaled(state, width, height) {
  const sx = width / state.width;
  const sy = height / state.height;
  const r1 = (v) => Math.round(v * 10) / 10;
  return {
    width,
    height,
    arrows: state.arrows.map(([hx, hy, tx, ty]) => [r1(hx * sx), r1(hy * sy), r1(tx * sx), r1(ty * sy)]),
    strokes: state.strokes.map((s) => ({
      r: r1(s.r * Math.sqrt(sx * sy)), erase: s.erase, pts: s.pts.map(([x, y]) => [r1(x * sx), r1(y * sy)]),
    })),
  };
}

/** Whether any stroke paints (with none, the mask is the whole image and erasing cuts holes into it). */
export const paints = (state) => state.strokes.some((s) => !s.erase);

/**
 * The mask as a canvas of at most `maxSide` pixels a side, painted in `color`, plus its size factor
 * (canvas pixels per image pixel). Same rule as the Python node: round caps, later strokes over earlier.
 */
export function rasterise(state, color, maxSide = 512) {
  const k = Math.min(1, maxSide / Math.max(state.width, state.height));
  const c = document.createElement("canvas");
  c.width = Math.max(1, Math.round(state.width * k));
  c.height = Math.max(1, Math.round(state.height * k));
  const ctx = c.getContext("2d");
  ctx.fillStyle = ctx.strokeStyle = color;
  if (!paints(state)) ctx.fillRect(0, 0, c.width, c.height);
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.scale(k, k);
  ctx.translate(0.5, 0.5); // coordinates name pixels: paint around their centres
  for (const s of state.strokes) {
    ctx.globalCompositeOperation = s.erase ? "destination-out" : "source-over";
    ctx.beginPath();
    if (s.pts.length === 1) {
      ctx.arc(s.pts[0][0], s.pts[0][1], s.r, 0, 2 * Math.PI);
      ctx.fill();
    } else {
      ctx.lineWidth = 2 * s.r;
      ctx.moveTo(...s.pts[0]);
      for (const [x, y] of s.pts.slice(1)) ctx.lineTo(x, y);
      ctx.stroke();
    }
  }
  return { canvas: c, k };
}

/** The outline of a rasterised mask (pixels with an empty 4-neighbour) in `color`, and the mask's centroid
 * in the drawing's coordinates (pixel (x, y) centred on x, y). */
export function outline(mask, color) {
  const { width: w, height: h } = mask.canvas;
  const alpha = mask.canvas.getContext("2d").getImageData(0, 0, w, h).data;
  const on = (x, y) => x >= 0 && y >= 0 && x < w && y < h && alpha[4 * (y * w + x) + 3] > 127;
  const c = document.createElement("canvas");
  c.width = w;
  c.height = h;
  const ctx = c.getContext("2d");
  ctx.fillStyle = color;
  let n = 0;
  let sx = 0;
  let sy = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (!on(x, y)) continue;
      n++;
      sx += x + 0.5;
      sy += y + 0.5;
      if (!on(x - 1, y) || !on(x + 1, y) || !on(x, y - 1) || !on(x, y + 1)) ctx.fillRect(x - 1, y - 1, 3, 3);
    }
  }
  return n ? { canvas: c, cx: sx / n / mask.k - 0.5, cy: sy / n / mask.k - 0.5 } : null;
}
