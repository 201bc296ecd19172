/* @ts-self-types="./codec_modules.d.ts" */
// The codecs' compiled WebAssembly modules, imported as module sources: no file-system or env
// permission, no compilation from bytes at run time, so the same import works on edge workers
// (Cloudflare forbids compiling wasm from bytes). TypeScript does not parse `import source` yet,
// hence this small .js file.
import source jpeg from "imagescript/wasm/any/jpeg.wasm";
import source png from "imagescript/wasm/any/png.wasm";
import source gif from "imagescript/wasm/any/gif.wasm";
import source webp from "@jsquash/webp/codec/dec/webp_dec.wasm";

export const jpegModule = jpeg;
export const pngModule = png;
export const gifModule = gif;
export const webpModule = webp;
