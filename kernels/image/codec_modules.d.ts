/** imagescript 1.3.1 JPEG decoder (Rust jpeg-decoder compiled to wasm). */
export declare const jpegModule: WebAssembly.Module;
/** imagescript 1.3.1 PNG decoder. */
export declare const pngModule: WebAssembly.Module;
/** imagescript 1.3.1 GIF decoder. */
export declare const gifModule: WebAssembly.Module;
/** @jsquash/webp 1.5.0 decoder (libwebp via emscripten). */
export declare const webpModule: WebAssembly.Module;
