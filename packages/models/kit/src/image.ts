/** Image decoding and encoding in pure JavaScript (PNG via pngjs, JPEG via jpeg-js), so no native image library is needed. */
import { readFile } from "node:fs/promises";
import jpeg from "jpeg-js";
import { PNG } from "pngjs";

/** 8-bit RGBA pixels, row-major. */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8Array;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47];

function isPng(bytes: Uint8Array): boolean {
  return PNG_SIGNATURE.every((byte, i) => bytes[i] === byte);
}

function isJpeg(bytes: Uint8Array): boolean {
  return bytes[0] === 0xff && bytes[1] === 0xd8;
}

export function decodeImageBytes(bytes: Uint8Array): RgbaImage {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (isPng(bytes)) {
    const png = PNG.sync.read(buffer);
    return { width: png.width, height: png.height, data: new Uint8Array(png.data) };
  }
  if (isJpeg(bytes)) {
    // Bounded so a hostile JPEG header cannot make the decoder allocate gigabytes.
    const decoded = jpeg.decode(buffer, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 512 });
    return { width: decoded.width, height: decoded.height, data: decoded.data };
  }
  throw new Error("unsupported image format: expected PNG or JPEG");
}

export async function decodeImageFile(path: string): Promise<RgbaImage> {
  return decodeImageBytes(await readFile(path));
}

export function encodePng(image: RgbaImage): Buffer {
  const png = new PNG({ width: image.width, height: image.height });
  Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength).copy(png.data);
  return PNG.sync.write(png);
}

/** Drops the alpha channel (alpha-blended over white, as a viewer would show it) for models that take RGB. */
export function toRgb(image: RgbaImage): Uint8Array {
  const pixels = image.width * image.height;
  const rgb = new Uint8Array(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    const alpha = (image.data[i * 4 + 3] ?? 255) / 255;
    for (let c = 0; c < 3; c++) {
      rgb[i * 3 + c] = Math.round((image.data[i * 4 + c] ?? 0) * alpha + 255 * (1 - alpha));
    }
  }
  return rgb;
}

export function fromRgb(rgb: Uint8Array, width: number, height: number): RgbaImage {
  const data = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    data[i * 4] = rgb[i * 3] ?? 0;
    data[i * 4 + 1] = rgb[i * 3 + 1] ?? 0;
    data[i * 4 + 2] = rgb[i * 3 + 2] ?? 0;
    data[i * 4 + 3] = 255;
  }
  return { width, height, data };
}
