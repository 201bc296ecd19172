// The image codecs for the Cloudflare Workers bundle: the same four compiled modules as
// kernels/image/codec_modules.js, imported the way wrangler's bundler understands (a default
// import of a .wasm file is a WebAssembly.Module, its CompiledWasm rule). The build swaps this file
// in for codec_modules.js; nothing else in the image pipeline changes.
import jpeg from "imagescript/wasm/any/jpeg.wasm";
import png from "imagescript/wasm/any/png.wasm";
import gif from "imagescript/wasm/any/gif.wasm";
import webp from "@jsquash/webp/codec/dec/webp_dec.wasm";

export const jpegModule = jpeg;
export const pngModule = png;
export const gifModule = gif;
export const webpModule = webp;
