import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { checkLayout, type CoreExports, type DebugCoreExports } from './abi.js';

export type Build = 'release' | 'debug';

const FILES: Record<Build, string> = { release: 'quiver.wasm', debug: 'quiver.debug.wasm' };
const modules = new Map<Build, WebAssembly.Module>();
/** Modules whose layout table has been checked against abi.ts. */
const checked = new WeakSet<WebAssembly.Module>();

/** Where the compiled cores live: build/ at the package root. */
function wasmPath(build: Build): string {
  // host/core/module.ts runs from source (tests) or from dist/host/core
  for (const rel of ['../../build/', '../../../build/']) {
    const url = new URL(rel + FILES[build], import.meta.url);
    try {
      readFileSync(url, { flag: 'r' }).byteLength;
      return fileURLToPath(url);
    } catch {
      // try the next layout
    }
  }
  throw new Error(`quiver: ${FILES[build]} not found; run npm run build:wasm`);
}

/** The compiled module for a build, compiled once per thread. */
export function coreModule(build: Build): WebAssembly.Module {
  let mod = modules.get(build);
  if (mod === undefined) {
    mod = new WebAssembly.Module(readFileSync(wasmPath(build)));
    modules.set(build, mod);
  }
  return mod;
}

/** Thrown by the core's `abort` import (debug builds: a failed assert). */
export class CoreAbort extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CoreAbort';
  }
}

function readString(memory: WebAssembly.Memory, ptr: number): string {
  if (ptr === 0) return '';
  // AssemblyScript strings: UTF-16, byte length at ptr - 4
  const bytes = new Uint32Array(memory.buffer, ptr - 4, 1)[0]!;
  return String.fromCharCode(...new Uint16Array(memory.buffer, ptr, bytes >>> 1));
}

/**
 * Instantiates the core over `memory` (a fresh one or one holding an image).
 * The first instance of each module has its layout table checked against
 * abi.ts (CORE_ABI on a mismatch) before anyone reads memory through it.
 */
export function instantiate(build: Build, memory: WebAssembly.Memory): CoreExports {
  const imports = {
    env: {
      memory,
      abort(msg: number, file: number, line: number, col: number): never {
        throw new CoreAbort(`${readString(memory, msg)} at ${readString(memory, file)}:${line}:${col}`);
      },
    },
  };
  const mod = coreModule(build);
  const core = new WebAssembly.Instance(mod, imports).exports as unknown as CoreExports;
  if (!checked.has(mod)) {
    checkLayout((i) => core.layoutEntry(i));
    checked.add(mod);
  }
  return core;
}

/** The debug build with its test hooks (assembly/debug.ts); tests only. */
export function instantiateDebug(memory: WebAssembly.Memory): DebugCoreExports {
  return instantiate('debug', memory) as DebugCoreExports;
}
