// The map: an SVG of our own in an equirectangular projection scaled for the region's middle
// latitude (distances look right at this scale; the server does every real measurement).

const SVG = "http://www.w3.org/2000/svg";
const WEST = 25;
const NORTH = 42;
const UNIT = 100; // SVG units per degree of latitude
const COS = Math.cos((33.5 * Math.PI) / 180);
const EARTH_M = 6371008.8;

export function project([lon, lat]) {
  return [(lon - WEST) * UNIT * COS, (NORTH - lat) * UNIT];
}

export function unproject([x, y]) {
  return [x / (UNIT * COS) + WEST, NORTH - y / UNIT];
}

export function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function ringPath(ring) {
  return ring.map((p, i) => `${i ? "L" : "M"}${project(p).map((v) => v.toFixed(2)).join(",")}`).join("") + "Z";
}

// SVG path data for a GeoJSON Polygon or MultiPolygon.
export function pathOf(geometry) {
  if (!geometry) return "";
  if (geometry.type === "Polygon") return geometry.coordinates.map(ringPath).join("");
  if (geometry.type === "MultiPolygon")
    return geometry.coordinates.map((poly) => poly.map(ringPath).join("")).join("");
  if (geometry.type === "LineString")
    return geometry.coordinates
      .map((p, i) => `${i ? "L" : "M"}${project(p).map((v) => v.toFixed(2)).join(",")}`)
      .join("");
  return "";
}

// A point at a distance and bearing on the sphere (enough to draw a circle of a few dozen km).
export function destination([lon, lat], distanceM, bearingDeg) {
  const d = distanceM / EARTH_M;
  const b = (bearingDeg * Math.PI) / 180;
  const f1 = (lat * Math.PI) / 180;
  const l1 = (lon * Math.PI) / 180;
  const f2 = Math.asin(Math.sin(f1) * Math.cos(d) + Math.cos(f1) * Math.sin(d) * Math.cos(b));
  const l2 = l1 + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(f1), Math.cos(d) - Math.sin(f1) * Math.sin(f2));
  return [(l2 * 180) / Math.PI, (f2 * 180) / Math.PI];
}

export function circlePolygon(center, radiusM) {
  const ring = [];
  for (let i = 0; i <= 64; i++) ring.push(destination(center, radiusM, (i * 360) / 64));
  return { type: "Polygon", coordinates: [ring] };
}

export function distanceM([lon1, lat1], [lon2, lat2]) {
  const r = Math.PI / 180;
  const a =
    Math.sin(((lat2 - lat1) * r) / 2) ** 2 +
    Math.cos(lat1 * r) * Math.cos(lat2 * r) * Math.sin(((lon2 - lon1) * r) / 2) ** 2;
  return 2 * EARTH_M * Math.asin(Math.sqrt(a));
}

export class MapView {
  constructor(svg, onPick) {
    this.svg = svg;
    this.onPick = onPick;
    const [x0, y0] = project([34.3, 37.6]);
    const [x1, y1] = project([42.6, 32.0]);
    this.view = { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
    this.onZoom = () => {};
    this.apply();
    this.listen();
  }

  apply() {
    const v = this.view;
    this.svg.setAttribute("viewBox", `${v.x} ${v.y} ${v.w} ${v.h}`);
    this.svg.style.setProperty("--label-size", `${(v.w / 70).toFixed(2)}px`);
    this.onZoom(v.w);
  }

  zoom(factor, around = null) {
    const v = this.view;
    const [cx, cy] = around || [v.x + v.w / 2, v.y + v.h / 2];
    const w = Math.min(Math.max(v.w * factor, 50), 2500);
    const k = w / v.w;
    this.view = { x: cx - (cx - v.x) * k, y: cy - (cy - v.y) * k, w, h: v.h * k };
    this.apply();
  }

  pan(dx, dy) {
    this.view.x += dx * this.view.w;
    this.view.y += dy * this.view.h;
    this.apply();
  }

  centre() {
    const v = this.view;
    return unproject([v.x + v.w / 2, v.y + v.h / 2]);
  }

  focus(geometry) {
    const points = [];
    const walk = (c) => (typeof c[0] === "number" ? points.push(project(c)) : c.forEach(walk));
    walk(geometry.coordinates);
    if (!points.length) return;
    const xs = points.map((p) => p[0]);
    const ys = points.map((p) => p[1]);
    const pad = 60;
    const w = Math.max(Math.max(...xs) - Math.min(...xs) + pad, (Math.max(...ys) - Math.min(...ys) + pad) * (this.view.w / this.view.h));
    const h = w * (this.view.h / this.view.w);
    this.view = { x: (Math.min(...xs) + Math.max(...xs)) / 2 - w / 2, y: (Math.min(...ys) + Math.max(...ys)) / 2 - h / 2, w, h };
    this.apply();
  }

  // Screen pixel -> [lon, lat], and back (the tests click through the latter).
  toLonLat(clientX, clientY) {
    const p = this.svg.createSVGPoint();
    p.x = clientX;
    p.y = clientY;
    const q = p.matrixTransform(this.svg.getScreenCTM().inverse());
    return unproject([q.x, q.y]);
  }

  toScreen(lonLat) {
    const [x, y] = project(lonLat);
    const p = this.svg.createSVGPoint();
    p.x = x;
    p.y = y;
    const q = p.matrixTransform(this.svg.getScreenCTM());
    return [q.x, q.y];
  }

  listen() {
    let drag = null;
    this.svg.addEventListener("pointerdown", (e) => {
      drag = { x: e.clientX, y: e.clientY, view: { ...this.view }, moved: false };
    });
    this.svg.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 4) drag.moved = true;
      if (!drag.moved) return;
      const scale = this.view.w / this.svg.clientWidth;
      this.view.x = drag.view.x - dx * scale;
      this.view.y = drag.view.y - dy * scale;
      this.apply();
    });
    this.svg.addEventListener("pointerup", (e) => {
      if (drag && !drag.moved) this.onPick(this.toLonLat(e.clientX, e.clientY));
      drag = null;
    });
    this.svg.addEventListener("wheel", (e) => {
      e.preventDefault();
      const p = this.svg.createSVGPoint();
      p.x = e.clientX;
      p.y = e.clientY;
      const q = p.matrixTransform(this.svg.getScreenCTM().inverse());
      this.zoom(e.deltaY > 0 ? 1.2 : 1 / 1.2, [q.x, q.y]);
    }, { passive: false });
    this.svg.addEventListener("keydown", (e) => {
      const moves = { ArrowLeft: [-0.1, 0], ArrowRight: [0.1, 0], ArrowUp: [0, -0.1], ArrowDown: [0, 0.1] };
      if (moves[e.key]) {
        this.pan(...moves[e.key]);
      } else if (e.key === "+" || e.key === "=") {
        this.zoom(1 / 1.25);
      } else if (e.key === "-") {
        this.zoom(1.25);
      } else if (e.key === "Enter") {
        this.onPick(this.centre());
      } else {
        return;
      }
      e.preventDefault();
    });
  }
}
