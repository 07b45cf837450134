// socketcad's reusable 3D viewer (three.js): a limb or socket surface coloured by a scalar field
// (pressure, shear, deviation), landmarks (draggable along the surface), markers, a cross-section
// ring with its perimeter, a colour bar. Renders on demand only (no animation loop: on software GL a
// busy loop would burn a core).
//
// Limb frame, millimetres: z proximal (up), y anterior, x lateral for a right limb (-x for a left).

import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { COLOURMAPS, colourBytes } from './colormaps.js';

// Colours go to the canvas as given: a colour-map byte must reach the canvas unchanged (the tests
// read pixels back), so no sRGB conversion anywhere.
THREE.ColorManagement.enabled = false;

const SKIN = '#d9b49a';        // the surface's colour when it has no values
const LANDMARK = '#e4572e';
const SECTION = '#ff2d55';
const AMBIENT = 0.35;          // the share of a colour a surface seen edge-on keeps
const CLICK_SLOP_PX = 5;       // a pointer that moved further than this between down and up dragged

// Shading: a headlight without three's lights. The fragment's colour is colour * (AMBIENT +
// (1 - AMBIENT) * |n.v|), with v the view direction: a surface facing the camera shows its colour
// exactly (factor 1), which three's physically based light units would only approximate. The camera
// is orthographic, so v is view space's +z everywhere. |n.v| also lights back faces (an open scan).
// With USE_VALUES the colour is the colour map's entry for the interpolated value, looked up per
// fragment in a 256 x 1 nearest-filtered texture: texel floor(t * 256) clamped to 255, the entry
// matplotlib's Colormap picks, so the picture's colours are exactly the report's.
const VERTEX_SHADER = /* glsl */ `
  #ifdef USE_VALUES
  attribute float value;
  attribute float known;
  varying float vValue;
  varying float vKnown;
  #endif
  varying vec3 vNormal;
  void main() {
    #ifdef USE_VALUES
    vValue = value;
    vKnown = known;
    #endif
    vNormal = normalMatrix * normal;
    gl_Position = projectionMatrix * modelViewMatrix * vec4(position, 1.0);
  }`;

const FRAGMENT_SHADER = /* glsl */ `
  uniform vec3 baseColour;
  uniform float ambient;
  #ifdef USE_VALUES
  uniform sampler2D colourMap;
  uniform float low;
  uniform float span;
  varying float vValue;
  varying float vKnown;
  #endif
  varying vec3 vNormal;
  void main() {
    #ifdef USE_VALUES
    float t = clamp((vValue - low) / span, 0.0, 1.0);
    // a vertex without a value (NaN from the server: outside the part compared) is grey, not a colour
    vec3 colour = vKnown > 0.5 ? texture2D(colourMap, vec2(t, 0.5)).rgb : vec3(0.78);
    #else
    vec3 colour = baseColour;
    #endif
    float facing = abs(normalize(vNormal).z);
    gl_FragColor = vec4(colour * (ambient + (1.0 - ambient) * facing), 1.0);
  }`;

function shadedMaterial(colour, values = null) {
  const uniforms = { baseColour: { value: new THREE.Color(colour) }, ambient: { value: AMBIENT } };
  const defines = {};
  if (values) {
    defines.USE_VALUES = '';
    uniforms.colourMap = { value: values.texture };
    uniforms.low = { value: values.low };
    uniforms.span = { value: values.span };
  }
  return new THREE.ShaderMaterial({
    vertexShader: VERTEX_SHADER, fragmentShader: FRAGMENT_SHADER, uniforms, defines,
    side: THREE.DoubleSide,
    // Pushed back a little so the section ring drawn on it is not buried in it.
    polygonOffset: true, polygonOffsetFactor: 1, polygonOffsetUnits: 1,
  });
}

function mapTexture(map) {
  const texture = new THREE.DataTexture(colourBytes(map), 256, 1, THREE.RGBAFormat, THREE.UnsignedByteType);
  texture.magFilter = texture.minFilter = THREE.NearestFilter;
  texture.generateMipmaps = false;
  texture.needsUpdate = true;
  return texture;
}

function base64Bytes(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function typed(text, Type, count, what) {
  const bytes = base64Bytes(text);
  if (bytes.length !== count * 4) {
    throw new Error(`decodeSurface: ${what} has ${bytes.length} bytes, expected ${count * 4}`);
  }
  if (LITTLE_ENDIAN) return new Type(bytes.buffer);
  const view = new DataView(bytes.buffer);
  const out = new Type(count);
  for (let i = 0; i < count; i++) {
    out[i] = Type === Float32Array ? view.getFloat32(i * 4, true) : view.getUint32(i * 4, true);
  }
  return out;
}

/** The server's surface JSON ({vertex_count, face_count, positions_b64, faces_b64, values_b64|null,
 * scale|null}, little-endian float32 / uint32) as typed arrays, ready for setSurface. */
export function decodeSurface(json) {
  const n = json.vertex_count, m = json.face_count;
  return {
    positions: typed(json.positions_b64, Float32Array, n * 3, 'positions'),
    faces: typed(json.faces_b64, Uint32Array, m * 3, 'faces'),
    values: json.values_b64 == null ? null : typed(json.values_b64, Float32Array, n, 'values'),
    scale: json.scale ?? null,
  };
}

// Whether WebGL runs on a software rasteriser (SwiftShader, llvmpipe): there multisampling triples a
// frame's time (600 against 180 ms at 400k faces on two cores), so the viewer draws without it.
let software = null;
function softwareGL() {
  if (software === null) {
    const gl = document.createElement('canvas').getContext('webgl2');
    const info = gl?.getExtension('WEBGL_debug_renderer_info');
    const name = info ? String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL)) : '';
    software = /swiftshader|llvmpipe|softpipe|software/i.test(name);
    gl?.getExtension('WEBGL_lose_context')?.loseContext();
  }
  return software;
}

function formatNumber(v) {
  return String(Number(Number(v).toPrecision(3)));
}

// View directions (from the centre towards the camera) in the limb frame, right limb.
const VIEWS = {
  anterior: [0, 1, 0], posterior: [0, -1, 0], lateral: [1, 0, 0], medial: [-1, 0, 0],
  // From below, looking up, anterior at the top of the picture: the camera is nudged a hair to
  // anterior so that, with z as the camera's up, the picture's up comes out as +y.
  distal: [0, 1e-3, -1],
};

export class Viewer {
  /** container: an element the viewer fills (it adds the canvas, labels and colour bar to it).
   * options.side: 'right' (default) or 'left' limb; options.background: CSS colour;
   * options.antialias: default true, but false on software GL. */
  constructor(container, options = {}) {
    this.container = container;
    this.side = options.side === 'left' ? 'left' : 'right';
    this.onLandmarkMoved = null;
    this.onPick = null;
    this._background = new THREE.Color(options.background ?? '#f3f4f6');

    if (getComputedStyle(container).position === 'static') container.style.position = 'relative';
    this.renderer = new THREE.WebGLRenderer({ antialias: options.antialias ?? !softwareGL(), preserveDrawingBuffer: true });
    this.renderer.outputColorSpace = THREE.LinearSRGBColorSpace;
    this.renderer.setPixelRatio(window.devicePixelRatio || 1);
    this.renderer.setClearColor(this._background, 1);
    this.canvas = this.renderer.domElement;
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', '3D view: drag or arrow keys to rotate, wheel or + and - to zoom');
    Object.assign(this.canvas.style, { display: 'block', outline: 'none', touchAction: 'none' });
    container.appendChild(this.canvas);

    this._labels = document.createElement('div');
    this._labels.className = 'viewer-labels';
    Object.assign(this._labels.style, { position: 'absolute', inset: '0', pointerEvents: 'none', overflow: 'hidden' });
    container.appendChild(this._labels);
    this.legendElement = this._makeLegend();
    container.appendChild(this.legendElement);

    this.scene = new THREE.Scene();
    this.camera = new THREE.OrthographicCamera(-1, 1, 1, -1, 0.1, 1000);
    this.camera.up.set(0, 0, 1); // before OrbitControls, which orbits about the camera's up
    this._halfHeight = 1;

    this.mesh = null;
    this._vertexCount = -1;
    this._radius = 100;
    this._landmarks = [];   // {name, point: Vector3, sphere, label, editable}
    this._markers = [];
    this._section = null;
    this._currentView = 'anterior';
    this._textures = {};
    this._raycaster = new THREE.Raycaster();

    // Registered before OrbitControls' own pointerdown, so a press on a landmark can switch the
    // controls off before they start an orbit.
    this._handlers = {
      pointerdown: (e) => this._pointerDown(e),
      pointermove: (e) => this._pointerMove(e),
      pointerup: (e) => this._pointerUp(e),
      pointercancel: (e) => this._pointerUp(e, true),
      keydown: (e) => this._keyDown(e),
    };
    for (const [type, fn] of Object.entries(this._handlers)) this.canvas.addEventListener(type, fn);

    this.controls = new OrbitControls(this.camera, this.canvas);
    this.controls.enableDamping = false; // damping needs an animation loop
    this.controls.addEventListener('change', () => this.requestRender());

    this._frame = 0;
    this._resizeObserver = new ResizeObserver(() => this._resize());
    this._resizeObserver.observe(container);
    this._resize();
  }

  // ---- surface -------------------------------------------------------------------------------

  /** surface: {positions: Float32Array(n*3), faces: Uint32Array(m*3), values: Float32Array(n)|null,
   * scale: {low, high, unit, colours: 'viridis'|'diverging'}|null}. The camera stays where it is when
   * the vertex count is the one shown already (a live preview of an edited shape); otherwise the
   * shape is framed in the current view. */
  setSurface(surface) {
    const { positions, faces, values = null, scale = null } = surface;
    const n = positions.length / 3;
    const geometry = new THREE.BufferGeometry();
    geometry.setAttribute('position', new THREE.BufferAttribute(positions, 3));
    geometry.setIndex(new THREE.BufferAttribute(faces, 1));
    geometry.computeVertexNormals();
    geometry.computeBoundingSphere();

    let colouring = null;
    const coloured = values && scale;
    if (coloured) {
      if (values.length !== n) throw new Error(`setSurface: ${values.length} values for ${n} vertices`);
      const known = new Float32Array(n);
      const finite = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        known[i] = Number.isFinite(values[i]) ? 1 : 0;
        finite[i] = known[i] ? values[i] : scale.low;
      }
      geometry.setAttribute('value', new THREE.BufferAttribute(finite, 1));
      geometry.setAttribute('known', new THREE.BufferAttribute(known, 1));
      const name = COLOURMAPS[scale.colours] ? scale.colours : 'viridis';
      this._textures[name] ??= mapTexture(COLOURMAPS[name]);
      colouring = { texture: this._textures[name], low: scale.low, span: Math.max(scale.high - scale.low, 1e-12) };
    }
    const material = shadedMaterial(SKIN, colouring);

    if (this.mesh) {
      this.scene.remove(this.mesh);
      this.mesh.geometry.dispose();
      this.mesh.material.dispose();
    }
    this.mesh = new THREE.Mesh(geometry, material);
    this.scene.add(this.mesh);
    this._updateLegend(coloured ? scale : null);

    const keep = n === this._vertexCount;
    this._vertexCount = n;
    if (!keep) {
      this._radius = geometry.boundingSphere.radius || 1;
      this._rebuildSpheres();
      this.view(this._currentView);
    }
    this._labelNormalsStale = true;
    if (this._sectionHeight != null) this.setSection(this._sectionHeight);
    this.requestRender();
  }

  // ---- landmarks and markers -----------------------------------------------------------------

  /** landmarks: [{name, point_mm: [x, y, z]}]. options.editable: drag a landmark's sphere along the
   * surface; onLandmarkMoved(name, point_mm) is called once, on release, when it moved. */
  setLandmarks(landmarks, options = {}) {
    this._clearItems(this._landmarks);
    this._landmarks = landmarks.map((l) => this._makeItem(l.name, l.point_mm, LANDMARK, 0.025, 'viewer-landmark',
      !!options.editable));
    this._labelNormalsStale = true;
    this.requestRender();
  }

  /** markers: [{name, point_mm, colour}]: handles and regions, shown as spheres with labels, fixed. */
  setMarkers(markers) {
    this._clearItems(this._markers);
    this._markers = markers.map((m) => this._makeItem(m.name, m.point_mm, m.colour ?? '#ff00ff', 0.018,
      'viewer-marker', false));
    this._labelNormalsStale = true;
    this.requestRender();
  }

  _makeItem(name, point, colour, size, className, editable) {
    const sphere = new THREE.Mesh(new THREE.SphereGeometry(1, 16, 12), shadedMaterial(colour));
    sphere.position.set(point[0], point[1], point[2]);
    sphere.scale.setScalar(size * this._radius);
    sphere.renderOrder = 1;
    this.scene.add(sphere);
    const label = document.createElement('div');
    label.className = className;
    label.textContent = name;
    Object.assign(label.style, {
      position: 'absolute', left: '0', top: '0', font: '12px system-ui, sans-serif', color: '#111',
      background: 'rgba(255,255,255,0.8)', padding: '0 3px', borderRadius: '3px', whiteSpace: 'nowrap',
      borderLeft: `3px solid ${colour}`,
    });
    this._labels.appendChild(label);
    return { name, point: sphere.position, sphere, label, editable, size, normal: null };
  }

  _clearItems(items) {
    for (const item of items) {
      this.scene.remove(item.sphere);
      item.sphere.geometry.dispose();
      item.sphere.material.dispose();
      item.label.remove();
    }
  }

  _rebuildSpheres() {
    for (const item of [...this._landmarks, ...this._markers]) item.sphere.scale.setScalar(item.size * this._radius);
  }

  // ---- views and projection ------------------------------------------------------------------

  /** 'anterior' | 'posterior' | 'lateral' | 'medial' | 'distal': look at the surface's centre from
   * that side (lateral is +x for a right limb, -x for a left one), framing the whole surface. */
  view(name) {
    if (!VIEWS[name]) throw new Error(`view: unknown view ${name}`);
    this._currentView = name;
    const dir = new THREE.Vector3(...VIEWS[name]);
    if (this.side === 'left') dir.x = -dir.x;
    this.viewFrom(dir.toArray());
  }

  /** Look at the centre from ``direction`` (limb frame, towards the camera), z up: e.g. along a surface
   * normal, so that a spot faces the camera squarely. */
  viewFrom(direction) {
    const dir = new THREE.Vector3(...direction).normalize();
    const sphere = this.mesh?.geometry.boundingSphere;
    const centre = sphere ? sphere.center.clone() : new THREE.Vector3();
    const r = this._radius;
    this._halfHeight = r * 1.05;
    this.camera.near = r * 0.01;
    this.camera.far = r * 10;
    this.camera.zoom = 1;
    this.camera.position.copy(centre).addScaledVector(dir, r * 4);
    this.controls.target.copy(centre);
    this._updateProjection();
    this.controls.update();
    this.requestRender();
  }

  /** A point in the limb frame (mm) -> {x, y} in CSS pixels from the canvas's top left. */
  project(point) {
    this.camera.updateMatrixWorld();
    const v = new THREE.Vector3(point[0], point[1], point[2]).project(this.camera);
    return { x: (v.x + 1) / 2 * this.canvas.clientWidth, y: (1 - v.y) / 2 * this.canvas.clientHeight };
  }

  // ---- cross-section ---------------------------------------------------------------------------

  /** Draw where the plane z = height_mm cuts the surface; returns the cut's length in mm (the
   * circumference; the sum over loops if the plane cuts more than one), 0 when it misses. null
   * removes the ring (and returns null). The ring follows later setSurface calls. */
  setSection(height) {
    if (this._section) {
      this.scene.remove(this._section);
      this._section.geometry.dispose();
      this._section.material.dispose();
      this._section = null;
    }
    this._sectionHeight = height;
    this.requestRender();
    if (height == null || !this.mesh) return height == null ? null : 0;
    const pos = this.mesh.geometry.attributes.position.array;
    const idx = this.mesh.geometry.index.array;
    const out = [];
    let perimeter = 0;
    const p = [0, 0, 0, 0, 0, 0];
    for (let f = 0; f < idx.length; f += 3) {
      // A vertex on the plane counts as above, so a triangle touching it at a vertex adds nothing.
      const a = idx[f] * 3, b = idx[f + 1] * 3, c = idx[f + 2] * 3;
      const da = pos[a + 2] - height, db = pos[b + 2] - height, dc = pos[c + 2] - height;
      const sa = da >= 0, sb = db >= 0, sc = dc >= 0;
      if (sa === sb && sb === sc) continue;
      let k = 0;
      for (const [i, j, di, dj, si, sj] of [[a, b, da, db, sa, sb], [b, c, db, dc, sb, sc], [c, a, dc, da, sc, sa]]) {
        if (si === sj) continue;
        const t = di / (di - dj);
        p[k++] = pos[i] + t * (pos[j] - pos[i]);
        p[k++] = pos[i + 1] + t * (pos[j + 1] - pos[i + 1]);
        p[k++] = height;
      }
      out.push(p[0], p[1], p[2], p[3], p[4], p[5]);
      perimeter += Math.hypot(p[3] - p[0], p[4] - p[1]);
    }
    const geometry = new THREE.BufferGeometry();
    geometry.setAttribute('position', new THREE.Float32BufferAttribute(out, 3));
    this._section = new THREE.LineSegments(geometry, new THREE.LineBasicMaterial({ color: SECTION }));
    this._section.renderOrder = 2;
    this.scene.add(this._section);
    return perimeter;
  }

  // ---- rendering -----------------------------------------------------------------------------

  /** Render at the next animation frame (many changes in one frame render once). */
  requestRender() {
    if (this._frame) return;
    this._frame = requestAnimationFrame(() => { this._frame = 0; this.render(); });
  }

  /** Render now (tests call this before reading pixels). */
  render() {
    if (this._frame) { cancelAnimationFrame(this._frame); this._frame = 0; }
    this.renderer.render(this.scene, this.camera);
    this._placeLabels();
  }

  _resize() {
    const w = Math.max(1, this.container.clientWidth), h = Math.max(1, this.container.clientHeight);
    this.renderer.setSize(w, h);
    this._updateProjection();
    this.render(); // now: a resized canvas is blank until drawn
  }

  _updateProjection() {
    const aspect = this.canvas.clientWidth / Math.max(1, this.canvas.clientHeight) || 1;
    const h = this._halfHeight;
    Object.assign(this.camera, { left: -h * aspect, right: h * aspect, top: h, bottom: -h });
    this.camera.updateProjectionMatrix();
  }

  _placeLabels() {
    const items = [...this._landmarks, ...this._markers];
    if (!items.length) return;
    if (this._labelNormalsStale) this._findLabelNormals(items);
    const toCamera = new THREE.Vector3().subVectors(this.camera.position, this.controls.target).normalize();
    for (const item of items) {
      const { x, y } = this.project([item.point.x, item.point.y, item.point.z]);
      item.label.style.transform = `translate(${Math.round(x + 8)}px, ${Math.round(y - 8)}px)`;
      // Labels are HTML, drawn over everything: one whose point faces away (on the far side) is faded.
      item.label.style.opacity = item.normal && item.normal.dot(toCamera) < 0 ? '0.35' : '1';
    }
  }

  // The surface normal at each item's nearest vertex (for fading labels on the far side).
  _findLabelNormals(items) {
    this._labelNormalsStale = false;
    if (!this.mesh) return;
    const pos = this.mesh.geometry.attributes.position.array;
    const nor = this.mesh.geometry.attributes.normal.array;
    for (const item of items) {
      const i = this._nearestVertex(item.point, pos);
      item.normal = new THREE.Vector3(nor[i * 3], nor[i * 3 + 1], nor[i * 3 + 2]);
    }
  }

  _nearestVertex(point, pos) {
    let best = -1, bestD = Infinity;
    for (let i = 0; i < pos.length; i += 3) {
      const d = (pos[i] - point.x) ** 2 + (pos[i + 1] - point.y) ** 2 + (pos[i + 2] - point.z) ** 2;
      if (d < bestD) { bestD = d; best = i / 3; }
    }
    return best;
  }

  // ---- colour bar ----------------------------------------------------------------------------

  _makeLegend() {
    const legend = document.createElement('div');
    legend.className = 'viewer-legend';
    Object.assign(legend.style, {
      position: 'absolute', right: '12px', top: '12px', display: 'none', flexDirection: 'column',
      alignItems: 'center', font: '12px system-ui, sans-serif', color: '#111', pointerEvents: 'none',
      background: 'rgba(255,255,255,0.8)', padding: '4px 6px', borderRadius: '4px',
    });
    const high = document.createElement('div');
    high.className = 'viewer-legend-high';
    const bar = document.createElement('canvas');
    bar.className = 'viewer-legend-bar';
    bar.width = 1;
    bar.height = 256;
    Object.assign(bar.style, { width: '16px', height: '160px', margin: '4px 0', imageRendering: 'pixelated' });
    const low = document.createElement('div');
    low.className = 'viewer-legend-low';
    legend.append(high, bar, low);
    return legend;
  }

  _updateLegend(scale) {
    const legend = this.legendElement;
    if (!scale) { legend.style.display = 'none'; return; }
    const [high, bar, low] = legend.children;
    high.textContent = `${formatNumber(scale.high)} ${scale.unit ?? ''}`.trim();
    low.textContent = `${formatNumber(scale.low)} ${scale.unit ?? ''}`.trim();
    const bytes = colourBytes(COLOURMAPS[scale.colours] ?? COLOURMAPS.viridis);
    const image = new ImageData(1, 256);
    for (let i = 0; i < 256; i++) image.data.set(bytes.subarray((255 - i) * 4, (256 - i) * 4), i * 4); // high on top
    bar.getContext('2d').putImageData(image, 0, 0);
    legend.style.display = 'flex';
  }

  // ---- pointer and keyboard --------------------------------------------------------------------

  _ray(event) {
    const rect = this.canvas.getBoundingClientRect();
    const ndc = new THREE.Vector2((event.clientX - rect.left) / rect.width * 2 - 1,
      1 - (event.clientY - rect.top) / rect.height * 2);
    this._raycaster.setFromCamera(ndc, this.camera);
    return this._raycaster;
  }

  _pointerDown(event) {
    this._down = { x: event.clientX, y: event.clientY, button: event.button };
    if (event.button !== 0) return;
    const editable = this._landmarks.filter((l) => l.editable);
    if (!editable.length) return;
    const hit = this._ray(event).intersectObjects(editable.map((l) => l.sphere), false)[0];
    if (!hit) return;
    const item = editable.find((l) => l.sphere === hit.object);
    this._dragging = { item, start: item.point.clone() };
    this.controls.enabled = false;
    this.canvas.setPointerCapture(event.pointerId);
  }

  _pointerMove(event) {
    if (!this._dragging || !this.mesh) return;
    this._lastMove = event;
    if (this._movePending) return;
    // One raycast per frame: a raycast tests every triangle (tens of ms on 400k faces).
    this._movePending = requestAnimationFrame(() => {
      this._movePending = 0;
      if (!this._dragging) return;
      const hit = this._ray(this._lastMove).intersectObject(this.mesh, false)[0];
      if (!hit) return;
      this._dragging.item.point.copy(hit.point);
      this.render();
    });
  }

  _pointerUp(event, cancelled = false) {
    const down = this._down;
    this._down = null;
    if (this._dragging) {
      const { item, start } = this._dragging;
      this._dragging = null;
      if (this._movePending) { cancelAnimationFrame(this._movePending); this._movePending = 0; }
      this.controls.enabled = true;
      if (this.canvas.hasPointerCapture(event.pointerId)) this.canvas.releasePointerCapture(event.pointerId);
      const dragged = !!down && Math.hypot(event.clientX - down.x, event.clientY - down.y) > CLICK_SLOP_PX;
      // The last move may still be pending: place the landmark where the pointer was released.
      const hit = dragged && !cancelled && this.mesh && this._ray(event).intersectObject(this.mesh, false)[0];
      if (hit) item.point.copy(hit.point);
      if (!dragged || cancelled) item.point.copy(start); // a click on a landmark, or a cancelled drag, moves nothing
      this._labelNormalsStale = true;
      this.render();
      const p = item.point;
      if (dragged && !cancelled && this.onLandmarkMoved) this.onLandmarkMoved(item.name, [p.x, p.y, p.z]);
      return;
    }
    if (cancelled || !down || down.button !== 0 || !this.mesh || !this.onPick) return;
    if (Math.hypot(event.clientX - down.x, event.clientY - down.y) > CLICK_SLOP_PX) return; // an orbit
    const hit = this._ray(event).intersectObject(this.mesh, false)[0];
    if (!hit) return;
    // The hit face's vertex nearest the hit point.
    const pos = this.mesh.geometry.attributes.position;
    let best = hit.face.a, bestD = Infinity;
    for (const i of [hit.face.a, hit.face.b, hit.face.c]) {
      const d = hit.point.distanceToSquared(new THREE.Vector3().fromBufferAttribute(pos, i));
      if (d < bestD) { bestD = d; best = i; }
    }
    this.onPick([hit.point.x, hit.point.y, hit.point.z], best);
  }

  // Arrow keys orbit (Shift: larger steps), + and - zoom, while the canvas has focus.
  _keyDown(event) {
    const step = (event.shiftKey ? 15 : 5) * Math.PI / 180;
    const actions = {
      ArrowLeft: () => this.controls.rotateLeft(step),
      ArrowRight: () => this.controls.rotateLeft(-step),
      ArrowUp: () => this.controls.rotateUp(step),
      ArrowDown: () => this.controls.rotateUp(-step),
      // OrbitControls' names are the other way round: its dollyOut(s > 1) brings the view closer.
      '+': () => this.controls.dollyOut(1.1),
      '=': () => this.controls.dollyOut(1.1),
      '-': () => this.controls.dollyIn(1.1),
    };
    const action = actions[event.key];
    if (!action) return;
    event.preventDefault();
    action();
  }

  // ---- teardown ------------------------------------------------------------------------------

  dispose() {
    if (this._frame) cancelAnimationFrame(this._frame);
    if (this._movePending) cancelAnimationFrame(this._movePending);
    this._resizeObserver.disconnect();
    for (const [type, fn] of Object.entries(this._handlers)) this.canvas.removeEventListener(type, fn);
    this.controls.dispose();
    this._clearItems(this._landmarks);
    this._clearItems(this._markers);
    this.setSection(null);
    if (this.mesh) { this.mesh.geometry.dispose(); this.mesh.material.dispose(); }
    for (const texture of Object.values(this._textures)) texture.dispose();
    this.renderer.dispose();
    this.canvas.remove();
    this._labels.remove();
    this.legendElement.remove();
  }
}
