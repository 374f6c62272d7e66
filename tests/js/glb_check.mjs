// Checks a skinned, animated GLB with the Khronos glTF-Validator and plays it with three.js (GLTFLoader,
// AnimationMixer, SkinnedMesh skinning on the CPU), without a browser.
// usage: node glb_check.mjs NODE_MODULES FILE.glb FRAME OUT   (OUT: skinned vertices, float32; OUT.json)
import fs from 'fs';
import path from 'path';
import { createRequire } from 'module';
import { pathToFileURL } from 'url';

const [nodeModules, file, frame, out] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(nodeModules), 'noop.js'));
const THREE = await import(pathToFileURL(path.join(nodeModules, 'three/build/three.module.js')).href);
const { GLTFLoader } = await import(pathToFileURL(path.join(nodeModules, 'three/examples/jsm/loaders/GLTFLoader.js')).href);
const validator = require('gltf-validator');

const bytes = fs.readFileSync(file);
const report = await validator.validateBytes(new Uint8Array(bytes), { maxIssues: 100 });
const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
const gltf = await new Promise((resolve, reject) => new GLTFLoader().parse(ab, '', resolve, reject));
let skinned = null;
gltf.scene.traverse((o) => { if (o.isSkinnedMesh) skinned = o; });
const clip = gltf.animations[0];
const mixer = new THREE.AnimationMixer(gltf.scene);
mixer.clipAction(clip).play();
mixer.setTime(Number(frame) / gltf.parser.json.extras.fps);
gltf.scene.updateMatrixWorld(true);
skinned.skeleton.update();
const n = skinned.geometry.attributes.position.count;
const verts = new Float32Array(3 * n);
const v = new THREE.Vector3();
for (let i = 0; i < n; i++) {
  skinned.getVertexPosition(i, v).applyMatrix4(skinned.matrixWorld);
  verts.set([v.x, v.y, v.z], 3 * i);
}
const joints = {};
for (const b of skinned.skeleton.bones) joints[b.name] = b.getWorldPosition(new THREE.Vector3()).toArray();
fs.writeFileSync(out, Buffer.from(verts.buffer));
fs.writeFileSync(out + '.json', JSON.stringify({
  validator: { errors: report.issues.numErrors, warnings: report.issues.numWarnings, infos: report.issues.numInfos,
               messages: report.issues.messages.map((m) => `${m.code} ${m.pointer || ''} ${m.message}`) },
  three: THREE.REVISION, tracks: clip.tracks.length, duration: clip.duration, joints }));
