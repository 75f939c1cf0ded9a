// RFC 6962 / RFC 9162 consistency proofs, checked in the browser with SubtleCrypto SHA-256,
// so an officer's browser needs to trust neither the server nor this page's other code for it.

export function fromBase64(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

async function nodeHash(left, right) {
  const data = new Uint8Array(1 + left.length + right.length);
  data[0] = 0x01; // interior node prefix (leaves use 0x00)
  data.set(left, 1);
  data.set(right, 1 + left.length);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

function equal(a, b) {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

// RFC 9162 section 2.1.4.2: true when the tree of size `second` with root `secondRoot` extends
// the tree of size `first` with root `firstRoot` (roots and proof as bytes).
export async function verifyConsistency(first, second, firstRoot, secondRoot, proof) {
  if (first > second) return false;
  if (first === second) return proof.length === 0 && equal(firstRoot, secondRoot);
  if (first === 0) return proof.length === 0; // the empty tree is a prefix of every tree
  if (proof.length === 0) return false;
  let path = proof;
  if ((first & (first - 1)) === 0) path = [firstRoot, ...proof];
  let fn = first - 1;
  let sn = second - 1;
  while (fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn & 1 || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if (!(fn & 1)) {
        while (!(fn & 1) && fn !== 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn === 0 && equal(fr, firstRoot) && equal(sr, secondRoot);
}

// A checkpoint is a C2SP signed note: origin, size, base64 root, blank line, signatures.
export function parseCheckpoint(text) {
  const [origin, size, root] = text.split("\n");
  return { origin, size: Number(size), root };
}
