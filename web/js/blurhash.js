// Decodes a blurhash (https://blurha.sh, the algorithm of woltapp/blurhash) into RGBA pixels.
const DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

function decode83(text) {
  let value = 0;
  for (const ch of text) value = value * 83 + DIGITS.indexOf(ch);
  return value;
}

const toLinear = (v) => {
  const x = v / 255;
  return x <= 0.04045 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
};
const toSrgb = (v) => {
  const x = Math.max(0, Math.min(1, v));
  return Math.round((x <= 0.0031308 ? x * 12.92 : 1.055 * x ** (1 / 2.4) - 0.055) * 255);
};
const signPow = (v, e) => Math.sign(v) * Math.abs(v) ** e;

export function isBlurhash(hash) {
  if (typeof hash !== "string" || hash.length < 6) return false;
  const size = decode83(hash[0]);
  return hash.length === 4 + 2 * ((size % 9) + 1) * (Math.floor(size / 9) + 1);
}

export function decodeBlurhash(hash, width, height) {
  const size = decode83(hash[0]);
  const nx = (size % 9) + 1;
  const ny = Math.floor(size / 9) + 1;
  const maxAc = (decode83(hash[1]) + 1) / 166;
  const colors = [];
  const dc = decode83(hash.slice(2, 6));
  colors.push([toLinear(dc >> 16), toLinear((dc >> 8) & 255), toLinear(dc & 255)]);
  for (let i = 1; i < nx * ny; i++) {
    const v = decode83(hash.slice(4 + i * 2, 6 + i * 2));
    const q = (n) => signPow((n - 9) / 9, 2) * maxAc;
    colors.push([q(Math.floor(v / 361)), q(Math.floor(v / 19) % 19), q(v % 19)]);
  }
  const pixels = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = 0, g = 0, b = 0;
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          const basis = Math.cos((Math.PI * x * i) / width) * Math.cos((Math.PI * y * j) / height);
          const c = colors[i + j * nx];
          r += c[0] * basis; g += c[1] * basis; b += c[2] * basis;
        }
      }
      const p = 4 * (x + y * width);
      pixels[p] = toSrgb(r); pixels[p + 1] = toSrgb(g); pixels[p + 2] = toSrgb(b); pixels[p + 3] = 255;
    }
  }
  return pixels;
}
