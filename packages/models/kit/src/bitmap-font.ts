/**
 * Renders text with a built-in 5×7 bitmap font into an RGBA image (black on white), so tests can make
 * images of known text without system fonts or a canvas library.
 */
import type { RgbaImage } from "./image.js";

// Each glyph is 7 rows of 5 columns; "#" is ink.
const GLYPHS: Record<string, string> = {
  A: ".###. #...# #...# ##### #...# #...# #...#",
  B: "####. #...# #...# ####. #...# #...# ####.",
  C: ".###. #...# #.... #.... #.... #...# .###.",
  D: "####. #...# #...# #...# #...# #...# ####.",
  E: "##### #.... #.... ####. #.... #.... #####",
  F: "##### #.... #.... ####. #.... #.... #....",
  G: ".###. #...# #.... #.### #...# #...# .####",
  H: "#...# #...# #...# ##### #...# #...# #...#",
  I: ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
  J: "..### ...#. ...#. ...#. ...#. #..#. .##..",
  K: "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
  L: "#.... #.... #.... #.... #.... #.... #####",
  M: "#...# ##.## #.#.# #.#.# #...# #...# #...#",
  N: "#...# #...# ##..# #.#.# #..## #...# #...#",
  O: ".###. #...# #...# #...# #...# #...# .###.",
  P: "####. #...# #...# ####. #.... #.... #....",
  Q: ".###. #...# #...# #...# #.#.# #..#. .##.#",
  R: "####. #...# #...# ####. #.#.. #..#. #...#",
  S: ".###. #...# #.... .###. ....# #...# .###.",
  T: "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
  U: "#...# #...# #...# #...# #...# #...# .###.",
  V: "#...# #...# #...# #...# #...# .#.#. ..#..",
  W: "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
  X: "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
  Y: "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
  Z: "##### ....# ...#. ..#.. .#... #.... #####",
  "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
  "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
  "2": ".###. #...# ....# ...#. ..#.. .#... #####",
  "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
  "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
  "5": "##### #.... ####. ....# ....# #...# .###.",
  "6": "..##. .#... #.... ####. #...# #...# .###.",
  "7": "##### ....# ...#. ..#.. .#... .#... .#...",
  "8": ".###. #...# #...# .###. #...# #...# .###.",
  "9": ".###. #...# #...# .#### ....# ...#. .##..",
  " ": "..... ..... ..... ..... ..... ..... .....",
  ".": "..... ..... ..... ..... ..... .##.. .##..",
  "-": "..... ..... ..... ##### ..... ..... .....",
};

export const BITMAP_FONT_CHARACTERS = Object.keys(GLYPHS).join("");

export interface RenderTextOptions {
  /** Size of one font pixel in image pixels. Default 4. */
  scale?: number;
  /** White border around the text, in font pixels. Default 4. */
  margin?: number;
  /**
   * Box-blur radius in image pixels (default 1). Softened edges look like anti-aliased type; OCR engines
   * trained on real fonts misread hard-edged pixel glyphs (R as F, N as H).
   */
  blur?: number;
}

/** Renders one or more lines of text (upper-case letters, digits, space, "." and "-"). */
export function renderText(text: string, options: RenderTextOptions = {}): RgbaImage {
  const scale = options.scale ?? 4;
  const margin = options.margin ?? 4;
  const lines = text.split("\n");
  const columns = Math.max(...lines.map((line) => line.length));
  // 5 columns of glyph + 1 of spacing; 7 rows + 4 of line spacing.
  const width = (margin * 2 + columns * 6 - 1) * scale;
  const height = (margin * 2 + lines.length * 11 - 4) * scale;
  const data = new Uint8Array(width * height * 4).fill(255);
  lines.forEach((line, row) => {
    [...line].forEach((char, column) => {
      const glyph = GLYPHS[char];
      if (glyph === undefined) throw new Error(`the bitmap font has no glyph for ${JSON.stringify(char)}`);
      const rows = glyph.split(" ");
      rows.forEach((bits, y) => {
        [...bits].forEach((bit, x) => {
          if (bit !== "#") return;
          const left = (margin + column * 6 + x) * scale;
          const top = (margin + row * 11 + y) * scale;
          for (let dy = 0; dy < scale; dy++) {
            for (let dx = 0; dx < scale; dx++) {
              const offset = ((top + dy) * width + left + dx) * 4;
              data[offset] = 0;
              data[offset + 1] = 0;
              data[offset + 2] = 0;
            }
          }
        });
      });
    });
  });
  const image = { width, height, data };
  const blur = options.blur ?? 1;
  return blur > 0 ? boxBlur(image, blur) : image;
}

/** Averages each grey pixel over a (2r+1)² window; outside the image counts as white. */
function boxBlur(image: RgbaImage, radius: number): RgbaImage {
  const { width, height, data } = image;
  const out = new Uint8Array(data.length);
  const area = (2 * radius + 1) ** 2;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let dy = -radius; dy <= radius; dy++) {
        for (let dx = -radius; dx <= radius; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          const inside = yy >= 0 && xx >= 0 && yy < height && xx < width;
          sum += inside ? (data[(yy * width + xx) * 4] ?? 255) : 255;
        }
      }
      const value = Math.round(sum / area);
      const offset = (y * width + x) * 4;
      out[offset] = value;
      out[offset + 1] = value;
      out[offset + 2] = value;
      out[offset + 3] = 255;
    }
  }
  return { width, height, data: out };
}
