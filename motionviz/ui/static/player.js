/* motionviz motion player (classic script; loads three.js as an ES module on first use).
 *
 * window.motionvizPlayer.show(element, json) draws the payload built by motionviz/ui/player.py into
 * `element`: a 2-D canvas with all motions (grid cells or one overlaid scene), Play/Pause, speed, loop,
 * frame scrubbing, time in seconds, camera presets and free rotation, a legend and per-motion captions.
 *
 * One WebGL context for the whole page: a single off-screen three.js renderer draws every player in turn
 * and each player copies its picture into its own 2-D canvas.  Browsers keep only ~16 live WebGL
 * contexts, so one context per view went blank after ~16 views; here the number of views does not matter.
 */
(function () {
  'use strict';
  if (window.motionvizPlayer) return;

  const SCRIPT_SRC = (document.currentScript && document.currentScript.src) || location.href;
  const THREE_URL = new URL('three.module.min.js', SCRIPT_SRC).href;
  const SPEEDS = [0.25, 0.5, 1, 1.5, 2];
  const VIEWS = { front: [0, 8], side: [90, 8], top: [0, 89], '3/4': [35, 14] };
  const BG = '#fbfbfa';
  const SIDE_COLORS = ['#d1495b', '#3d3d3d', '#2e86ab'];   // subject's left, centre, right
  const MESH_COLOR = '#d9b38c';
  const HIGHLIGHT = '#f2b705';    // highlighted joints (e.g. the joints that differ most)

  let threePromise = null;
  let THREE = null;
  let shared = null;              // {renderer, canvas, w, h}
  const players = new Set();
  let loopRunning = false;
  let lastTick = 0;
  const geo = {};                 // shared unit geometries

  function loadThree() {
    if (!threePromise) {
      threePromise = import(THREE_URL).then((m) => { THREE = m; return m; });
    }
    return threePromise;
  }

  function renderer() {
    if (shared) return shared;
    const canvas = document.createElement('canvas');
    canvas.width = 8; canvas.height = 8;
    const r = new THREE.WebGLRenderer({ canvas, antialias: true, alpha: false });
    r.setPixelRatio(1);
    r.autoClear = false;
    canvas.addEventListener('webglcontextlost', (e) => { e.preventDefault(); shared.lost = true; }, false);
    canvas.addEventListener('webglcontextrestored', () => {
      shared.lost = false;
      players.forEach((p) => { p.dirty = true; });
    }, false);
    shared = { renderer: r, canvas, w: 8, h: 8, lost: false };
    geo.bone = new THREE.CylinderGeometry(1, 1, 1, 10, 1, false);
    geo.joint = new THREE.SphereGeometry(1, 12, 8);
    return shared;
  }

  function ensureSize(w, h) {
    const s = renderer();
    if (w > s.w || h > s.h) {
      s.w = Math.max(w, s.w); s.h = Math.max(h, s.h);
      s.renderer.setSize(s.w, s.h, false);
    }
    return s;
  }

  // ---------------------------------------------------------------------------------------------
  function decode(b64) {
    const bin = atob(b64);
    const n = bin.length >> 1;
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let v = bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8);
      if (v >= 32768) v -= 65536;
      out[i] = v === -32768 ? NaN : v / 1000;
    }
    return out;
  }

  function decodeU32(b64) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Uint32Array(bytes.buffer);
  }

  function shade(hex, target, amount) {
    const c = new THREE.Color(hex);
    return c.lerp(new THREE.Color(target), amount);
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  const CSS = `
.mvp { font: 13px/1.35 system-ui, sans-serif; color: #222; }
.mvp-stage { position: relative; width: 100%; height: 200px; background: ${BG}; border-radius: 6px; overflow: hidden; }
.mvp-canvas { position: absolute; left: 0; top: 0; width: 100%; height: 100%; touch-action: pan-y; cursor: grab; }
.mvp, .mvp-stage { min-width: 0; max-width: 100%; }
.mvp-cells { position: absolute; inset: 0; pointer-events: none; }
.mvp-cell { position: absolute; padding: 3px 6px; box-sizing: border-box; overflow: hidden; }
.mvp-title { font-weight: 600; font-size: 12px; background: rgba(255,255,255,.78); border-radius: 3px;
  padding: 0 4px; display: inline-block; max-width: 100%; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.mvp-notice { font-size: 11px; font-style: italic; color: #7a4a00; background: rgba(255,244,214,.92);
  border-radius: 3px; padding: 0 4px; margin-top: 2px; display: inline-block; max-width: 100%; }
.mvp-chip { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
.mvp-empty { position: absolute; inset: 0; display: flex; align-items: center; justify-content: center; color: #777; }
.mvp-bar { display: flex; flex-wrap: wrap; gap: 6px 10px; align-items: center; padding: 6px 2px 2px; }
.mvp-bar button, .mvp-bar select { font: inherit; padding: 2px 8px; border: 1px solid #bbb; border-radius: 4px; background: #fff; color: #222; }
.mvp-bar button.mvp-on { background: #e6eefc; border-color: #6b8fd6; }
.mvp-play { min-width: 74px; font-weight: 600; }
.mvp-scrub { flex: 1 1 160px; min-width: 120px; }
.mvp-time { font-variant-numeric: tabular-nums; min-width: 96px; }
.mvp-legend { display: flex; flex-wrap: wrap; gap: 4px 14px; padding: 4px 2px; }
.mvp-legend .mvp-sw { display: inline-block; width: 14px; height: 14px; border-radius: 3px; margin-right: 5px;
  vertical-align: -2px; border: 1px solid rgba(0,0,0,.25); }
.mvp-caption { color: #555; font-size: 12px; padding: 0 2px; }
.dark .mvp, .dark .mvp-bar button, .dark .mvp-bar select { color: #222; }
`;

  function injectCss() {
    if (document.getElementById('mvp-style')) return;
    const s = el('style'); s.id = 'mvp-style'; s.textContent = CSS;
    document.head.appendChild(s);
  }

  // ---------------------------------------------------------------------------------------------
  // glTF 2.0 binary (.glb) characters: the skinned, animated bodies that motionviz exports (and other
  // files of the same kind: nodes with TRS or matrices, meshes with POSITION/NORMAL/JOINTS_0/WEIGHTS_0,
  // one skin per skinned node, the first animation with LINEAR or STEP rotation/translation/scale).
  const GLB_ARRAYS = { 5120: Int8Array, 5121: Uint8Array, 5122: Int16Array, 5123: Uint16Array, 5125: Uint32Array, 5126: Float32Array };
  const GLB_GETTERS = { 5120: 'getInt8', 5121: 'getUint8', 5122: 'getInt16', 5123: 'getUint16', 5125: 'getUint32', 5126: 'getFloat32' };
  const GLB_WIDTH = { SCALAR: 1, VEC2: 2, VEC3: 3, VEC4: 4, MAT2: 4, MAT3: 9, MAT4: 16 };
  const GLB_NORM = { 5120: 127, 5121: 255, 5122: 32767, 5123: 65535 };

  function b64Bytes(b64) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes.buffer;
  }

  function parseGlb(buffer) {
    const dv = new DataView(buffer);
    if (buffer.byteLength < 20 || dv.getUint32(0, true) !== 0x46546C67) throw new Error('not a .glb file');
    if (dv.getUint32(4, true) !== 2) throw new Error('only glTF 2.0 .glb files can be shown');
    let off = 12, json = null, bin = null;
    while (off + 8 <= buffer.byteLength) {
      const len = dv.getUint32(off, true), type = dv.getUint32(off + 4, true);
      if (off + 8 + len > buffer.byteLength) throw new Error('the .glb is truncated');
      if (type === 0x4E4F534A) json = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, off + 8, len)));
      else if (type === 0x004E4942 && !bin) bin = buffer.slice(off + 8, off + 8 + len);
      off += 8 + len;
    }
    if (!json) throw new Error('the .glb has no JSON chunk');
    return { json, bin: bin || new ArrayBuffer(0) };
  }

  function glbAccessor(g, index) {
    const a = g.json.accessors[index];
    const C = a && GLB_ARRAYS[a.componentType], n = a && GLB_WIDTH[a.type];
    if (!C || !n) throw new Error('unsupported accessor ' + index);
    const count = a.count * n;
    let out;
    if (a.bufferView === undefined) out = new C(count);                     // all zeros (glTF rule)
    else {
      const view = g.json.bufferViews[a.bufferView];
      const start = (view.byteOffset || 0) + (a.byteOffset || 0);
      const size = C.BYTES_PER_ELEMENT, stride = view.byteStride || size * n;
      if (start + stride * (a.count - 1) + size * n > g.bin.byteLength) throw new Error('accessor ' + index + ' is outside the buffer');
      if (stride === size * n && start % size === 0) out = new C(g.bin, start, count);
      else {                                                                  // interleaved or unaligned
        out = new C(count);
        const dv = new DataView(g.bin), get = GLB_GETTERS[a.componentType];
        for (let i = 0; i < a.count; i++) for (let k = 0; k < n; k++) out[i * n + k] = dv[get](start + i * stride + k * size, true);
      }
    }
    if (a.normalized && GLB_NORM[a.componentType]) {
      const f = new Float32Array(count), d = GLB_NORM[a.componentType];
      for (let i = 0; i < count; i++) f[i] = Math.max(out[i] / d, -1);
      return { array: f, n };
    }
    return { array: out, n };
  }

  // The character of a .glb as three.js objects: {root, bones, names, mixer, duration, owned, skeletons}.
  function buildGlb(buffer) {
    const g = parseGlb(buffer);
    const J = g.json, nodes = J.nodes || [];
    const jointSet = new Set();
    (J.skins || []).forEach((s) => (s.joints || []).forEach((j) => jointSet.add(j)));
    const objs = nodes.map((nd, i) => {
      const o = jointSet.has(i) ? new THREE.Bone() : new THREE.Object3D();
      o.name = nd.name || ('node' + i);
      if (nd.matrix) new THREE.Matrix4().fromArray(nd.matrix).decompose(o.position, o.quaternion, o.scale);
      else {
        if (nd.translation) o.position.fromArray(nd.translation);
        if (nd.rotation) o.quaternion.fromArray(nd.rotation);
        if (nd.scale) o.scale.fromArray(nd.scale);
      }
      return o;
    });
    nodes.forEach((nd, i) => (nd.children || []).forEach((c) => { if (objs[c] && !objs[c].parent) objs[i].add(objs[c]); }));
    const root = new THREE.Group();
    const scene = (J.scenes || [])[J.scene || 0];
    const tops = scene ? scene.nodes : objs.map((o, i) => i).filter((i) => !objs[i].parent);
    tops.forEach((i) => { if (objs[i] && !objs[i].parent) root.add(objs[i]); });
    root.updateMatrixWorld(true);
    const owned = [], skinned = [], skeletons = [];
    let vertices = 0;
    nodes.forEach((nd, i) => {
      if (nd.mesh === undefined) return;
      (J.meshes[nd.mesh].primitives || []).forEach((prim) => {
        if (prim.mode !== undefined && prim.mode !== 4) return;               // triangles only
        const geom = new THREE.BufferGeometry();
        const attr = (name, key) => {
          if (prim.attributes[key] === undefined) return;
          const a = glbAccessor(g, prim.attributes[key]);
          geom.setAttribute(name, new THREE.BufferAttribute(a.array, a.n));
        };
        attr('position', 'POSITION'); attr('normal', 'NORMAL'); attr('skinIndex', 'JOINTS_0'); attr('skinWeight', 'WEIGHTS_0');
        if (!geom.attributes.position) return;
        if (prim.indices !== undefined) geom.setIndex(new THREE.BufferAttribute(glbAccessor(g, prim.indices).array, 1));
        if (!geom.attributes.normal) geom.computeVertexNormals();
        vertices += geom.attributes.position.count;
        const mat = new THREE.MeshLambertMaterial({ color: MESH_COLOR, side: THREE.DoubleSide });
        let mesh;
        if (nd.skin !== undefined && geom.attributes.skinIndex && geom.attributes.skinWeight) {
          mesh = new THREE.SkinnedMesh(geom, mat);
          skinned.push([mesh, J.skins[nd.skin]]);
        } else mesh = new THREE.Mesh(geom, mat);
        mesh.frustumCulled = false;
        objs[i].add(mesh);
        owned.push(geom, mat);
      });
    });
    root.updateMatrixWorld(true);
    let bones = [];
    skinned.forEach(([mesh, skin]) => {
      const bs = skin.joints.map((j) => objs[j]);
      const ibm = skin.inverseBindMatrices !== undefined ? glbAccessor(g, skin.inverseBindMatrices).array : null;
      const inv = bs.map((b, k) => (ibm ? new THREE.Matrix4().fromArray(ibm, 16 * k) : new THREE.Matrix4()));
      const sk = new THREE.Skeleton(bs, inv);
      mesh.bind(sk, mesh.matrixWorld);
      skeletons.push(sk);
      if (!bones.length) bones = bs;
    });
    const tracks = [];
    const anim = (J.animations || [])[0];
    const PATHS = { rotation: 'quaternion', translation: 'position', scale: 'scale' };
    if (anim) anim.channels.forEach((ch) => {
      const smp = anim.samplers[ch.sampler], node = objs[ch.target.node], path = PATHS[ch.target.path];
      if (!smp || !node || !path) return;
      if (smp.interpolation === 'CUBICSPLINE') throw new Error('cubic-spline animations are not supported');
      const times = Array.from(glbAccessor(g, smp.input).array), vals = Array.from(glbAccessor(g, smp.output).array);
      const Track = path === 'quaternion' ? THREE.QuaternionKeyframeTrack : THREE.VectorKeyframeTrack;
      const mode = smp.interpolation === 'STEP' ? THREE.InterpolateDiscrete : THREE.InterpolateLinear;
      tracks.push(new Track(node.uuid + '.' + path, times, vals, mode));
    });
    const clip = new THREE.AnimationClip('motion', -1, tracks);
    const mixer = new THREE.AnimationMixer(root);
    if (tracks.length) mixer.clipAction(clip).play();
    mixer.setTime(0);
    return { root, bones, names: bones.map((b) => b.name), mixer, duration: clip.duration, tracks: tracks.length,
             owned, skeletons, vertices, keys: tracks.length ? tracks[0].times.length : 0 };
  }

  // ---------------------------------------------------------------------------------------------
  class Player {
    constructor(host) {
      this.host = host;
      this.payload = null;
      this.t = 0; this.duration = 0; this.speed = 1; this.loop = true; this.playing = false;
      this.az = VIEWS['3/4'][0]; this.el = VIEWS['3/4'][1]; this.zoom = 1;
      this.dirty = true; this.firstDrawAt = null; this.shownAt = null;
      this.renders = 0;
      this.build();
    }

    build() {
      injectCss();
      const root = el('div', 'mvp');
      const stage = el('div', 'mvp-stage');
      this.canvas = el('canvas', 'mvp-canvas');
      this.ctx = this.canvas.getContext('2d');
      this.cells = el('div', 'mvp-cells');
      this.empty = el('div', 'mvp-empty', 'Nothing to show yet.');
      stage.append(this.canvas, this.cells, this.empty);
      const bar = el('div', 'mvp-bar');
      this.playBtn = el('button', 'mvp-play', '▶ Play');
      this.playBtn.type = 'button';
      this.playBtn.setAttribute('aria-label', 'Play or pause');
      this.scrub = el('input', 'mvp-scrub');
      this.scrub.type = 'range'; this.scrub.min = 0; this.scrub.max = 1; this.scrub.value = 0;
      this.scrub.setAttribute('aria-label', 'Frame');
      this.timeEl = el('span', 'mvp-time', '0.00 s / 0.00 s');
      const speedLab = el('label', '', 'speed ');
      this.speedSel = el('select', 'mvp-speed');
      SPEEDS.forEach((s) => { const o = el('option', '', s + '×'); o.value = s; if (s === 1) o.selected = true; this.speedSel.append(o); });
      speedLab.append(this.speedSel);
      const loopLab = el('label', '');
      this.loopBox = el('input', 'mvp-loop'); this.loopBox.type = 'checkbox'; this.loopBox.checked = true;
      loopLab.append(this.loopBox, document.createTextNode(' loop'));
      this.layoutSel = el('select', 'mvp-layout');
      [['grid', 'side by side'], ['overlay', 'overlaid']].forEach(([v, t]) => { const o = el('option', '', t); o.value = v; this.layoutSel.append(o); });
      this.layoutSel.setAttribute('aria-label', 'Layout');
      this.viewBtns = {};
      const views = el('span', 'mvp-views');
      [['front', 'Front'], ['side', 'Side'], ['top', 'Top'], ['3/4', '3/4']].forEach(([k, t]) => {
        const b = el('button', 'mvp-view', t); b.type = 'button'; b.dataset.view = k;
        b.addEventListener('click', () => this.setView(k));
        this.viewBtns[k] = b; views.append(b);
      });
      this.recBtn = el('button', 'mvp-record', '⬇ Video'); this.recBtn.type = 'button';
      this.recBtn.title = 'Record one pass of what the player shows and download it (MP4 where the browser can, else WebM)';
      bar.append(this.playBtn, this.scrub, this.timeEl, speedLab, loopLab, this.layoutSel, views, this.recBtn);
      this.legend = el('div', 'mvp-legend');
      this.caption = el('div', 'mvp-caption');
      root.append(stage, bar, this.legend, this.caption);
      this.host.replaceChildren(root);
      this.root = root; this.stage = stage;

      this.playBtn.addEventListener('click', () => this.setPlaying(!this.playing));
      this.scrub.addEventListener('input', () => { this.setPlaying(false); this.t = Number(this.scrub.value) / this.scrubRate; this.dirty = true; });
      this.speedSel.addEventListener('change', () => { this.speed = Number(this.speedSel.value); });
      this.loopBox.addEventListener('change', () => { this.loop = this.loopBox.checked; });
      this.layoutSel.addEventListener('change', () => { this.layout = this.layoutSel.value; this.relayout(); });
      this.recBtn.addEventListener('click', () => this.record());
      let drag = null;
      this.canvas.addEventListener('pointerdown', (e) => { drag = [e.clientX, e.clientY, this.az, this.el]; this.canvas.setPointerCapture(e.pointerId); this.canvas.style.cursor = 'grabbing'; });
      this.canvas.addEventListener('pointermove', (e) => {
        if (!drag) return;
        this.az = drag[2] - (e.clientX - drag[0]) * 0.5;
        this.el = Math.max(-10, Math.min(89, drag[3] + (e.clientY - drag[1]) * 0.4));
        this.markView(null); this.dirty = true;
      });
      const end = () => { drag = null; this.canvas.style.cursor = 'grab'; };
      this.canvas.addEventListener('pointerup', end);
      this.canvas.addEventListener('pointercancel', end);
      this.canvas.addEventListener('wheel', (e) => {
        e.preventDefault();
        this.zoom = Math.max(0.4, Math.min(3, this.zoom * (e.deltaY > 0 ? 1.1 : 1 / 1.1)));
        this.dirty = true;
      }, { passive: false });
      this.canvas.addEventListener('dblclick', () => { this.zoom = 1; this.setView('3/4'); });
      this.resizeObs = new ResizeObserver(() => this.relayout());
      this.resizeObs.observe(this.stage);
      this.markView('3/4');
    }

    markView(k) { Object.entries(this.viewBtns).forEach(([n, b]) => b.classList.toggle('mvp-on', n === k)); }
    setView(k) { [this.az, this.el] = VIEWS[k]; this.markView(k); this.dirty = true; }

    setPlaying(on) {
      if (on && this.t >= this.duration - 1e-6) this.t = 0;
      this.playing = !!on && this.duration > 0;
      this.playBtn.textContent = this.playing ? '❚❚ Pause' : '▶ Play';
      this.playBtn.classList.toggle('mvp-on', this.playing);
      if (this.playing) startLoop();
    }

    async show(json) {
      this.shownAt = performance.now();
      let payload = null;
      if (json) {
        try { payload = typeof json === 'string' ? JSON.parse(json) : json; } catch (e) { payload = null; }
      }
      if (!payload || !payload.motions || !payload.motions.length) {
        this.clear();
        return;
      }
      await loadThree();
      renderer();
      this.dispose();
      this.payload = payload;
      this.layout = payload.layout || 'grid';
      this.layoutSel.value = this.layout;
      this.layoutSel.style.display = payload.motions.length > 1 ? '' : 'none';
      this.buildScene();
      this.buildLegend();
      this.t = 0; this.firstDrawAt = null;
      this.host.dataset.mvpId = payload.id || '';
      this.host.dataset.mvpMotions = String(payload.motions.length);
      delete this.host.dataset.mvpDrawn;
      delete this.host.dataset.mvpDrawAt;
      this.empty.style.display = 'none';
      this.relayout();
      this.setPlaying(payload.autoplay !== false);
      this.dirty = true;
      startLoop();
    }

    clear() {
      this.dispose();
      this.payload = null; this.playing = false;
      this.playBtn.textContent = '▶ Play';
      this.legend.replaceChildren(); this.caption.textContent = ''; this.cells.replaceChildren();
      this.empty.style.display = '';
      this.canvas.height = 0; this.stage.style.height = '200px';
      this.host.dataset.mvpId = '';
    }

    buildScene() {
      const p = this.payload;
      const scene = new THREE.Scene();
      scene.add(new THREE.HemisphereLight(0xffffff, 0x8a8a80, 1.6));
      const sun = new THREE.DirectionalLight(0xffffff, 1.4); sun.position.set(2, 4, 3); scene.add(sun);
      const size = Math.max(2, Math.ceil(2 * Math.max(p.scale.radius_grid, p.scale.radius_overlay) + 1));
      const floor = new THREE.Mesh(new THREE.PlaneGeometry(size, size),
        new THREE.MeshLambertMaterial({ color: 0xe9e7e1 }));
      floor.rotation.x = -Math.PI / 2; floor.position.y = -0.002; scene.add(floor);
      const grid = new THREE.GridHelper(size, Math.round(size / 0.5), 0x9a9a9a, 0xc4c4c4);
      scene.add(grid);
      this.owned = [floor.geometry, floor.material, grid.geometry, grid.material];
      this.scene = scene;
      this.cam = new THREE.PerspectiveCamera(32, 1, 0.05, 100);
      this.motions = p.motions.map((m) => this.buildMotion(m, p.skeletons[m.sk]));
      this.duration = Math.max(...p.motions.map((m) => m.duration), 1e-3);
      const fpsMax = Math.max(...p.motions.map((m) => m.fps), 1);
      this.scrubRate = fpsMax;
      this.scrub.max = Math.max(1, Math.round(this.duration * fpsMax));
    }

    buildMotion(m, sk) {
      if (m.glb) {                    // a .glb character: the file's own skin and animation
        const glb = buildGlb(b64Bytes(m.glb));
        const group = new THREE.Group();
        group.add(glb.root);
        this.scene.add(group);
        this.owned.push(...glb.owned);
        return { m, group, glb, frame: -1, time: -1 };
      }
      const group = new THREE.Group();
      const J = sk.side.length;
      const pos = decode(m.pos);
      const mat = new THREE.MeshLambertMaterial({ color: 0xffffff });
      const colorOf = (side) => {
        if (!m.color) return new THREE.Color(SIDE_COLORS[side]);
        if (side === 0) return shade(m.color, '#000000', 0.35);
        if (side === 2) return shade(m.color, '#ffffff', 0.45);
        return new THREE.Color(m.color);
      };
      const bones = new THREE.InstancedMesh(geo.bone, mat, Math.max(1, sk.bones.length));
      sk.bones.forEach(([a, b], i) => bones.setColorAt(i, colorOf(sk.side[b] === 1 ? sk.side[a] : sk.side[b])));
      const joints = new THREE.InstancedMesh(geo.joint, mat, J);
      const hi = new Set(m.highlight || []);     // joints drawn larger, in gold (payload option)
      for (let j = 0; j < J; j++) joints.setColorAt(j, hi.has(j) ? new THREE.Color(HIGHLIGHT) : colorOf(sk.side[j]));
      const headMat = new THREE.MeshLambertMaterial({ color: m.color ? shade(m.color, '#000000', 0.15) : new THREE.Color('#3d3d3d') });
      const head = new THREE.Mesh(geo.joint, headMat);
      head.scale.setScalar(0.075);
      group.add(bones, joints, head);
      bones.frustumCulled = false; joints.frustumCulled = false;
      const item = { m, sk, J, pos, group, bones, joints, head, hi, frame: -1, mesh: null, meshFrame: -1 };
      this.owned.push(mat, headMat);
      if (m.mesh) {
        const V = m.mesh.vertices;
        const g = new THREE.BufferGeometry();
        g.setAttribute('position', new THREE.BufferAttribute(new Float32Array(V * 3), 3));
        g.setIndex(new THREE.BufferAttribute(decodeU32(m.mesh.faces), 1));
        const showSk = this.payload.skeleton !== false;
        const mm = new THREE.MeshLambertMaterial({ color: MESH_COLOR, transparent: showSk, opacity: showSk ? 0.55 : 1, depthWrite: !showSk, side: THREE.DoubleSide });
        const mesh = new THREE.Mesh(g, mm); mesh.frustumCulled = false;
        group.add(mesh);
        item.mesh = mesh; item.meshPos = decode(m.mesh.pos);
        this.owned.push(g, mm);
        if (!showSk) { bones.visible = false; joints.visible = false; }
      }
      this.scene.add(group);
      return item;
    }

    buildLegend() {
      const p = this.payload;
      this.legend.replaceChildren();
      (p.legend || []).forEach((e) => {
        const it = el('span', 'mvp-li');
        if (e.color) { const sw = el('span', 'mvp-sw'); sw.style.background = e.color; it.append(sw); }
        it.append(document.createTextNode(e.label));
        this.legend.append(it);
      });
      const note = el('span', 'mvp-li', 'big dot = head · floor grid 0.5 m · drag to rotate, wheel to zoom');
      note.style.color = '#666';
      this.legend.append(note);
      this.caption.textContent = p.caption || '';
    }

    relayout() {
      if (!this.payload) return;
      const W = Math.max(120, this.stage.clientWidth || this.host.clientWidth || 600);
      const n = this.layout === 'overlay' ? 1 : this.motions.length;
      let cols = 1;
      if (n > 1) {
        const minCell = W < 560 ? 130 : 175;
        cols = Math.max(1, Math.min(n, Math.floor(W / minCell)));
        if (n <= 4 && W >= 560) cols = n;
        const rowsNeeded = Math.ceil(n / cols);
        cols = Math.ceil(n / rowsNeeded);
      }
      const rows = Math.ceil(n / cols);
      const cellW = W / cols;
      const cellH = n === 1 ? Math.min(520, Math.max(300, W * 0.62)) : Math.min(400, Math.max(170, cellW * 1.2));
      const H = Math.round(rows * cellH);
      const dpr = Math.min(2, window.devicePixelRatio || 1);
      this.grid = { cols, rows, cellW, cellH, W, H, dpr, n };
      this.stage.style.height = H + 'px';
      this.canvas.width = Math.round(W * dpr); this.canvas.height = Math.round(H * dpr);
      this.cells.replaceChildren();
      const p = this.payload;
      const entries = this.layout === 'overlay' ? [null] : p.motions;
      entries.forEach((m, k) => {
        const c = el('div', 'mvp-cell');
        c.style.left = ((k % cols) * cellW) + 'px'; c.style.top = (Math.floor(k / cols) * cellH) + 'px';
        c.style.width = cellW + 'px';
        const list = m ? [m] : p.motions;
        list.forEach((mm) => {
          if (!mm.title && !mm.notice) return;
          const line = el('div');
          const t = el('span', 'mvp-title');
          if (mm.color) { const chip = el('span', 'mvp-chip'); chip.style.background = mm.color; t.append(chip); }
          t.append(document.createTextNode(mm.title || ''));
          line.append(t);
          c.append(line);
          if (mm.notice) { const nn = el('div', 'mvp-notice', mm.notice); c.append(nn); }
        });
        this.cells.append(c);
      });
      this.dirty = true;
      startLoop();
    }

    setFrame(item, t) {
      const m = item.m;
      const f = Math.min(m.frames - 1, Math.max(0, Math.floor(t * m.fps + 1e-6)));
      if (item.glb) {
        const tt = Math.min(Math.max(0, t), Math.max(0, item.glb.duration - 1e-6));
        if (tt !== item.time) { item.time = tt; item.glb.mixer.setTime(tt); }
        item.frame = f;
        return;
      }
      if (f !== item.frame) {
        item.frame = f;
        const P = item.pos, J = item.J, base = f * J * 3;
        const a = new THREE.Vector3(), b = new THREE.Vector3(), mid = new THREE.Vector3();
        const up = new THREE.Vector3(0, 1, 0), dir = new THREE.Vector3();
        const q = new THREE.Quaternion(), s = new THREE.Vector3(), M = new THREE.Matrix4();
        const R = 0.017, RJ = 0.026;
        item.sk.bones.forEach(([pa, ch], i) => {
          a.set(P[base + 3 * pa], P[base + 3 * pa + 1], P[base + 3 * pa + 2]);
          b.set(P[base + 3 * ch], P[base + 3 * ch + 1], P[base + 3 * ch + 2]);
          dir.subVectors(b, a);
          const len = dir.length();
          if (!isFinite(len) || len < 1e-6) { M.makeScale(0, 0, 0); }
          else {
            mid.addVectors(a, b).multiplyScalar(0.5);
            q.setFromUnitVectors(up, dir.divideScalar(len));
            s.set(R, len, R);
            M.compose(mid, q, s);
          }
          item.bones.setMatrixAt(i, M);
        });
        item.bones.instanceMatrix.needsUpdate = true;
        for (let j = 0; j < J; j++) {
          a.set(P[base + 3 * j], P[base + 3 * j + 1], P[base + 3 * j + 2]);
          if (!isFinite(a.x + a.y + a.z)) M.makeScale(0, 0, 0);
          else { const r = item.hi.has(j) ? RJ * 2.4 : RJ; M.makeScale(r, r, r); M.setPosition(a); }
          item.joints.setMatrixAt(j, M);
        }
        item.joints.instanceMatrix.needsUpdate = true;
        const [h, hp, off] = item.sk.head;
        a.set(P[base + 3 * h], P[base + 3 * h + 1], P[base + 3 * h + 2]);
        if (off > 0) {
          b.set(P[base + 3 * hp], P[base + 3 * hp + 1], P[base + 3 * hp + 2]);
          dir.subVectors(a, b);
          const len = dir.length();
          if (isFinite(len) && len > 1e-6) a.addScaledVector(dir, off / len);
        }
        item.head.visible = isFinite(a.x + a.y + a.z);
        if (item.head.visible) item.head.position.copy(a);
      }
      if (item.mesh) {
        const mf = Math.min(m.mesh.frames - 1, Math.max(0, Math.floor(t * m.mesh.fps + 1e-6)));
        if (mf !== item.meshFrame) {
          item.meshFrame = mf;
          const n = m.mesh.vertices * 3;
          const attr = item.mesh.geometry.attributes.position;
          attr.array.set(item.meshPos.subarray(mf * n, (mf + 1) * n));
          attr.needsUpdate = true;
          item.mesh.geometry.computeVertexNormals();
        }
      }
    }

    placeCamera(cellAspect) {
      const p = this.payload;
      const radius = this.layout === 'overlay' ? p.scale.radius_overlay : p.scale.radius_grid;
      const height = p.scale.height;
      const target = new THREE.Vector3(0, height * 0.5, 0);
      const half = Math.max(height * 0.55, radius * 1.1, 0.6);
      const fov = this.cam.fov * Math.PI / 180;
      let d = half / Math.tan(fov / 2);
      if (cellAspect < 1) d /= cellAspect;
      d = d * 1.12 * this.zoom + radius * 0.5;
      const az = this.az * Math.PI / 180, elv = this.el * Math.PI / 180;
      const cam = this.cam;
      cam.aspect = cellAspect;
      cam.position.set(target.x + d * Math.sin(az) * Math.cos(elv), target.y + d * Math.sin(elv), target.z + d * Math.cos(az) * Math.cos(elv));
      cam.up.set(0, 1, 0);
      if (this.el > 85) cam.up.set(-Math.sin(az), 0, -Math.cos(az));
      cam.lookAt(target);
      cam.updateProjectionMatrix();
      return cam;
    }

    visible() {
      if (!this.host.isConnected || !this.grid) return false;
      const r = this.stage.getBoundingClientRect();
      if (r.width === 0 || r.height === 0) return false;
      return r.bottom > -50 && r.top < (window.innerHeight || 1000) + 50;
    }

    draw() {
      const s = ensureSize(Math.round(this.grid.W * this.grid.dpr), Math.round(this.grid.H * this.grid.dpr));
      if (s.lost) return false;
      const r = s.renderer;
      const g = this.grid, dpr = g.dpr;
      const overlay = this.layout === 'overlay';
      const oc = this.payload.scale.overlay_centre;
      this.motions.forEach((it) => {
        this.setFrame(it, this.t);
        if (overlay) it.group.position.set(-oc[0], 0, -oc[1]);
        else it.group.position.set(-it.m.centre[0], 0, -it.m.centre[1]);
      });
      r.setScissorTest(true);
      r.setClearColor(BG, 1);
      const cw = Math.round(g.cellW * dpr), ch = Math.round(g.cellH * dpr);
      for (let k = 0; k < g.n; k++) {
        const col = k % g.cols, row = Math.floor(k / g.cols);
        const x = Math.round(col * g.cellW * dpr), yTop = Math.round(row * g.cellH * dpr);
        const y = s.h - yTop - ch;
        r.setViewport(x, y, cw, ch); r.setScissor(x, y, cw, ch);
        r.clear();
        this.motions.forEach((it, i) => { it.group.visible = overlay || i === k; });
        r.render(this.scene, this.placeCamera(cw / ch));
      }
      r.setScissorTest(false);
      const W = this.canvas.width, H = this.canvas.height;
      this.ctx.clearRect(0, 0, W, H);
      this.ctx.drawImage(s.canvas, 0, 0, W, H, 0, 0, W, H);
      if (!overlay && g.n > 1) {       // thin separators between the cells
        this.ctx.strokeStyle = 'rgba(0,0,0,0.12)'; this.ctx.lineWidth = 1;
        for (let c = 1; c < g.cols; c++) { const x = Math.round(c * g.cellW * dpr) + 0.5; this.ctx.beginPath(); this.ctx.moveTo(x, 0); this.ctx.lineTo(x, H); this.ctx.stroke(); }
        for (let q = 1; q < g.rows; q++) { const y = Math.round(q * g.cellH * dpr) + 0.5; this.ctx.beginPath(); this.ctx.moveTo(0, y); this.ctx.lineTo(W, y); this.ctx.stroke(); }
      }
      if (this.recording) this.drawTitles();
      this.renders++;
      if (this.firstDrawAt === null) {
        this.firstDrawAt = performance.now();
        this.host.dataset.mvpDrawn = this.payload.id || '';
        this.host.dataset.mvpDrawAt = String(this.firstDrawAt);
        this.host.dataset.mvpDrawMs = String(Math.round(this.firstDrawAt - this.shownAt));
      }
      return true;
    }

    drawTitles() {    // for recordings: the captions are DOM elements, so paint them into the frame too
      const g = this.grid, dpr = g.dpr, c = this.ctx;
      c.font = `${Math.round(12 * dpr)}px system-ui, sans-serif`; c.textBaseline = 'top';
      const list = this.layout === 'overlay' ? [this.payload.motions.map((m) => m.title).join(' · ')] : this.payload.motions.map((m) => m.title);
      list.forEach((t, k) => {
        if (!t) return;
        const x = (k % g.cols) * g.cellW * dpr + 6 * dpr, y = Math.floor(k / g.cols) * g.cellH * dpr + 5 * dpr;
        c.fillStyle = 'rgba(255,255,255,.8)'; c.fillRect(x - 3 * dpr, y - 2 * dpr, c.measureText(t).width + 6 * dpr, 16 * dpr);
        c.fillStyle = '#222'; c.fillText(t, x, y);
      });
      c.fillStyle = '#222'; c.fillText(this.timeEl.textContent, 6 * dpr, this.canvas.height - 18 * dpr);
    }

    tick(dt) {
      if (this.playing) {
        this.t += dt * this.speed;
        if (this.t >= this.duration) {
          if (this.loop && !this.recording) this.t = this.t % this.duration;
          else { this.t = this.duration; this.setPlaying(false); if (this.recording) this.recording.stop(); }
        }
        this.dirty = true;
      }
      if (this.dirty && this.payload) {
        this.timeEl.textContent = `${Math.min(this.t, this.duration).toFixed(2)} s / ${this.duration.toFixed(2)} s`;
        if (!this.scrubbing) this.scrub.value = Math.round(this.t * this.scrubRate);
        this.host.dataset.mvpFrame = String(this.motions[0].frame);
        if (this.visible() && this.draw()) this.dirty = false;
        this.host.dataset.mvpFrame = String(this.motions[0].frame);
      }
    }

    record() {
      if (!this.payload || this.recording || !this.canvas.captureStream || !window.MediaRecorder) return;
      const types = ['video/mp4;codecs=avc1', 'video/mp4', 'video/webm;codecs=vp9', 'video/webm'];
      const type = types.find((t) => MediaRecorder.isTypeSupported(t)) || '';
      const stream = this.canvas.captureStream(30);
      const rec = new MediaRecorder(stream, type ? { mimeType: type } : {});
      const chunks = [];
      rec.ondataavailable = (e) => { if (e.data && e.data.size) chunks.push(e.data); };
      rec.onstop = () => {
        this.recording = null; this.recBtn.textContent = '⬇ Video';
        const ext = type.startsWith('video/mp4') ? 'mp4' : 'webm';
        const blob = new Blob(chunks, { type: type || 'video/webm' });
        const a = document.createElement('a');
        a.href = URL.createObjectURL(blob); a.download = `motionviz-player.${ext}`;
        document.body.append(a); a.click(); a.remove();
        setTimeout(() => URL.revokeObjectURL(a.href), 10000);
        this.dirty = true;
      };
      this.recording = rec;
      this.recBtn.textContent = '● recording…';
      this.t = 0; this.dirty = true;
      rec.start(250);
      this.setPlaying(true);
    }

    dispose() {
      (this.owned || []).forEach((o) => o.dispose && o.dispose());
      (this.motions || []).forEach((it) => {
        if (it.glb) { it.glb.mixer.stopAllAction(); it.glb.skeletons.forEach((sk) => sk.dispose()); return; }
        it.bones.dispose(); it.joints.dispose();
      });
      this.owned = []; this.motions = []; this.scene = null;
    }
  }

  function startLoop() {
    if (loopRunning) return;
    loopRunning = true;
    lastTick = performance.now();
    requestAnimationFrame(frame);
  }

  function frame(now) {
    const dt = Math.min(0.25, Math.max(0, (now - lastTick) / 1000));
    lastTick = now;
    let busy = false;
    players.forEach((p) => {
      if (!p.host.isConnected) { p.dispose(); p.resizeObs.disconnect(); players.delete(p); return; }
      p.tick(dt);
      if (p.playing || p.dirty) busy = true;
    });
    if (busy) requestAnimationFrame(frame);
    else loopRunning = false;
  }

  document.addEventListener('scroll', () => startLoop(), { passive: true, capture: true });

  function show(element, json) {
    let p = element.__mvp;
    if (!p || !players.has(p)) {
      p = new Player(element);
      element.__mvp = p;
      players.add(p);
    }
    return p.show(json).catch((e) => {
      console.error('motionviz player:', e);
      p.empty.style.display = '';
      p.empty.textContent = 'The 3D player could not start: ' + (e && e.message ? e.message : e);
    });
  }

  // What a player shows now (layout and camera), for the server-side GIF/MP4 of the view.
  function viewOf(element) {
    const host = element && (element.__mvp ? element : element.querySelector('[data-mvp-id]'));
    const p = host && host.__mvp;
    if (!p || !p.payload) return null;
    return { layout: p.layout, az: p.az, el: p.el, zoom: p.zoom };
  }

  // The joints of the .glb character a player shows, at time t (s): names and positions in the file's own
  // coordinates (metres), from the bones as the viewer animates them; null when it shows no .glb.
  function glbJoints(element, t, vertexStep) {
    const host = element && (element.__mvp ? element : element.querySelector('[data-mvp-id]'));
    const p = host && host.__mvp;
    const it = p && (p.motions || []).find((x) => x.glb);
    if (!it) return null;
    p.setPlaying(false);
    p.t = t; p.setFrame(it, t); p.dirty = true; startLoop();
    it.glb.root.updateMatrixWorld(true);
    const inv = new THREE.Matrix4().copy(it.glb.root.matrixWorld).invert();
    const v = new THREE.Vector3();
    const skin = [];                  // every vertexStep-th vertex of the first skinned mesh, as skinned
    let mesh = null;
    it.glb.root.traverse((o) => { if (!mesh && o.isSkinnedMesh) mesh = o; });
    if (mesh && vertexStep > 0) {
      const n = mesh.geometry.attributes.position.count;
      for (let i = 0; i < n; i += vertexStep) skin.push(mesh.getVertexPosition(i, v).applyMatrix4(mesh.matrixWorld).applyMatrix4(inv).toArray());
    }
    return { names: it.glb.names, duration: it.glb.duration, tracks: it.glb.tracks, keys: it.glb.keys,
             vertices: it.glb.vertices, skinned: it.glb.skeletons.length, skin,
             positions: it.glb.bones.map((b) => b.getWorldPosition(v).applyMatrix4(inv).toArray()) };
  }

  function stats() {
    let n = 0; players.forEach((p) => { if (p.payload) n++; });
    return { players: players.size, showing: n, webglContexts: shared ? 1 : 0, lost: !!(shared && shared.lost) };
  }

  window.motionvizPlayer = { show, stats, players, loadThree, viewOf, glbJoints };
  window.dispatchEvent(new Event('motionviz-player-ready'));
})();
